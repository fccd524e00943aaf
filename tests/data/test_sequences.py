"""Tests for the CSR-style ``Sequences`` container."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.data.sequences import Sequences

ROWS = [[5, 6, 7], [], [1], [2, 3, 4, 8]]
USERS = ["a", "b", "c", "d"]
WEIGHTS = [[1.0, 0.5, 0.25], [], [0.75], [1.0, 1.0, 0.5, 0.125]]


@pytest.fixture
def seq() -> Sequences:
    return Sequences.from_lists(USERS, ROWS)


@pytest.fixture
def wseq() -> Sequences:
    return Sequences.from_lists(USERS, ROWS, WEIGHTS)


def row_weights(s: Sequences) -> list[list[float]]:
    w = s.event_weights()
    return [w[s.indptr[u] : s.indptr[u + 1]].tolist() for u in range(len(s))]


def random_lists(rng: np.random.Generator, n_rows: int, max_len: int = 6) -> list[list[int]]:
    return [rng.integers(0, 50, size=rng.integers(0, max_len + 1)).tolist() for _ in range(n_rows)]


# --- construction ---------------------------------------------------------------------------------


def test_from_lists_to_lists_round_trip(seq: Sequences) -> None:
    assert seq.to_lists() == ROWS
    assert seq.users.tolist() == USERS
    assert seq.indptr.tolist() == [0, 3, 3, 4, 8]
    assert seq.items.tolist() == [5, 6, 7, 1, 2, 3, 4, 8]
    assert seq.indptr.dtype == np.int64
    assert seq.items.dtype == np.int64
    assert seq.weights is None
    assert len(seq) == 4
    assert seq.n_events == 8


def test_from_lists_with_weights(wseq: Sequences) -> None:
    assert wseq.weights is not None
    assert wseq.weights.dtype == np.float32
    assert row_weights(wseq) == WEIGHTS
    assert wseq.to_lists() == ROWS


def test_from_lists_empty() -> None:
    s = Sequences.from_lists([], [])
    assert len(s) == 0
    assert s.n_events == 0
    assert s.to_lists() == []
    assert s.lengths.tolist() == []
    assert s.row_ids().tolist() == []
    assert s.positions().tolist() == []
    assert s.last(1).tolist() == []
    assert s.truncate(2).to_lists() == []


def test_from_lists_round_trip_random() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        lists = random_lists(rng, int(rng.integers(0, 8)))
        users = list(range(100, 100 + len(lists)))
        s = Sequences.from_lists(users, lists)
        assert s.to_lists() == lists
        assert s.users.tolist() == users
        assert s.lengths.tolist() == [len(x) for x in lists]


def test_from_rows() -> None:
    users = np.array(["x", "y", "z", "w"])
    codes = np.array([0, 0, 2, 2, 2])
    items = np.array([4, 5, 6, 7, 8], dtype=np.int32)
    s = Sequences.from_rows(codes, items, users)
    assert s.to_lists() == [[4, 5], [], [6, 7, 8], []]
    assert s.users.tolist() == ["x", "y", "z", "w"]
    assert s.indptr.tolist() == [0, 2, 2, 5, 5]
    assert s.items.dtype == np.int64
    assert s.weights is None


def test_from_rows_carries_weights() -> None:
    w = np.array([1.0, 0.5, 0.25], dtype=np.float32)
    s = Sequences.from_rows(np.array([1, 1, 2]), np.array([9, 8, 7]), np.array([10, 11, 12]), w)
    assert s.to_lists() == [[], [9, 8], [7]]
    assert row_weights(s) == [[], [1.0, 0.5], [0.25]]


def test_from_rows_matches_from_lists() -> None:
    rng = np.random.default_rng(3)
    lists = random_lists(rng, 9)
    codes = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    items = np.array([i for x in lists for i in x], dtype=np.int64)
    a = Sequences.from_rows(codes, items, np.arange(len(lists)))
    b = Sequences.from_lists(np.arange(len(lists)), lists)
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.items, b.items)


# --- validation -----------------------------------------------------------------------------------


def test_post_init_rejects_indptr_of_wrong_length() -> None:
    with pytest.raises(ValueError, match="indptr has 2 entries, expected len\\(users\\)\\+1=3"):
        Sequences(np.array([1, 2]), np.array([0, 1]), np.array([5]))


def test_post_init_rejects_indptr_not_ending_at_items() -> None:
    with pytest.raises(ValueError, match="indptr ends at 3 but there are 2 items"):
        Sequences(np.array([1, 2]), np.array([0, 1, 3]), np.array([5, 6]))


def test_post_init_rejects_weights_of_wrong_length() -> None:
    with pytest.raises(ValueError, match="one entry per item event"):
        Sequences(np.array([1]), np.array([0, 2]), np.array([5, 6]), np.array([1.0]))


def test_post_init_accepts_consistent_arrays() -> None:
    s = Sequences(np.array([1, 2]), np.array([0, 2, 3]), np.array([5, 6, 7]), np.ones(3))
    assert s.to_lists() == [[5, 6], [7]]


# --- properties -----------------------------------------------------------------------------------


def test_lengths_row_ids_positions(seq: Sequences) -> None:
    assert seq.lengths.tolist() == [3, 0, 1, 4]
    assert seq.row_ids().tolist() == [0, 0, 0, 2, 3, 3, 3, 3]
    assert seq.positions().tolist() == [0, 1, 2, 0, 0, 1, 2, 3]
    assert seq.row(0).tolist() == [5, 6, 7]
    assert seq.row(1).tolist() == []
    assert seq.row(3).tolist() == [2, 3, 4, 8]


def test_row_ids_and_positions_random() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        lists = random_lists(rng, int(rng.integers(1, 8)))
        s = Sequences.from_lists(np.arange(len(lists)), lists)
        exp_rows = [u for u, x in enumerate(lists) for _ in x]
        exp_pos = [p for x in lists for p in range(len(x))]
        assert s.row_ids().tolist() == exp_rows
        assert s.positions().tolist() == exp_pos
        # row_ids/positions locate each event back in its row
        for k, (u, p) in enumerate(zip(s.row_ids(), s.positions(), strict=True)):
            assert lists[u][p] == s.items[k]


def test_event_weights_default_is_ones(seq: Sequences) -> None:
    w = seq.event_weights()
    assert w.dtype == np.float32
    assert w.shape == (seq.n_events,)
    assert np.all(w == 1.0)


def test_event_weights_returns_given(wseq: Sequences) -> None:
    assert wseq.event_weights() is wseq.weights


# --- select_events --------------------------------------------------------------------------------


def test_select_events(wseq: Sequences) -> None:
    keep = wseq.items % 2 == 0  # items 5 6 7 | - | 1 | 2 3 4 8
    out = wseq.select_events(keep)
    assert out.to_lists() == [[6], [], [], [2, 4, 8]]
    assert out.users.tolist() == USERS
    assert row_weights(out) == [[0.5], [], [], [1.0, 0.5, 0.125]]
    # the input is untouched
    assert wseq.to_lists() == ROWS


def test_select_events_can_empty_every_row(seq: Sequences) -> None:
    out = seq.select_events(np.zeros(seq.n_events, dtype=bool))
    assert out.to_lists() == [[], [], [], []]
    assert len(out) == len(seq)
    assert out.indptr.tolist() == [0, 0, 0, 0, 0]
    assert out.weights is None


def test_select_events_random() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        lists = random_lists(rng, int(rng.integers(1, 8)))
        s = Sequences.from_lists(np.arange(len(lists)), lists)
        keep = rng.random(s.n_events) < 0.5
        it = iter(keep.tolist())
        expected = [[i for i in x if next(it)] for x in lists]
        assert s.select_events(keep).to_lists() == expected


# --- select_rows ----------------------------------------------------------------------------------


def test_select_rows_bool_mask(wseq: Sequences) -> None:
    out = wseq.select_rows(np.array([True, False, False, True]))
    assert out.to_lists() == [[5, 6, 7], [2, 3, 4, 8]]
    assert out.users.tolist() == ["a", "d"]
    assert row_weights(out) == [WEIGHTS[0], WEIGHTS[3]]


def test_select_rows_indices_keep_given_order(wseq: Sequences) -> None:
    out = wseq.select_rows(np.array([3, 0, 2]))
    assert out.to_lists() == [[2, 3, 4, 8], [5, 6, 7], [1]]
    assert out.users.tolist() == ["d", "a", "c"]
    assert row_weights(out) == [WEIGHTS[3], WEIGHTS[0], WEIGHTS[2]]


def test_select_rows_repeats_and_empty_rows(seq: Sequences) -> None:
    out = seq.select_rows(np.array([1, 2, 2]))
    assert out.to_lists() == [[], [1], [1]]
    assert out.users.tolist() == ["b", "c", "c"]


def test_select_rows_none(seq: Sequences) -> None:
    out = seq.select_rows(np.array([], dtype=np.int64))
    assert len(out) == 0
    assert out.to_lists() == []
    out = seq.select_rows(np.zeros(4, dtype=bool))
    assert len(out) == 0


def test_select_rows_random() -> None:
    rng = np.random.default_rng(9)
    for _ in range(20):
        lists = random_lists(rng, int(rng.integers(1, 8)))
        wl = [rng.random(len(x)).astype(np.float32).tolist() for x in lists]
        s = Sequences.from_lists(np.arange(len(lists)), lists, wl)
        idx = rng.integers(0, len(lists), size=rng.integers(0, 10))
        out = s.select_rows(idx)
        assert out.to_lists() == [lists[i] for i in idx]
        assert out.users.tolist() == idx.tolist()
        assert row_weights(out) == [wl[i] for i in idx]


# --- truncate / last ------------------------------------------------------------------------------


def test_truncate_one(wseq: Sequences) -> None:
    out = wseq.truncate(1)
    assert out.to_lists() == [[5, 6], [], [], [2, 3, 4]]
    assert out.users.tolist() == USERS
    assert row_weights(out) == [[1.0, 0.5], [], [], [1.0, 1.0, 0.5]]


def test_truncate_two_empties_short_rows(seq: Sequences) -> None:
    assert seq.truncate(2).to_lists() == [[5], [], [], [2, 3]]
    assert seq.truncate(3).to_lists() == [[], [], [], [2]]
    assert seq.truncate(10).to_lists() == [[], [], [], []]


def test_truncate_zero_is_identity(seq: Sequences) -> None:
    assert seq.truncate(0).to_lists() == ROWS


def test_truncate_random() -> None:
    rng = np.random.default_rng(13)
    for _ in range(20):
        lists = random_lists(rng, int(rng.integers(1, 8)))
        s = Sequences.from_lists(np.arange(len(lists)), lists)
        for k in (1, 2, 3):
            assert s.truncate(k).to_lists() == [x[: max(len(x) - k, 0)] for x in lists]


def test_last() -> None:
    s = Sequences.from_lists([1, 2, 3], [[5, 6, 7], [1, 2], [9, 8, 7, 6]])
    assert s.last(1).tolist() == [7, 2, 6]
    assert s.last().tolist() == [7, 2, 6]
    assert s.last(2).tolist() == [6, 1, 7]


def test_last_errors_on_short_rows() -> None:
    s = Sequences.from_lists([1, 2], [[5, 6, 7], [1]])
    assert s.last(1).tolist() == [7, 1]
    with pytest.raises(ValueError, match="fewer than 2 events"):
        s.last(2)
    with pytest.raises(ValueError, match="fewer than 1 events"):
        Sequences.from_lists([1, 2], [[5], []]).last(1)


def test_rank_within_runs_counts_from_zero_in_each_group():
    from shopaug.data.sequences import rank_within_runs

    assert rank_within_runs(np.array([3, 3, 5, 7, 7, 7])).tolist() == [0, 1, 0, 0, 1, 2]
    assert rank_within_runs(np.array([], dtype=np.int64)).tolist() == []
