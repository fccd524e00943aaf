"""A tiny demo-shop run config, written in code, that the pipeline tests run in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.models import TrainData
from shopaug.pipeline import RunConfig


def tiny_config(out: Path, **changes: Any) -> RunConfig:
    """Demo shop of 80 items and 60 users, protocol W, pop + markov, crop augmentation."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "out": out,
        "data": {"source": "demo", "shop": {"n_items": 80, "n_users": 60, "seed": 1}},
        "split": {"protocol": "W"},
        "encoder": {"enabled": False},
        "augment": {"strategies": ["crop"], "filters": ["exact-duplicates"]},
        "models": {"pop": {}, "markov": {}},
        "evaluation": {"seeds": 1, "n_resamples": 100},
        "report": {"enabled": False},
        "tracking": {"enabled": False},
    }
    raw.update(changes)
    return RunConfig.model_validate(raw)


@pytest.fixture
def tiny(tmp_path: Path):
    def make(**changes: Any) -> RunConfig:
        return tiny_config(tmp_path / "run", **changes)

    return make


@pytest.fixture
def small_train() -> TrainData:
    """40 random rows of 3 to 8 events over 30 items."""
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(0, 30, size=rng.integers(3, 9))) for _ in range(40)]
    return TrainData(Sequences.from_lists(np.arange(100, 140), rows), 30)
