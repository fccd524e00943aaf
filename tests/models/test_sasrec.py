"""SASRec on a toy shop whose next item is always the current one plus one (mod n)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from shopaug.data.sequences import Sequences
from shopaug.data.splits import leave_one_out
from shopaug.models.base import TrainData
from shopaug.models.ranking import rank_targets
from shopaug.models.sasrec import SASRec, history_matrix, make_windows

N_ITEMS = 24
FAST = {"hidden": 32, "n_layers": 1, "n_heads": 2, "max_len": 8, "dropout": 0.1}
# One thread: multi-threaded float reductions differ in the last bits between runs.
FAST |= {"lr": 5e-3, "batch_size": 64, "num_threads": 1}


def cycle_sequences(n_users: int = 160, seed: int = 0) -> Sequences:
    """Each user walks i, i+1, i+2, ... (mod N_ITEMS) from a random start, 6 to 12 steps."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, N_ITEMS, n_users)
    lengths = rng.integers(6, 13, n_users)
    seqs = [[(s + t) % N_ITEMS for t in range(n)] for s, n in zip(starts, lengths)]
    return Sequences.from_lists(np.arange(n_users), seqs)


@pytest.fixture(scope="module")
def split():
    return leave_one_out(cycle_sequences(), N_ITEMS)


@pytest.fixture(scope="module")
def fitted(split) -> SASRec:
    data = TrainData(split.train, N_ITEMS, valid=split.valid)
    return SASRec(epochs=30, patience=5, **FAST).fit(data)


def hit_rate_at_1(model: SASRec, cases) -> float:
    ranks = rank_targets(model.score(cases.inputs), cases.targets, cases.inputs)
    return float(np.mean(ranks == 0))


def test_learns_the_next_item_rule(fitted: SASRec, split) -> None:
    assert hit_rate_at_1(fitted, split.test) > 0.9


def test_score_shape_and_dtype(fitted: SASRec, split) -> None:
    scores = fitted.score(split.test.inputs)
    assert scores.shape == (len(split.test), N_ITEMS) and scores.dtype == np.float32
    items, _ = fitted.recommend(split.test.inputs, k=3)
    assert items.shape == (len(split.test), 3)


def test_only_the_last_max_len_items_count(fitted: SASRec) -> None:
    long = Sequences.from_lists([0], [list(range(20))])
    tail = Sequences.from_lists([0], [list(range(20 - FAST["max_len"], 20))])
    np.testing.assert_allclose(fitted.score(long), fitted.score(tail), rtol=1e-5, atol=1e-5)


def test_early_stopping_restores_the_best_epoch(fitted: SASRec, split) -> None:
    scored = [h for h in fitted.history_ if "valid_ndcg10" in h]
    best = max(scored, key=lambda h: h["valid_ndcg10"])
    assert fitted.best_epoch_ == int(best["epoch"])
    assert fitted.best_score_ == pytest.approx(best["valid_ndcg10"])
    assert fitted._valid_ndcg(split.valid) == pytest.approx(fitted.best_score_, abs=1e-6)


def test_patience_stops_training(split) -> None:
    data = TrainData(split.train, N_ITEMS, valid=split.valid)
    model = SASRec(epochs=50, patience=1, **{**FAST, "lr": 0.0}).fit(data)
    assert len(model.history_) == 2 and model.best_epoch_ == 1


def test_save_load_round_trip(fitted: SASRec, split, tmp_path: Path) -> None:
    fitted.save(tmp_path / "sasrec.pt")
    loaded = SASRec.load(tmp_path / "sasrec.pt")
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.score(split.test.inputs), fitted.score(split.test.inputs))


def test_same_seed_same_model_other_seed_differs(split) -> None:
    data = TrainData(split.train, N_ITEMS)
    a, b, c = (SASRec(epochs=2, seed=s, **FAST).fit(data) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.score(split.test.inputs), b.score(split.test.inputs))
    assert not np.array_equal(a.score(split.test.inputs), c.score(split.test.inputs))


def test_zero_weight_rows_are_ignored(split) -> None:
    """Rows of weight 0 train exactly like no rows; weight 0.5 on the same rows is not nothing."""
    noise = Sequences.from_lists([900, 901], [[3, 17, 5, 11], [8, 2, 20, 1, 9]])

    def with_noise(weight: float) -> Sequences:
        seqs = split.train.to_lists() + noise.to_lists()
        weights = [[1.0] * len(s) for s in split.train.to_lists()]
        weights += [[weight] * len(s) for s in noise.to_lists()]
        return Sequences.from_lists(np.arange(len(seqs)), seqs, weights)

    def scores(seq: Sequences) -> np.ndarray:
        model = SASRec(
            epochs=2, batch_size=1024, **{k: v for k, v in FAST.items() if k != "batch_size"}
        )
        return model.fit(TrainData(seq, N_ITEMS)).score(split.test.inputs)

    clean = scores(split.train)
    np.testing.assert_array_equal(scores(with_noise(0.0)), clean)
    assert not np.allclose(scores(with_noise(0.5)), clean)


@pytest.mark.parametrize("loss", ["bce", "sampled"])
def test_sampled_losses_learn(split, loss: str) -> None:
    data = TrainData(split.train, N_ITEMS)
    model = SASRec(epochs=25, loss=loss, n_negatives=4, **FAST).fit(data)
    assert hit_rate_at_1(model, split.test) > 0.5


def test_windows_cover_every_target_once() -> None:
    seq = Sequences.from_lists([0, 1, 2], [[1, 2, 3, 4, 5, 6, 7], [9], [4, 8]])
    w = make_windows(seq, max_len=3)
    # 6 pairs of row 0 -> two windows; row 1 has no pair; row 2 one pair.
    assert len(w) == 3
    np.testing.assert_array_equal(w.inputs[0], [4 + 1, 5 + 1, 6 + 1])
    np.testing.assert_array_equal(w.targets[0], [5, 6, 7])
    np.testing.assert_array_equal(w.inputs[1], [1 + 1, 2 + 1, 3 + 1])
    np.testing.assert_array_equal(w.targets[1], [2, 3, 4])
    np.testing.assert_array_equal(w.inputs[2], [0, 0, 4 + 1])
    np.testing.assert_array_equal(w.targets[2], [-1, -1, 8])
    np.testing.assert_array_equal(w.lengths, [3, 3, 1])
    np.testing.assert_array_equal(w.rows, [0, 0, 2])  # which row each window was cut from
    assert sorted(w.targets[w.targets >= 0].tolist()) == [2, 3, 4, 5, 6, 7, 8]


def test_history_matrix_keeps_the_tail_left_padded() -> None:
    seq = Sequences.from_lists([0, 1], [[1, 2, 3, 4], [7]])
    np.testing.assert_array_equal(history_matrix(seq, 3), [[3, 4, 5], [0, 0, 8]])
