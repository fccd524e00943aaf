"""Stage 4: honest evaluation — full ranking, beyond-accuracy, bootstraps and reports.

- :mod:`~shopaug.evaluate.ranking`: rank each held-out target over the whole catalog
  (:func:`evaluate_model`), per-case metrics and test slices.
- :mod:`~shopaug.evaluate.metrics`: beyond-accuracy of top-k lists, and :func:`evaluate_lists`
  for any system's lists against truth with several relevant items per user.
- :mod:`~shopaug.evaluate.stats`: bootstrap intervals over users, spread over seeds, paired tests.
- :mod:`~shopaug.evaluate.report`: Markdown and self-contained HTML reports with plots.

Names are loaded on first use: ``shopaug evaluate`` needs only the list metrics, and importing
the model stack (and matplotlib) would slow down every command of the CLI. The public names
are those of ``__all__``, each from the module listed in ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "metrics": (
        "beyond_accuracy",
        "catalog_coverage",
        "evaluate_lists",
        "intra_list_diversity",
        "item_popularity",
        "ListMetrics",
        "list_metrics_per_user",
        "mean_popularity",
        "novelty",
    ),
    "ranking": (
        "RankingResult",
        "evaluate_model",
        "popularity_cuts",
        "rank_metrics",
        "rank_targets",
        "slice_masks",
    ),
    "stats": (
        "BootstrapResult",
        "bootstrap_mean_ci",
        "compare_runs",
        "MeanCI",
        "paired_bootstrap",
        "seed_summary",
        "summarize_runs",
    ),
    "report": ("write_report",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'shopaug.evaluate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shopaug.evaluate.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


__all__ = sorted(_MODULE_OF)
