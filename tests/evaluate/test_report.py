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
