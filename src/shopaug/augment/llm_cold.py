"""LLM-judged interactions for cold items (in the manner of ColdLLM and LLMRec).

A new item has no events, so an ID-based model never learns it. :class:`ColdNeighbours` guesses
where it could stand from its warm text twins; this strategy asks a language model instead. For
each cold item, the users whose history reads most like it (their mean item embedding against the
item's text embedding) are the candidates, since asking the model about every user would cost
thousands of calls per item; the model sees a candidate's last few titles and the new item and
answers yes or no with a reason. Its score is P(yes), read from the answer token's probability
(:mod:`shopaug.augment.llm_audit`), and a candidate whose P(yes) reaches the threshold becomes a
sample: the user's real training row with the cold item appended, scored by the user-item
similarity times P(yes), so the weakest guesses count least.

Before it judges anything, the judge is audited on pairs whose answer the training rows already
know (a user's real next item against items they never took); the audit is cached with the
responses, chooses the threshold, and a judge it finds no better than chance (or weak) is
refused unless ``force`` is set: its calls would buy noise.

Only training rows and catalog text reach the prompts: validation and test targets cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from shopaug.augment.base import Strategy
from shopaug.augment.context import AugmentContext, ProgressHook
from shopaug.augment.llm_audit import AuditConfig, JudgeAudit, answer_probability
from shopaug.augment.llm_common import LLMOptions, history_text, item_fields, provenance, run_batch
from shopaug.augment.samples import GeneratedSequences
from shopaug.data.sequences import Sequences
from shopaug.llm import Completion, GenerationRequest, PromptTemplate, Usage, load_prompt

#: The stand-in answer of the ``accept_all`` control: every candidate taken, no model asked.
_ACCEPTED = Completion(
    text="", parsed={"answer": "yes", "reason": "accept_all: no model asked"}, backend="none"
)


@dataclass(frozen=True)
class Candidates:
    """Pairs to judge: ``items[j]`` with training row ``rows[j]``, at text ``similarity[j]``."""

    items: np.ndarray
    rows: np.ndarray
    similarity: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class ColdJudgments:
    """The samples, every judgment made (answer, reason or failure), and the LLM cost."""

    samples: GeneratedSequences
    table: pd.DataFrame
    cost: Usage
    cold_items: int
    threshold: float = 0.5
    audit: dict | None = None

    def report(self) -> dict:
        answers = self.table["answer"].value_counts()
        report = {
            "cold_items": self.cold_items,
            "items_judged": int(self.table["item"].nunique()),
            "pairs": len(self.table),
            "yes": int(answers.get("yes", 0)),
            "no": int(answers.get("no", 0)),
            "threshold": self.threshold,
            "accepted": len(self.samples),
            **self.cost.as_dict(),
        }
        if self.audit is not None:
            keys = ("auc", "auc_ci", "verdict", "threshold", "yes_rate", "judgments")
            report["audit"] = {key: self.audit[key] for key in keys}
        return report


def user_vectors(train: Sequences, embeddings: np.ndarray) -> np.ndarray:
    """Each row's mean item embedding, L2-normalised (zero for an empty row)."""
    rows = train.row_ids()
    sums = np.zeros((len(train), embeddings.shape[1]), dtype=np.float32)
    np.add.at(sums, rows, embeddings[train.items])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def append_items(train: Sequences, rows: np.ndarray, items: np.ndarray) -> Sequences:
    """Copies of ``train``'s ``rows``, each with ``items[j]`` appended."""
    copies = train.select_rows(rows)
    lengths = copies.lengths + 1
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    out = np.empty(int(indptr[-1]), dtype=np.int64)
    last = indptr[1:] - 1
    keep = np.ones(len(out), dtype=bool)
    keep[last] = False
    out[keep] = copies.items
    out[last] = items
    return Sequences(copies.users, indptr, out)


class LLMColdJudge(Strategy, LLMOptions):
    """Cold items appended to the rows of the candidate users an LLM says would want them."""

    name: ClassVar[str] = "llm-cold"
    needs_embeddings: ClassVar[bool] = True
    max_events: int = Field(2, ge=0, description="Items with at most this many events are cold.")
    candidates: int = Field(10, ge=1, le=1000, description="Users judged per cold item.")
    history: int = Field(5, ge=1, le=50, description="Last titles of a user shown to the model.")
    min_similarity: float = Field(
        0.0, ge=-1, le=1, description="Candidates less similar than this are not asked about."
    )
    prompt: str = Field("cold_item_judgment", description="Prompt template name.")
    accept_all: bool = Field(
        False,
        description="Ask no model: accept every pre-selected candidate. The control run that "
        "shows what the judge adds beyond the embedding pre-selection.",
    )
    audit: bool = Field(
        True,
        description="Audit the judge first on known pairs from the training rows (shopaug llm "
        "audit; cached) and refuse one that is not 'usable' there.",
    )
    audit_users: int = Field(100, ge=10, description="Training rows the audit samples.")
    force: bool = Field(
        False, description="Judge even when the audit says the judge is not usable."
    )
    threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="P(yes) a candidate needs to become a sample; None: the audit's threshold "
        "(best Youden J on its pairs), or 0.5 without an audit.",
    )

    def cold_items(self, context: AugmentContext) -> np.ndarray:
        """Items with at most ``max_events`` training events, fewest events first, windowed by
        ``offset`` and ``limit`` (the emptiest items need the model most)."""
        counts = context.item_counts
        cold = np.flatnonzero(counts <= self.max_events)
        cold = cold[np.argsort(counts[cold], kind="stable")]
        return self.window(cold)

    def find_candidates(self, context: AugmentContext, items: np.ndarray) -> Candidates:
        """For each item, up to ``candidates`` training rows by user-item similarity (FAISS inner
        product), leaving out rows that already hold the item."""
        import faiss

        embeddings = np.ascontiguousarray(context.require_embeddings(self.name), np.float32)
        train = context.train
        users = user_vectors(train, embeddings)
        usable = np.flatnonzero(train.lengths > 0)
        if len(items) == 0 or len(usable) == 0:
            return Candidates(*(np.zeros(0, dtype) for dtype in (np.int64, np.int64, np.float32)))
        index = faiss.IndexFlatIP(users.shape[1])
        index.add(np.ascontiguousarray(users[usable]))
        # A cold item occurs in at most max_events rows: search that many more, drop them after.
        width = min(self.candidates + self.max_events, len(usable))
        scores, found = index.search(np.ascontiguousarray(embeddings[items]), width)
        rows = usable[found]
        item_of = np.repeat(items, width).reshape(len(items), width)
        has_item = self._rows_holding(train, item_of.ravel(), rows.ravel()).reshape(rows.shape)
        ok = ~has_item & (scores >= self.min_similarity)
        rank = np.cumsum(ok, axis=1) - 1
        ok &= rank < self.candidates
        return Candidates(item_of[ok], rows[ok], np.clip(scores[ok], 0.0, 1.0).astype(np.float32))

    @staticmethod
    def _rows_holding(train: Sequences, items: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Whether row ``rows[j]`` contains item ``items[j]``."""
        held = set(zip(train.row_ids().tolist(), train.items.tolist(), strict=True))
        return np.fromiter(
            ((int(r), int(i)) in held for r, i in zip(rows, items, strict=True)),
            dtype=bool,
            count=len(rows),
        )

    def requests(
        self, context: AugmentContext, pairs: Candidates, template: PromptTemplate
    ) -> list[GenerationRequest]:
        """One judgment request per pair: the user's last ``history`` titles and the new item,
        asking for token probabilities (the score is P(yes), see ``llm_audit``)."""
        catalog, train = context.require_catalog(self.name), context.train
        params = template.params.model_copy(update={"top_logprobs": AuditConfig().top_logprobs})
        return [
            template.request(
                {
                    **item_fields(catalog, item),
                    "history": history_text(catalog, train.row(row)[-self.history :].tolist()),
                },
                params=params,
            )
            for item, row in zip(pairs.items, pairs.rows, strict=True)
        ]

    def audited(self, context: AugmentContext, progress: ProgressHook | None) -> dict | None:
        """The audit's summary (None when off); raises when the judge is not usable there."""
        if not self.audit:
            return None
        config = AuditConfig(users=self.audit_users, history=self.history, prompt=self.prompt)
        catalog = context.require_catalog(self.name)
        result = JudgeAudit(config).run(
            context.train, catalog, self.llm(), progress, self.concurrency
        )
        summary = result.summary
        if result.verdict != "usable" and not self.force:
            low, high = summary["auc_ci"]
            raise ValueError(
                f"{self.name}: the judge {summary['judge']} is {result.verdict} on the audit "
                f"(AUC {summary['auc']:.3f} [{low:.3f}, {high:.3f}] over {summary['judgments']} "
                f"known pairs from training rows; 0.5 is chance), so its answers would add noise, "
                f"not signal. Measure it with `shopaug llm audit`; use {self.name}.accept_all=true "
                f"(no judge), a stronger model, or {self.name}.force=true to judge anyway"
            )
        return summary

    def judge(self, context: AugmentContext, progress: ProgressHook | None = None) -> ColdJudgments:
        """Ask the model about every candidate pair; "yes" answers become samples."""
        template = load_prompt(self.prompt)
        items = self.cold_items(context)
        pairs = self.find_candidates(context, items)
        audit, threshold = None, 0.5 if self.threshold is None else self.threshold
        if self.accept_all:
            results, cost, origin = [_ACCEPTED] * len(pairs), Usage(), "no judge (accept_all)"
            threshold = 0.0
        else:
            audit = self.audited(context, progress)
            if audit is not None and self.threshold is None:
                threshold = audit["threshold"]
            llm = self.llm()
            results, cost = run_batch(
                llm,
                self.requests(context, pairs, template),
                f"{self.name}: {len(items)} items, {len(pairs)} pairs",
                self.concurrency,
                progress,
            )
            origin = provenance(llm, template)
        answers = [r.parsed["answer"] if r.ok else None for r in results]
        p_yes = np.asarray([answer_probability(r) if r.ok else 0.0 for r in results], dtype=float)
        table = pd.DataFrame(
            {
                "item": pairs.items,
                "row": pairs.rows,
                "user": context.train.users[pairs.rows],
                "similarity": pairs.similarity,
                "answer": answers,
                "p_yes": p_yes,
                "reason": [r.parsed["reason"] if r.ok else None for r in results],
                "failure": [None if r.ok else f"{r.kind}: {r.reason}" for r in results],
                "cached": [bool(r.ok and r.cached) for r in results],
            }
        )
        ok = np.asarray([r.ok for r in results], dtype=bool)
        yes = ok & (p_yes >= threshold)
        samples = GeneratedSequences.build(
            append_items(context.train, pairs.rows[yes], pairs.items[yes]),
            self.name,
            origin,
            source_row=pairs.rows[yes],
            source_item=pairs.items[yes],
            # The judge's confidence weighs the guess; accept_all's stand-in answers are 1.
            score=(pairs.similarity * p_yes)[yes].astype(np.float32),
        )
        return ColdJudgments(samples, table, cost, len(items), threshold, audit)

    def generate(self, context: AugmentContext) -> GeneratedSequences:
        judgments = self.judge(context, context.progress)
        context.reports[self.name] = judgments.report()
        return judgments.samples
