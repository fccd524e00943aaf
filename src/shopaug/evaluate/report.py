"""Benchmark reports: the same content as Markdown (for a repository) and as one HTML file.

A report is built once as a list of blocks (headings, paragraphs, tables, figures) and rendered
twice, so the two formats cannot drift apart. The HTML embeds its plots as base64 PNGs and needs
nothing else to be mailed or opened offline; the Markdown links the PNGs written beside it.
Given the run's comparisons, a report of augmented runs opens with what augmentation changed:
``MODEL+aug`` minus ``MODEL`` per slice, with its CI and a verdict per model.
Figures use matplotlib's object API with the Agg canvas, never pyplot's global state, so writing a
report does not change the backend of the program that calls it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SLICE_ORDER = ("all", "warm", "cold", "pop_low", "pop_mid", "pop_high")
SLICE_LABELS = {
    "all": "all users",
    "warm": "warm targets",
    "cold": "cold targets",
    "pop_low": "low-popularity targets",
    "pop_mid": "mid-popularity targets",
    "pop_high": "high-popularity targets",
}
CI_NOTE = "Error bars and [brackets]: 95% bootstrap interval over test users."
#: The label suffix of a model trained on real + generated rows (``ModelRuns.label``).
AUG_SUFFIX = "+aug"
#: The metrics of the augmentation headline; the first decides the verdict.
HEADLINE_METRICS = ("ndcg@10", "recall@20")
TRAINING_NOTE = (
    "Training loss and validation NDCG@10 per epoch, one line per model and seed; the circle "
    "marks the epoch whose weights were kept (best validation). The test set plays no part."
)


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    name: str
    alt: str
    png: bytes


Block = tuple[
    str, str | Table | Image
]  # ("h1" | "h2" | "p", text) or ("table", ...), ("image", ...)


def write_report(
    results: Sequence[dict],
    out_dir: str | Path,
    title: str = "shopaug benchmark report",
    comparisons: Sequence[dict] | None = None,
) -> tuple[Path, Path]:
    """Write ``report.md`` (with its PNGs) and a self-contained ``report.html`` to ``out_dir``.

    ``results`` are benchmark JSONs, one per model: ``{"model", "protocol", "metrics": {slice:
    {metric: {"mean", "ci", "std", "per_seed"}}}, "beyond", "seconds", "config"}``.
    ``comparisons`` are the run's paired differences ``{"a", "b", "slice", "metric",
    "mean_diff", "ci", "p_value"}``; those of a ``MODEL+aug`` with its ``MODEL`` open the report
    (none given, or none of that kind: no headline).
    """
    if not results:
        raise ValueError("write_report needs at least one benchmark result")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = build_blocks(list(results), title, comparisons)
    for _, value in blocks:
        if isinstance(value, Image):
            (out / value.name).write_bytes(value.png)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(render_markdown(blocks), encoding="utf-8")
    html_path.write_text(render_html(blocks, title), encoding="utf-8")
    return md_path, html_path


def build_blocks(
    results: list[dict], title: str, comparisons: Sequence[dict] | None = None
) -> list[Block]:
    """The report's content, independent of the output format."""
    labels = model_labels(results)
    ks = metric_ks(results)
    blocks: list[Block] = [("h1", title), *headline_blocks(comparisons or [])]
    blocks += [("p", _summary(results, labels)), ("p", CI_NOTE)]
    if ks:
        figure = plot_metric_by_k(results, labels, ks)
        blocks += [
            ("h2", "Accuracy by cut-off K"),
            ("image", Image("metric_by_k.png", "Recall@K and NDCG@K by K", figure)),
        ]
    slice_metric = _slice_metric(ks)
    slices = slice_names(results)
    if len(slices) > 1:
        figure = plot_slices(results, labels, slices, slice_metric)
        blocks += [
            ("h2", f"{_metric_label(slice_metric)} by test slice"),
            ("image", Image("slices.png", f"{slice_metric} per slice", figure)),
        ]
    curves = [(label, r["training_curves"]) for r, label in zip(results, labels) if _curves(r)]
    if curves:
        blocks += [
            ("h2", "Training curves"),
            ("p", TRAINING_NOTE),
            (
                "image",
                Image(
                    "training.png", "loss and validation NDCG@10 by epoch", plot_training(curves)
                ),
            ),
        ]
    for name in slices:
        blocks += [
            ("h2", f"Metrics: {SLICE_LABELS.get(name, name)}"),
            ("table", metric_table(results, labels, name)),
        ]
    beyond = beyond_table(results, labels)
    if beyond.header[1:]:
        blocks += [("h2", "Beyond accuracy (top-10 lists)"), ("table", beyond)]
    blocks += [("h2", "Runs"), ("table", runs_table(results, labels))]
    return blocks


# --- reading the result dicts ----------------------------------------------------------------


def _curves(result: dict) -> bool:
    """Whether a result has a training curve with at least one validated epoch."""
    return any(
        "valid_ndcg10" in point for curve in result.get("training_curves") or [] for point in curve
    )


def model_labels(results: list[dict]) -> list[str]:
    """One legend label per result: the model, with the protocol when several are compared."""
    protocols = {r.get("protocol") for r in results}
    return [
        str(r.get("model", f"model {i + 1}"))
        + (f" ({r.get('protocol')})" if len(protocols) > 1 else "")
        for i, r in enumerate(results)
    ]


def metric_ks(results: list[dict]) -> list[int]:
    """The K of every ``recall@K``/``ndcg@K`` reported on the ``all`` slice, ascending."""
    found = {
        int(m.group(1))
        for r in results
        for name in r.get("metrics", {}).get("all", {})
        if (m := re.fullmatch(r"(?:recall|ndcg)@(\d+)", name))
    }
    return sorted(found)


def slice_names(results: list[dict]) -> list[str]:
    """Slices present in any result, in the benchmark's order, unknown ones last."""
    present = {name for r in results for name in r.get("metrics", {})}
    known = [s for s in SLICE_ORDER if s in present]
    return known + sorted(present - set(SLICE_ORDER))


def metric_names(results: list[dict], slice_name: str) -> list[str]:
    seen: dict[str, None] = {}
    for r in results:
        seen.update(dict.fromkeys(r.get("metrics", {}).get(slice_name, {})))
    return list(seen)


def _entry(result: dict, slice_name: str, metric: str) -> dict | None:
    return result.get("metrics", {}).get(slice_name, {}).get(metric)


def _mean_and_error(entry: dict | None) -> tuple[float, float, float]:
    """Mean and the (below, above) lengths of its CI bar; NaN when the value is missing."""
    if entry is None or entry.get("mean") is None:
        return math.nan, 0.0, 0.0
    mean = float(entry["mean"])
    ci = entry.get("ci")
    if not ci:
        return mean, 0.0, 0.0
    return mean, max(mean - float(ci[0]), 0.0), max(float(ci[1]) - mean, 0.0)


def _slice_metric(ks: list[int]) -> str:
    return f"ndcg@{10 if 10 in ks else (ks[0] if ks else 10)}"


def _metric_label(metric: str) -> str:
    name, _, k = metric.partition("@")
    pretty = {"recall": "Recall", "ndcg": "NDCG", "precision": "Precision", "hit": "Hit"}
    return f"{pretty.get(name, name.upper())}@{k}" if k else pretty.get(name, name.upper())


# --- the augmentation headline ----------------------------------------------------------------

Lifts = dict[str, dict[tuple[str, str], dict]]


def augmentation_lifts(comparisons: Sequence[dict]) -> Lifts:
    """The comparisons of ``MODEL+aug`` with ``MODEL``, by model and ``(slice, metric)``."""
    lifts: Lifts = {}
    for c in comparisons:
        model = str(c.get("b"))
        if str(c.get("a")) == model + AUG_SUFFIX:
            lifts.setdefault(model, {})[(str(c["slice"]), str(c["metric"]))] = c
    return lifts


def headline_blocks(comparisons: Sequence[dict]) -> list[Block]:
    """What augmentation changed, model by model: a table of lifts, verdicts and a plot.

    Empty without a ``MODEL+aug`` vs ``MODEL`` comparison on a headline metric.
    """
    lifts = augmentation_lifts(comparisons)
    present = {key for per_model in lifts.values() for key in per_model}
    metrics = [m for m in HEADLINE_METRICS if any(metric == m for _, metric in present)]
    if not metrics:
        return []
    slices = _ordered({name for name, _ in present})
    rows = [
        [model, SLICE_LABELS.get(s, s), *(_lift_cell(per_model.get((s, m))) for m in metrics)]
        for model, per_model in lifts.items()
        for s in slices
        if any((s, m) in per_model for m in metrics)
    ]
    header = ["model", "slice", *(f"lift in {_metric_label(m)} [95% CI]" for m in metrics)]
    main = _verdict_slice(slices)
    intro = (
        f"Lift from augmentation: MODEL{AUG_SUFFIX} (trained on real + generated rows) minus "
        "MODEL (the same model on real rows only), paired over the same test users, with its 95% "
        f"bootstrap interval. The verdict reads {_metric_label(metrics[0])} on "
        f"{SLICE_LABELS.get(main, main)}: significant when "
        "the interval excludes 0."
    )
    figure = plot_lifts(lifts, slices, metrics)
    return [
        ("h2", "Headline: what augmentation changed"),
        ("p", intro),
        ("table", Table(header, rows)),
        *(
            ("p", _verdict(model, per_model, metrics[0], slices))
            for model, per_model in lifts.items()
        ),
        ("image", Image("augmentation_lift.png", "lift from augmentation per slice", figure)),
    ]


def _ordered(slices: set[str]) -> list[str]:
    return [s for s in SLICE_ORDER if s in slices] + sorted(slices - set(SLICE_ORDER))


def _verdict_slice(slices: list[str]) -> str:
    return "all" if "all" in slices else slices[0]


def _signed(value: object) -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return "–"
    return f"{value:+.4f}"


def _lift_cell(record: dict | None) -> str:
    if record is None:
        return "–"
    low, high = record["ci"]
    return f"{_signed(record['mean_diff'])} [{_signed(low)}, {_signed(high)}]"


def _effect(record: dict) -> str:
    """``helps``, ``hurts`` or ``no significant difference``: does the CI exclude 0, and how."""
    low, high = record["ci"]
    if low > 0:
        return "helps"
    if high < 0:
        return "hurts"
    return "no significant difference"


def _verdict(
    model: str, per_model: dict[tuple[str, str], dict], metric: str, slices: list[str]
) -> str:
    """``MODEL: augmentation helps (...)``, with the slices where the verdict is another."""
    main = _verdict_slice(slices)
    where = f"{_metric_label(metric)} on {SLICE_LABELS.get(main, main)}"
    record = per_model.get((main, metric))
    if record is None:
        return f"{model}: no comparison of {where}."
    effect = _effect(record)
    said = f"augmentation {effect}" if effect != "no significant difference" else effect
    others = [
        f"{SLICE_LABELS.get(s, s)} ({_effect(per_model[(s, metric)])})"
        for s in slices
        if s != main and (s, metric) in per_model and _effect(per_model[(s, metric)]) != effect
    ]
    differs = f" It differs on {', '.join(others)}." if others else ""
    return f"{model}: {said} ({where} {_lift_cell(record)}).{differs}"


# --- tables ----------------------------------------------------------------------------------


def fmt(value: object) -> str:
    """Numbers short enough to scan in a table; anything else as text."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"


def _metric_cell(entry: dict | None) -> str:
    if entry is None:
        return "–"
    text = fmt(entry.get("mean"))
    if entry.get("std") is not None:
        text += f" ± {fmt(entry['std'])}"
    if entry.get("ci"):
        text += f" [{fmt(entry['ci'][0])}, {fmt(entry['ci'][1])}]"
    return text


def metric_table(results: list[dict], labels: list[str], slice_name: str) -> Table:
    """Mean ± std over seeds [95% CI over users] of every metric on one slice."""
    names = metric_names(results, slice_name)
    rows = [
        [label, *(_metric_cell(_entry(r, slice_name, m)) for m in names)]
        for r, label in zip(results, labels)
    ]
    return Table(["model", *map(_metric_label, names)], rows)


def beyond_table(results: list[dict], labels: list[str]) -> Table:
    names: dict[str, None] = {}
    for r in results:
        names.update(dict.fromkeys(r.get("beyond", {})))
    rows = [
        [label, *(fmt(r.get("beyond", {}).get(n)) for n in names)]
        for r, label in zip(results, labels)
    ]
    return Table(["model", *names], rows)


def runs_table(results: list[dict], labels: list[str]) -> Table:
    rows = []
    for r, label in zip(results, labels):
        seeds = _n_seeds(r)
        config = json.dumps(r.get("config", {}), sort_keys=True, default=str)
        rows.append([label, str(r.get("protocol", "–")), str(seeds), fmt(r.get("seconds")), config])
    return Table(["model", "protocol", "seeds", "seconds", "config"], rows)


def _n_seeds(result: dict) -> int | str:
    for metrics in result.get("metrics", {}).values():
        for entry in metrics.values():
            return len(entry.get("per_seed", [])) or "–"
    return "–"


def _summary(results: list[dict], labels: list[str]) -> str:
    protocols = sorted({str(r.get("protocol", "?")) for r in results})
    return (
        f"{len(results)} system(s): {', '.join(labels)}. Protocol {', '.join(protocols)} of "
        "BENCHMARK.md (full ranking, seen items excluded). Values are means over training seeds "
        "± their standard deviation."
    )


# --- figures ---------------------------------------------------------------------------------


def _new_figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, list(axes)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _offsets(n_models: int, width: float) -> list[float]:
    """Horizontal shifts that put the models side by side around each x position."""
    return [(i - (n_models - 1) / 2) * width for i in range(n_models)]


def plot_metric_by_k(results: list[dict], labels: list[str], ks: list[int]) -> bytes:
    """Recall@K and NDCG@K against K on all users, one line per model, CI error bars."""
    figure, axes = _new_figure(10, 4, ncols=2)
    shifts = _offsets(len(results), 0.06)
    for ax, metric in zip(axes, ("recall", "ndcg")):
        for result, label, shift in zip(results, labels, shifts):
            points = [_mean_and_error(_entry(result, "all", f"{metric}@{k}")) for k in ks]
            means, below, above = (list(v) for v in zip(*points))
            x = [i + shift for i in range(len(ks))]
            ax.errorbar(x, means, yerr=[below, above], marker="o", capsize=4, label=label)
        name = _metric_label(f"{metric}@K")
        ax.set_xticks(range(len(ks)), [str(k) for k in ks])
        ax.set_xlabel("cut-off K (items shown)")
        ax.set_ylabel(name)
        ax.set_title(f"{name} on all test users")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(title="model")
    return _png(figure)


def plot_slices(results: list[dict], labels: list[str], slices: list[str], metric: str) -> bytes:
    """One group of bars per test slice, one bar per model, CI error bars."""
    figure, (ax,) = _new_figure(max(6.0, 1.4 * len(slices) + 2), 4)
    width = 0.8 / len(results)
    for result, label, shift in zip(results, labels, _offsets(len(results), width)):
        points = [_mean_and_error(_entry(result, s, metric)) for s in slices]
        means, below, above = (list(v) for v in zip(*points))
        x = [i + shift for i in range(len(slices))]
        ax.bar(x, means, width=width, yerr=[below, above], capsize=3, label=label)
    ax.set_xticks(range(len(slices)), [SLICE_LABELS.get(s, s) for s in slices], rotation=15)
    ax.set_xlabel("test slice (by target item)")
    ax.set_ylabel(_metric_label(metric))
    ax.set_title(f"{_metric_label(metric)} per slice of test users")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="model")
    return _png(figure)


def plot_lifts(lifts: Lifts, slices: list[str], metrics: list[str]) -> bytes:
    """Lift from augmentation per slice, one bar per model, CI error bars, one panel per metric."""
    figure, axes = _new_figure(max(5.0, 1.1 * len(slices) + 1.5) * len(metrics), 4, len(metrics))
    width = 0.8 / len(lifts)
    for ax, metric in zip(axes, metrics):
        for (model, per_model), shift in zip(lifts.items(), _offsets(len(lifts), width)):
            points = [_diff_and_error(per_model.get((s, metric))) for s in slices]
            means, below, above = (list(v) for v in zip(*points))
            x = [i + shift for i in range(len(slices))]
            ax.bar(x, means, width=width, yerr=[below, above], capsize=3, label=model)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ticks = [SLICE_LABELS.get(s, s) for s in slices]
        ax.set_xticks(range(len(slices)), ticks, rotation=30, ha="right")
        ax.set_xlabel("test slice (by target item)")
        ax.set_ylabel(f"lift in {_metric_label(metric)}")
        ax.set_title(f"{_metric_label(metric)}: MODEL{AUG_SUFFIX} minus MODEL")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(title="model")
    return _png(figure)


def plot_training(curves: list[tuple[str, list[list[dict]]]]) -> bytes:
    """Loss (left) and validation NDCG@10 (right) against epoch, one colour per model."""
    figure, (loss_ax, valid_ax) = _new_figure(10, 4, ncols=2)
    colours = [f"C{i % 10}" for i in range(len(curves))]
    for (label, per_seed), colour in zip(curves, colours):
        for seed, curve in enumerate(per_seed):
            name = label if seed == 0 else None
            epochs = [p["epoch"] for p in curve]
            loss_ax.plot(epochs, [p.get("loss", math.nan) for p in curve], color=colour, label=name)
            validated = [p for p in curve if "valid_ndcg10" in p]
            if not validated:
                continue
            scores = [p["valid_ndcg10"] for p in validated]
            valid_ax.plot([p["epoch"] for p in validated], scores, color=colour, label=name)
            best = max(validated, key=lambda p: p["valid_ndcg10"])
            valid_ax.plot(best["epoch"], best["valid_ndcg10"], "o", color=colour)
    for ax, title in ((loss_ax, "training loss"), (valid_ax, "validation NDCG@10")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.set_title(f"{title} by epoch")
        ax.grid(alpha=0.3)
    valid_ax.legend(title="model")
    return _png(figure)


def _diff_and_error(record: dict | None) -> tuple[float, float, float]:
    """A paired difference and the (below, above) lengths of its CI bar; NaN when missing."""
    if record is None or record.get("mean_diff") is None:
        return math.nan, 0.0, 0.0
    diff = float(record["mean_diff"])
    low, high = (float(v) for v in record["ci"])
    return diff, max(diff - low, 0.0), max(high - diff, 0.0)


# --- rendering -------------------------------------------------------------------------------


def render_markdown(blocks: list[Block]) -> str:
    parts = []
    for kind, value in blocks:
        if isinstance(value, Table):
            parts.append(_markdown_table(value))
        elif isinstance(value, Image):
            parts.append(f"![{value.alt}]({value.name})")
        else:
            prefix = {"h1": "# ", "h2": "## "}.get(kind, "")
            parts.append(prefix + value)
    return "\n\n".join(parts) + "\n"


def _markdown_table(table: Table) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [row(table.header), row(["---"] * len(table.header))]
    return "\n".join(lines + [row(r) for r in table.rows])


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    body = []
    for kind, value in blocks:
        if isinstance(value, Table):
            body.append(_html_table(value))
        elif isinstance(value, Image):
            data = base64.b64encode(value.png).decode("ascii")
            alt = html.escape(value.alt)
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"></figure>')
        else:
            tag = kind if kind in ("h1", "h2") else "p"
            body.append(f"<{tag}>{html.escape(value)}</{tag}>")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
