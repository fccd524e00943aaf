"""Audit an LLM judge on answers known from the training rows, before it is paid to judge.

``llm-cold`` asks a model whether a shopper would want a new item. Whether the model can tell is
an empirical question, and a cheap one to answer first: for a seeded sample of training rows,
the row's last item is what the shopper really took next (a positive), and two items the shopper
never took are negatives, one drawn uniformly from the catalog and one from the most popular
items (a popular item is the harder negative: a judge that says "yes" to whatever sells would
pass the random one). The model judges each (history, candidate) pair with the same prompt
``llm-cold`` uses, and the audit reports how well its answers separate the two:

- AUC of the judge's score (positives against negatives; 0.5 is chance), with a bootstrap CI
  over users, overall and per kind of negative;
- the yes-rate on positives and on negatives, mean P(yes), the Brier score and a calibration
  table;
- the acceptance threshold that best separates them (Youden's J), which ``llm-cold`` applies;
- tokens and seconds per judgment, and a verdict.

The score is P(yes): the probability of the answer's first token, read from the model's token
log-probabilities (renormalised over "yes" and "no") when the backend returns them, else 1 or 0
from the answer itself. A greedy yes/no throws most of the model's signal away: a model that says
"yes" to 95% of pairs may still rank real next items above random ones.

Only training rows and catalog text are read: a user's last training item is a training target,
never a validation or test one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shopaug.augment.context import ProgressHook
from shopaug.augment.llm_common import history_text, item_fields, provenance, run_batch
from shopaug.data.sequences import Sequences
from shopaug.llm import Completion, Generator, Result, Usage, load_prompt

NegativeKind = Literal["random", "popular"]
Verdict = Literal["no better than chance", "weak", "usable"]
#: How many of the most popular items the popular negative is drawn from.
POPULAR_POOL = 100
#: Bins of the calibration table (equal width over P(yes)).
CALIBRATION_BINS = 5


class AuditConfig(BaseModel):
    """What the audit asks and how strict its verdict is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    users: int = Field(100, ge=10, description="Training rows sampled; 3 judgments each.")
    history: int = Field(5, ge=1, le=50, description="Last titles before the positive shown.")
    seed: int = 0
    prompt: str = Field("cold_item_judgment", description="Prompt of the judge (llm-cold's).")
    top_logprobs: int = Field(5, ge=1, le=20, description="Alternatives read per token.")
    min_auc: float = Field(
        0.6, gt=0.5, lt=1.0, description="Below this AUC the judge is 'weak', not 'usable'."
    )
    n_resamples: int = Field(1000, ge=100, description="Bootstrap resamples of the AUC CI.")


@dataclass(frozen=True)
class AuditPairs:
    """Judgments to ask: candidate ``items[j]`` after the first ``cut[j]`` items of training
    row ``rows[j]``; ``label`` 1 for the item the user really took there."""

    rows: np.ndarray
    cut: np.ndarray
    items: np.ndarray
    kind: np.ndarray  # "positive", "random" or "popular"

    @property
    def label(self) -> np.ndarray:
        return (self.kind == "positive").astype(np.int8)

    def __len__(self) -> int:
        return len(self.items)


def audit_pairs(train: Sequences, n_items: int, users: int, seed: int = 0) -> AuditPairs:
    """A positive and two negatives per sampled training row of at least two items.

    The positive is the row's last item and the history the items before it; the negatives are
    items the row never holds, one uniform over the catalog, one from the ``POPULAR_POOL`` most
    frequent training items."""
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(train.lengths >= 2)
    if len(usable) == 0:
        raise ValueError("the judge audit needs training rows with at least two items")
    rows = np.sort(rng.choice(usable, size=min(users, len(usable)), replace=False))
    counts = np.bincount(train.items, minlength=n_items)
    popular = np.argsort(-counts, kind="stable")[:POPULAR_POOL]
    out_rows, cuts, items, kinds = [], [], [], []
    for row in rows:
        held = set(train.row(row).tolist())
        positive = int(train.row(row)[-1])
        for kind, pool in (("positive", None), ("random", None), ("popular", popular)):
            if kind == "positive":
                item = positive
            else:
                item = _draw_unheld(rng, pool, n_items, held)
                if item is None:
                    continue
            out_rows.append(row)
            cuts.append(int(train.lengths[row]) - 1)
            items.append(item)
            kinds.append(kind)
    return AuditPairs(
        np.asarray(out_rows, dtype=np.int64),
        np.asarray(cuts, dtype=np.int64),
        np.asarray(items, dtype=np.int64),
        np.asarray(kinds),
    )


def _draw_unheld(
    rng: np.random.Generator, pool: np.ndarray | None, n_items: int, held: set[int]
) -> int | None:
    candidates = np.arange(n_items) if pool is None else pool
    free = candidates[~np.isin(candidates, list(held))]
    return int(rng.choice(free)) if len(free) else None


_ANSWER_VALUE = re.compile(r'"answer"\s*:\s*"')


def answer_probability(completion: Completion, choices: tuple[str, str] = ("yes", "no")) -> float:
    """P(first choice) at the token where the ``answer`` value starts, renormalised over the two
    choices; 1 or 0 from the parsed answer when there are no log-probabilities to read."""
    answer = str((completion.parsed or {}).get("answer", ""))
    fallback = 1.0 if answer == choices[0] else 0.0
    tokens = completion.logprobs
    found = _ANSWER_VALUE.search(completion.text)
    if not tokens or found is None:
        return fallback
    start, offset = found.end(), 0
    for token in tokens:
        end = offset + len(token.token)
        if end > start:  # this token holds the value's first character
            lead = completion.text[offset:start]  # e.g. '"' when a token spans the quote
            mass = [_mass(token.top, lead, choice) for choice in choices]
            total = sum(mass)
            return mass[0] / total if total > 0 else fallback
        offset = end
    return fallback


def _mass(top: dict[str, float], lead: str, choice: str) -> float:
    """Probability of the alternatives that begin ``choice`` (after the text ``lead`` the token
    also covers, e.g. the opening quote)."""
    total = 0.0
    for token, logprob in top.items():
        rest = token[len(lead) :] if token.startswith(lead) else None
        if rest and choice.startswith(rest.strip().lower()) and rest.strip():
            total += float(np.exp(logprob))
    return total


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outscores a negative (ties count half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    above = (positive[:, None] > negative[None, :]).mean()
    tied = (positive[:, None] == negative[None, :]).mean()
    return float(above + 0.5 * tied)


def auc_ci(
    scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, n_resamples: int, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of :func:`auc`, resampling whole groups (users): a user's three
    judgments share a history and are not independent."""
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    values = []
    for _ in range(n_resamples):
        picked = rng.integers(0, len(unique), len(unique))
        rows = np.concatenate([members[g] for g in picked])
        values.append(auc(scores[rows], labels[rows]))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The P(yes) cut (accept when score >= cut) with the largest Youden's J (TPR - FPR)."""
    positives, negatives = max(int((labels == 1).sum()), 1), max(int((labels == 0).sum()), 1)
    best, best_j = 0.5, -np.inf
    for cut in np.unique(scores):
        accepted = scores >= cut
        j = (accepted & (labels == 1)).sum() / positives - (
            accepted & (labels == 0)
        ).sum() / negatives
        if j > best_j:
            best, best_j = float(cut), float(j)
    return best


def calibration(scores: np.ndarray, labels: np.ndarray) -> list[dict[str, float]]:
    """Per equal-width P(yes) bin: judgments, mean P(yes), and the share that were positives."""
    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    out = []
    for b in range(CALIBRATION_BINS):
        inside = bins == b
        if inside.any():
            out.append(
                {
                    "bin": f"{b / CALIBRATION_BINS:.1f}-{(b + 1) / CALIBRATION_BINS:.1f}",
                    "judgments": int(inside.sum()),
                    "mean_p_yes": float(scores[inside].mean()),
                    "positive_share": float(labels[inside].mean()),
                }
            )
    return out


@dataclass(frozen=True)
class AuditResult:
    """Every judgment, the figures of the report, and what the audit cost."""

    table: pd.DataFrame
    summary: dict[str, Any]
    cost: Usage

    @property
    def verdict(self) -> Verdict:
        return self.summary["verdict"]


class JudgeAudit:
    """Runs :class:`AuditConfig` with a generator on a training split (module docstring)."""

    def __init__(self, config: AuditConfig | None = None) -> None:
        self.config = config or AuditConfig()

    def run(
        self,
        train: Sequences,
        catalog: pd.DataFrame,
        generator: Generator,
        progress: ProgressHook | None = None,
        concurrency: int = 1,
    ) -> AuditResult:
        config = self.config
        pairs = audit_pairs(train, len(catalog), config.users, config.seed)
        template = load_prompt(config.prompt)
        params = template.params.model_copy(update={"top_logprobs": config.top_logprobs})
        requests = [
            template.request(
                {
                    **item_fields(catalog, int(item)),
                    "history": history_text(
                        catalog, train.row(row)[:cut][-config.history :].tolist()
                    ),
                },
                params=params,
            )
            for row, cut, item in zip(pairs.rows, pairs.cut, pairs.items, strict=True)
        ]
        results, cost = run_batch(
            generator, requests, f"judge audit: {len(pairs)} judgments", concurrency, progress
        )
        table = judgment_table(pairs, results, train)
        summary = summarise(table, cost, config)
        summary["judge"] = provenance(generator, template)
        return AuditResult(table, summary, cost)


def judgment_table(pairs: AuditPairs, results: list[Result], train: Sequences) -> pd.DataFrame:
    """One row per judgment: pair, label, answer, P(yes) (None when the call failed)."""
    return pd.DataFrame(
        {
            "row": pairs.rows,
            "user": train.users[pairs.rows],
            "item": pairs.items,
            "kind": pairs.kind,
            "label": pairs.label,
            "answer": [r.parsed["answer"] if r.ok else None for r in results],
            "p_yes": [answer_probability(r) if r.ok else None for r in results],
            "from_logprobs": [bool(r.ok and r.logprobs) for r in results],
            "failure": [None if r.ok else f"{r.kind}: {r.reason}" for r in results],
            # A cache hit keeps the tokens and seconds of the call that made it: the cost of
            # judging is the same whether this audit or an earlier one paid it.
            "prompt_tokens": [r.prompt_tokens for r in results],
            "completion_tokens": [r.completion_tokens for r in results],
            "seconds": [r.latency_s for r in results],
            "cached": [bool(r.ok and r.cached) for r in results],
        }
    )


def summarise(table: pd.DataFrame, cost: Usage, config: AuditConfig) -> dict[str, Any]:
    """The audit's figures from its judgments (failed calls are counted, then left out)."""
    judged = table[table["p_yes"].notna()]
    scores = judged["p_yes"].to_numpy(dtype=np.float64)
    labels = judged["label"].to_numpy()
    overall = auc(scores, labels)
    low, high = auc_ci(scores, labels, judged["row"].to_numpy(), config.n_resamples, config.seed)
    by_kind = {}
    for kind in ("random", "popular"):
        subset = judged["kind"].isin(["positive", kind]).to_numpy()
        by_kind[kind] = auc(scores[subset], labels[subset])
    says_yes = (judged["answer"] == "yes").to_numpy()
    summary = {
        "judgments": len(table),
        "failed": int(table["p_yes"].isna().sum()),
        "users": int(table["row"].nunique()),
        "scored_from_logprobs": float(judged["from_logprobs"].mean()) if len(judged) else 0.0,
        "auc": overall,
        "auc_ci": [low, high],
        "auc_by_negative": by_kind,
        "yes_rate": float(says_yes.mean()) if len(judged) else float("nan"),
        "yes_rate_positive": _share(says_yes, labels == 1),
        "yes_rate_negative": _share(says_yes, labels == 0),
        "mean_p_yes_positive": _mean(scores, labels == 1),
        "mean_p_yes_negative": _mean(scores, labels == 0),
        "brier": float(np.mean((scores - labels) ** 2)) if len(judged) else float("nan"),
        "threshold": best_threshold(scores, labels),
        "calibration": calibration(scores, labels),
        "prompt_tokens_per_judgment": float(judged["prompt_tokens"].mean()),
        "completion_tokens_per_judgment": float(judged["completion_tokens"].mean()),
        "seconds_per_judgment": float(judged["seconds"].mean()),
        "cached": float(judged["cached"].mean()) if len(judged) else 0.0,
        "cost": cost.as_dict(),
    }
    summary["verdict"] = verdict(overall, low, config.min_auc)
    return summary


def verdict(auc_value: float, ci_low: float, min_auc: float) -> Verdict:
    """Chance when the CI reaches 0.5; weak below ``min_auc``; usable otherwise."""
    if not np.isfinite(auc_value) or ci_low <= 0.5:
        return "no better than chance"
    return "weak" if auc_value < min_auc else "usable"


def _share(flags: np.ndarray, mask: np.ndarray) -> float:
    return float(flags[mask].mean()) if mask.any() else float("nan")


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")
