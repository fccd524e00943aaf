import base64
import re

import numpy as np

from shopaug.evaluate.ranking import RankingResult, slice_masks
from shopaug.evaluate.report import write_report
from shopaug.evaluate.stats import summarize_runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bench_json(model: str, shift: int, seeds: int = 3) -> dict:
    """A benchmark result as `shopaug bench rec` writes it, from fake per-seed ranks."""
    rng = np.random.default_rng(shift)
    targets = np.arange(300) % 50
    runs = [
        RankingResult(
            ranks=rng.integers(0, 60 + shift, 300),
            targets=targets,
            top_items=np.zeros((300, 10), dtype=np.int64),
            users=np.arange(300),
            n_items=50,
            ks=(10, 20, 50),
            seconds=1.0,
        )
        for _ in range(seeds)
    ]
    masks = slice_masks(targets, np.arange(50), cold_mask=np.arange(50) < 8)
    return {
        "model": model,
        "protocol": "C",
        "metrics": summarize_runs(runs, masks, n_resamples=100),
        "beyond": {"coverage": 0.5, "diversity": 0.7, "novelty": 9.1, "mean_popularity": 120.5},
        "seconds": 12.5,
        "config": {"dim": 64, "epochs": 10},
    }


def test_report_writes_markdown_and_self_contained_html(tmp_path):
    results = [bench_json("sasrec", 0), bench_json("pop <baseline>", 40, seeds=1)]
    md_path, html_path = write_report(results, tmp_path / "report", title="Scientific, protocol C")

    html = html_path.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2
    assert all(base64.b64decode(data).startswith(PNG_SIGNATURE) for data in images)
    assert "pop &lt;baseline&gt;" in html  # names are escaped
    assert "Scientific, protocol C" in html

    markdown = md_path.read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert linked == ["metric_by_k.png", "slices.png"]
    assert all((md_path.parent / name).read_bytes().startswith(PNG_SIGNATURE) for name in linked)
    for heading in ("all users", "cold targets", "warm targets", "low-popularity targets"):
        assert f"## Metrics: {heading}" in markdown
    # mean ± std [CI] for three seeds; a single seed has no spread to show.
    assert re.search(r"\| sasrec \| \d\.\d{4} ± \d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", markdown)
    assert re.search(r"\| pop <baseline> \| \d\.\d{4} \[", markdown)
    assert "| coverage | diversity | novelty | mean_popularity |" in markdown
    assert '{"dim": 64, "epochs": 10}' in markdown
    assert "| 12.5 |" in markdown


def lift(a: str, b: str, slice_name: str, metric: str, diff: float, low: float, high: float):
    """A comparison record as `compare_models` writes it."""
    return {
        "a": a,
        "b": b,
        "slice": slice_name,
        "metric": metric,
        "mean_diff": diff,
        "ci": [low, high],
        "p_value": 0.01,
    }


AUGMENTED_COMPARISONS = [
    lift("pop+aug", "pop", "all", "ndcg@10", 0.0010, -0.0020, 0.0040),
    lift("sasrec", "pop", "all", "ndcg@10", 0.0999, 0.0900, 0.1100),  # baseline pairs: not lifts
    lift("sasrec+aug", "pop", "all", "ndcg@10", 0.1122, 0.1000, 0.1250),
    lift("sasrec+aug", "sasrec", "all", "ndcg@10", 0.0123, 0.0050, 0.0200),
    lift("sasrec+aug", "sasrec", "all", "recall@20", 0.0040, -0.0010, 0.0090),
    lift("sasrec+aug", "sasrec", "all", "mrr", 0.0777, 0.0700, 0.0800),
    lift("sasrec+aug", "sasrec", "cold", "ndcg@10", -0.0300, -0.0500, -0.0100),
]


def test_augmented_runs_open_the_report_with_their_lift(tmp_path):
    results = [bench_json(m, i) for i, m in enumerate(["pop", "pop+aug", "sasrec", "sasrec+aug"])]
    md_path, html_path = write_report(results, tmp_path, comparisons=AUGMENTED_COMPARISONS)

    markdown = md_path.read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert headings[0] == "Headline: what augmentation changed"
    table = "\n".join(
        [
            "| model | slice | lift in NDCG@10 [95% CI] | lift in Recall@20 [95% CI] |",
            "| --- | --- | --- | --- |",
            "| pop | all users | +0.0010 [-0.0020, +0.0040] | – |",
            "| sasrec | all users | +0.0123 [+0.0050, +0.0200] | +0.0040 [-0.0010, +0.0090] |",
            "| sasrec | cold targets | -0.0300 [-0.0500, -0.0100] | – |",
        ]
    )
    assert table in markdown
    assert (
        "pop: no significant difference (NDCG@10 on all users +0.0010 [-0.0020, +0.0040])."
        in markdown
    )
    assert (
        "sasrec: augmentation helps (NDCG@10 on all users +0.0123 [+0.0050, +0.0200]). "
        "It differs on cold targets (hurts)." in markdown
    )
    # Only MODEL+aug minus MODEL is a lift: not the baseline pairs, not the other metrics.
    headline = markdown.split("## ")[1]
    assert table in headline
    assert not {"0.0999", "0.1122", "0.0777"} & set(re.findall(r"\d\.\d{4}", headline))
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert linked == ["augmentation_lift.png", "metric_by_k.png", "slices.png"]
    assert (tmp_path / "augmentation_lift.png").read_bytes().startswith(PNG_SIGNATURE)

    html = html_path.read_text(encoding="utf-8")
    assert html.index("<h2>Headline: what augmentation changed</h2>") < html.index("<h2>Metrics")
    assert "<td>sasrec</td><td>cold targets</td><td>-0.0300 [-0.0500, -0.0100]</td>" in html
    assert "sasrec: augmentation helps (NDCG@10 on all users +0.0123" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 3


def test_no_headline_without_an_augmented_pair(tmp_path):
    results = [bench_json("pop", 0), bench_json("sasrec+aug", 1)]
    baseline_only = [c for c in AUGMENTED_COMPARISONS if c["b"] == "pop" and c["a"] != "pop+aug"]
    for comparisons, folder in ((None, "none"), (baseline_only, "baseline")):
        md_path, html_path = write_report(results, tmp_path / folder, comparisons=comparisons)
        for text in (md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")):
            assert "Headline" not in text and "augmentation" not in text
        assert not (tmp_path / folder / "augmentation_lift.png").exists()


def test_training_curves_are_plotted_when_a_model_has_them(tmp_path):
    curve = [
        {"epoch": 1.0, "loss": 7.1, "valid_ndcg10": 0.041},
        {"epoch": 2.0, "loss": 6.2, "valid_ndcg10": 0.052},
        {"epoch": 3.0, "loss": 5.9, "valid_ndcg10": 0.049},
    ]
    with_curves = {**bench_json("sasrec", 0), "training_curves": [curve, curve[:2]]}
    without = {**bench_json("markov", 5), "training_curves": []}
    md_path, html_path = write_report([with_curves, without], tmp_path / "report")
    markdown = md_path.read_text(encoding="utf-8")
    assert "## Training curves" in markdown and "training.png" in markdown
    assert (md_path.parent / "training.png").read_bytes().startswith(PNG_SIGNATURE)
    assert len(re.findall(r"data:image/png;base64", html_path.read_text(encoding="utf-8"))) == 3
    md_plain, _ = write_report([without], tmp_path / "plain")
    assert "Training curves" not in md_plain.read_text(encoding="utf-8")
