"""Tests for the benchmark splits (protocols W, C, S of ../shared/BENCHMARK.md) and the time split."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.data.splits import (
    EvalCases,
    Split,
    cold_item_split,
    leave_one_out,
    make_split,
    sparse_user_split,
    time_split,
)

# --- helpers --------------------------------------------------------------------------------------


def seqs(rows: list[list[int]], users: list | None = None) -> Sequences:
    if users is None:
        users = [f"u{i}" for i in range(len(rows))]
    return Sequences.from_lists(users, rows)


def random_sequences(
    rng: np.random.Generator, n_users: int, n_items: int, min_len: int = 3, max_len: int = 9
) -> list[list[int]]:
    return [
        rng.integers(0, n_items, size=rng.integers(min_len, max_len + 1)).tolist()
        for _ in range(n_users)
    ]


def unique_event_sequences(
    rng: np.random.Generator, n_users: int, min_len: int = 3, max_len: int = 9
) -> tuple[list[list[int]], int]:
    """Sequences whose every event has its own item id, so an item id names a (user, position)."""
    lengths = rng.integers(min_len, max_len + 1, size=n_users)
    ids = rng.permutation(int(lengths.sum()))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return [ids[starts[u] : starts[u + 1]].tolist() for u in range(n_users)], int(lengths.sum())


def cases(c: EvalCases) -> list[tuple[int, list[int], int]]:
    """(user_index, input, target) of every case."""
    return [
        (int(u), inp, int(t))
        for u, inp, t in zip(c.user_index, c.inputs.to_lists(), c.targets, strict=True)
    ]


def expected_cold(n_items: int, seed: int = 0, share: float = 0.15) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_items, round(share * n_items), replace=False).tolist())


def assert_cases_equal(a: EvalCases, b: EvalCases) -> None:
    assert cases(a) == cases(b)
    assert a.inputs.users.tolist() == b.inputs.users.tolist()


def assert_split_equal(a: Split, b: Split) -> None:
    assert a.protocol == b.protocol
    assert a.n_items == b.n_items
    assert a.train.to_lists() == b.train.to_lists()
    assert a.train.users.tolist() == b.train.users.tolist()
    assert a.train_user_index.tolist() == b.train_user_index.tolist()
    assert_cases_equal(a.valid, b.valid)
    assert_cases_equal(a.test, b.test)
    assert a.cold_items.tolist() == b.cold_items.tolist()


def assert_user_ids_consistent(split: Split, original: Sequences) -> None:
    """Every ``users`` array agrees with the row index into the original user table."""
    assert split.train.users.tolist() == original.users[split.train_user_index].tolist()
    for c in (split.valid, split.test):
        assert c.inputs.users.tolist() == original.users[c.user_index].tolist()
        assert len(c.inputs) == len(c.targets) == len(c.user_index)


def is_subsequence(sub: list[int], seq: list[int]) -> bool:
    it = iter(seq)
    return all(any(x == y for y in it) for x in sub)


# --- protocol W -----------------------------------------------------------------------------------

W_ROWS = [[1, 2, 3], [4, 5, 6, 7, 8], [9, 9, 1, 2], [3, 1, 4, 1, 5, 9]]


def test_leave_one_out_hand_written() -> None:
    s = seqs(W_ROWS)
    split = leave_one_out(s, n_items=10)
    assert split.protocol == "W"
    assert split.n_items == 10
    assert split.train.to_lists() == [[1], [4, 5, 6], [9, 9], [3, 1, 4, 1]]
    assert split.train_user_index.tolist() == [0, 1, 2, 3]
    assert cases(split.valid) == [
        (0, [1], 2),
        (1, [4, 5, 6], 7),
        (2, [9, 9], 1),
        (3, [3, 1, 4, 1], 5),
    ]
    assert cases(split.test) == [
        (0, [1, 2], 3),
        (1, [4, 5, 6, 7], 8),
        (2, [9, 9, 1], 2),
        (3, [3, 1, 4, 1, 5], 9),
    ]
    assert split.cold_items.tolist() == []
    assert not split.cold_mask().any()
    assert split.cold_mask().shape == (10,)
    assert_user_ids_consistent(split, s)
    assert split.summary() == {
        "protocol": "W",
        "train_users": 4,
        "train_events": 10,
        "valid_cases": 4,
        "test_cases": 4,
        "cold_items": 0,
    }


def test_leave_one_out_random_matches_definition() -> None:
    rng = np.random.default_rng(1)
    rows = random_sequences(rng, 30, 20)
    split = leave_one_out(seqs(rows), 20)
    assert split.train.to_lists() == [r[:-2] for r in rows]
    assert cases(split.valid) == [(u, r[:-2], r[-2]) for u, r in enumerate(rows)]
    assert cases(split.test) == [(u, r[:-1], r[-1]) for u, r in enumerate(rows)]


def test_leave_one_out_short_users_error_names_user() -> None:
    s = seqs([[1, 2, 3], [4, 5], [6, 7, 8, 9], [1]], users=["alice", "bob", "carol", "dan"])
    with pytest.raises(ValueError, match="leave-one-out") as info:
        leave_one_out(s, 10)
    msg = str(info.value)
    assert "at least 3 events" in msg
    assert "2 users have fewer" in msg
    assert "user 'bob' with 2" in msg


@pytest.mark.parametrize("fn", [leave_one_out, cold_item_split, sparse_user_split])
def test_protocols_reject_short_users(fn) -> None:
    s = seqs([[1, 2, 3], [4, 5, 6], [7, 8]], users=[10, 11, 12])
    with pytest.raises(ValueError, match="user 12 with 2"):
        fn(s, 10)


# --- protocol C -----------------------------------------------------------------------------------

# With n_items=20 and seed 0 the cold items are 10, 12, 15.
C_ROWS = [
    [1, 10, 2, 3, 4, 5],  # train [1, 2, 3]; valid 4; test 5
    [10, 12, 6, 7, 8],  # only [6] left for training -> dropped (and no valid case)
    [1, 2, 3, 15, 9],  # train [1, 2, 3]; valid target 15 is cold -> no valid case
    [4, 5, 6, 7, 12],  # train [4, 5, 6]; valid 7; test target 12 is cold (kept)
    [1, 2, 10, 3],  # only [1, 2] left for training -> dropped
]


def test_cold_items_follow_protocol() -> None:
    for n_items in (10, 20, 30, 40, 101):
        split = cold_item_split(seqs([[0, 1, 2]]), n_items)
        assert split.cold_items.tolist() == expected_cold(n_items)
        mask = split.cold_mask()
        assert mask.shape == (n_items,)
        assert np.flatnonzero(mask).tolist() == expected_cold(n_items)
    assert expected_cold(20) == [10, 12, 15]


def test_cold_item_split_hand_written() -> None:
    s = seqs(C_ROWS, users=["a", "b", "c", "d", "e"])
    split = cold_item_split(s, 20)
    assert split.protocol == "C"
    assert split.cold_items.tolist() == [10, 12, 15]
    assert split.train.to_lists() == [[1, 2, 3], [1, 2, 3], [4, 5, 6]]
    assert split.train.users.tolist() == ["a", "c", "d"]
    assert split.train_user_index.tolist() == [0, 2, 3]
    assert cases(split.valid) == [(0, [1, 2, 3], 4), (3, [4, 5, 6], 7)]
    assert cases(split.test) == [
        (0, [1, 10, 2, 3, 4], 5),
        (1, [10, 12, 6, 7], 8),
        (2, [1, 2, 3, 15], 9),
        (3, [4, 5, 6, 7], 12),
        (4, [1, 2, 10], 3),
    ]
    assert_user_ids_consistent(split, s)
    assert split.summary()["cold_items"] == 3


def test_cold_item_split_test_equals_leave_one_out_on_original() -> None:
    rng = np.random.default_rng(2)
    s = seqs(random_sequences(rng, 40, 25))
    assert_cases_equal(cold_item_split(s, 25).test, leave_one_out(s, 25).test)
    assert_cases_equal(cold_item_split(s, 25, seed=5).test, leave_one_out(s, 25).test)


def test_cold_item_split_deterministic_per_seed() -> None:
    rng = np.random.default_rng(3)
    s = seqs(random_sequences(rng, 40, 60))
    assert_split_equal(cold_item_split(s, 60, seed=4), cold_item_split(s, 60, seed=4))
    assert cold_item_split(s, 60).cold_items.tolist() == expected_cold(60, 0)
    assert cold_item_split(s, 60, seed=1).cold_items.tolist() == expected_cold(60, 1)
    a = cold_item_split(s, 60, seed=0)
    b = cold_item_split(s, 60, seed=1)
    assert a.cold_items.tolist() != b.cold_items.tolist()
    assert a.train.to_lists() != b.train.to_lists()


def test_cold_item_split_share() -> None:
    split = cold_item_split(seqs([[0, 1, 2]]), 40, share=0.5, seed=2)
    assert split.cold_items.tolist() == expected_cold(40, seed=2, share=0.5)
    assert len(split.cold_items) == 20


def reference_cold_split(rows: list[list[int]], n_items: int, seed: int):
    cold = set(expected_cold(n_items, seed))
    train, train_idx, valid = [], [], []
    for u, r in enumerate(rows):
        t = [i for i in r[:-2] if i not in cold]
        if len(t) >= 3:
            train.append(t)
            train_idx.append(u)
            if r[-2] not in cold:
                valid.append((u, t, r[-2]))
    test = [(u, r[:-1], r[-1]) for u, r in enumerate(rows)]
    return cold, train, train_idx, valid, test


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_cold_item_split_random_property(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n_items = int(rng.integers(5, 40))
    rows = random_sequences(rng, int(rng.integers(1, 50)), n_items, max_len=12)
    s = seqs(rows)
    split = cold_item_split(s, n_items, seed=seed)
    cold, train, train_idx, valid, test = reference_cold_split(rows, n_items, seed)

    assert set(split.cold_items.tolist()) == cold
    assert split.train.to_lists() == train
    assert split.train_user_index.tolist() == train_idx
    assert cases(split.valid) == valid
    assert cases(split.test) == test
    assert_user_ids_consistent(split, s)

    # invariants stated by the protocol, independently of the reference
    mask = split.cold_mask()
    assert not mask[split.train.items].any()
    assert not mask[split.valid.inputs.items].any()
    assert not mask[split.valid.targets].any()
    assert np.all(split.train.lengths >= 3)
    assert set(split.valid.user_index.tolist()) <= set(split.train_user_index.tolist())


# --- protocol S -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n_users", [1, 4, 10, 12, 33])
def test_sparse_user_split(n_users: int) -> None:
    rng = np.random.default_rng(n_users)
    rows = random_sequences(rng, n_users, 15)
    s = seqs(rows)
    split = sparse_user_split(s, 15)
    kept = sorted(np.random.default_rng(0).choice(n_users, round(0.25 * n_users), replace=False))
    kept = [int(k) for k in kept]

    assert split.protocol == "S"
    assert split.train_user_index.tolist() == kept
    assert split.train.to_lists() == [rows[k][:-2] for k in kept]
    assert split.train.users.tolist() == [f"u{k}" for k in kept]
    assert cases(split.valid) == [(k, rows[k][:-2], rows[k][-2]) for k in kept]
    assert cases(split.test) == [(u, r[:-1], r[-1]) for u, r in enumerate(rows)]
    assert len(split.test) == n_users
    assert split.cold_items.tolist() == []
    assert_user_ids_consistent(split, s)


def test_sparse_user_split_seed_and_share() -> None:
    rng = np.random.default_rng(8)
    s = seqs(random_sequences(rng, 40, 15))
    a = sparse_user_split(s, 15, seed=3, share=0.5)
    exp = sorted(np.random.default_rng(3).choice(40, 20, replace=False).tolist())
    assert a.train_user_index.tolist() == exp
    assert_split_equal(a, sparse_user_split(s, 15, seed=3, share=0.5))
    b = sparse_user_split(s, 15, seed=4, share=0.5)
    assert a.train_user_index.tolist() != b.train_user_index.tolist()


# --- time split (T) -------------------------------------------------------------------------------

# Shares 0.1/0.2 put the cuts at quantiles 0.7 and 0.8 of the 23 event times: 16 events before
# t=100 (cut 1 falls in (15, 100)), 2 in [100, 200) and 5 from t=200 on (cut 2 falls in (101, 200)).
T_ROWS = [
    [1, 2, 3, 4, 5],
    [6, 7],
    [9, 10, 11, 12],
    [13, 14],
    [15, 16, 17, 18, 19, 20, 21, 22],
    [30, 31],
]
T_TIMES = [
    [0, 1, 2, 100, 200],
    [3, 4],
    [5, 6, 7, 201],
    [101, 202],
    [8, 9, 10, 11, 12, 13, 14, 15],
    [210, 211],
]


def test_time_split_hand_written() -> None:
    s = seqs(T_ROWS)
    t = np.array([x for r in T_TIMES for x in r])
    lo, hi = np.quantile(t, [1.0 - 0.2 - 0.1, 1.0 - 0.2])
    assert 15 < lo < 100 and 101 < hi < 200  # the fixture's premise

    split = time_split(s, t, n_items=40, valid_share=0.1, test_share=0.2)
    assert split.protocol == "T"
    # training: only events before the first cut; users without any leave training
    assert split.train.to_lists() == [[1, 2, 3], [6, 7], [9, 10, 11], list(range(15, 23))]
    assert split.train_user_index.tolist() == [0, 1, 2, 4]
    # user 3's first validation-window event is their very first event: no validation case
    assert cases(split.valid) == [(0, [1, 2, 3], 4)]
    # user 2: the first test-window event is the target, later ones are not used;
    # user 3: the input may hold a validation-window event;
    # user 5: the first test-window event is the user's first event: no test case
    assert cases(split.test) == [(0, [1, 2, 3, 4], 5), (2, [9, 10, 11], 12), (3, [13], 14)]
    assert_user_ids_consistent(split, s)


def test_time_split_accepts_datetimes() -> None:
    s = seqs(T_ROWS)
    t = np.array([x for r in T_TIMES for x in r])
    a = time_split(s, t, 40, valid_share=0.1, test_share=0.2)
    dt = np.datetime64("2024-01-01T00:00:00") + t.astype("timedelta64[s]")
    b = time_split(s, dt, 40, valid_share=0.1, test_share=0.2)
    assert_split_equal(a, b)


def test_time_split_rejects_wrong_timestamp_count() -> None:
    s = seqs(T_ROWS)
    with pytest.raises(ValueError, match="one entry per event"):
        time_split(s, np.arange(s.n_events - 1), 40)
    with pytest.raises(ValueError, match="one entry per event"):
        time_split(s, np.arange(s.n_events + 1), 40)


def reference_time_split(rows, times, lo, hi):
    train, train_idx = [], []
    for u, (r, ts) in enumerate(zip(rows, times, strict=True)):
        kept = [i for i, x in zip(r, ts, strict=True) if x < lo]
        if kept:
            train.append(kept)
            train_idx.append(u)

    def window(start, end):
        out = []
        for u, (r, ts) in enumerate(zip(rows, times, strict=True)):
            inside = [p for p, x in enumerate(ts) if start <= x < end]
            if inside and inside[0] > 0:
                out.append((u, r[: inside[0]], r[inside[0]]))
        return out

    return train, train_idx, window(lo, hi), window(hi, np.inf)


@pytest.mark.parametrize("seed", range(6))
def test_time_split_random_property(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n_users = int(rng.integers(1, 30))
    rows = random_sequences(rng, n_users, 20, min_len=1, max_len=10)
    # time-ordered per user; ties across and within users allowed
    times = [np.sort(rng.integers(0, 60, size=len(r))).tolist() for r in rows]
    t = np.array([x for ts in times for x in ts])
    vs, ts_share = float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.05, 0.3))
    split = time_split(seqs(rows), t, 20, valid_share=vs, test_share=ts_share)
    lo, hi = np.quantile(t, [1.0 - ts_share - vs, 1.0 - ts_share])
    train, train_idx, valid, test = reference_time_split(rows, times, lo, hi)
    assert split.train.to_lists() == train
    assert split.train_user_index.tolist() == train_idx
    assert cases(split.valid) == valid
    assert cases(split.test) == test
    assert_user_ids_consistent(split, seqs(rows))


# --- make_split -----------------------------------------------------------------------------------


def test_make_split_dispatch() -> None:
    rng = np.random.default_rng(4)
    s = seqs(random_sequences(rng, 20, 30))
    assert_split_equal(make_split("W", s, 30), leave_one_out(s, 30))
    assert_split_equal(make_split("C", s, 30), cold_item_split(s, 30, seed=0))
    assert_split_equal(make_split("C", s, 30, seed=3), cold_item_split(s, 30, seed=3))
    assert_split_equal(make_split("S", s, 30), sparse_user_split(s, 30, seed=0))
    assert_split_equal(make_split("S", s, 30, seed=3), sparse_user_split(s, 30, seed=3))
    t = rng.integers(0, 100, size=s.n_events)
    t = np.concatenate([np.sort(t[s.indptr[u] : s.indptr[u + 1]]) for u in range(len(s))])
    assert_split_equal(make_split("T", s, 30, timestamps=t), time_split(s, t, 30))


def test_make_split_errors() -> None:
    s = seqs(W_ROWS)
    with pytest.raises(ValueError, match="unknown protocol 'X'"):
        make_split("X", s, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"protocol T .* needs event timestamps"):
        make_split("T", s, 10)


# --- leakage --------------------------------------------------------------------------------------


def assert_no_target_in_train(split: Split, rows: list[list[int]]) -> None:
    """With one item id per event, an item names its (user, position): check positions."""
    where = {item: (u, p) for u, r in enumerate(rows) for p, item in enumerate(r)}
    train_positions: dict[int, list[int]] = {}
    for u, r in zip(split.train_user_index, split.train.to_lists(), strict=True):
        pos = []
        for item in r:
            owner, p = where[item]
            assert owner == u, "a training row holds another user's event"
            pos.append(p)
        assert pos == sorted(pos), "training events out of order"
        train_positions[int(u)] = pos
    for c in (split.valid, split.test):
        for u, inp, target in cases(c):
            owner, p = where[target]
            assert owner == u
            assert p not in train_positions.get(u, [])
            # the input is history: strictly before the target, of the same user
            inp_pos = [where[i][1] for i in inp]
            assert all(where[i][0] == u for i in inp)
            assert all(q < p for q in inp_pos)


@pytest.mark.parametrize("protocol", ["W", "C", "S"])
@pytest.mark.parametrize("seed", range(4))
def test_no_leakage_of_eval_targets_into_train(protocol: str, seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    rows, n_items = unique_event_sequences(rng, int(rng.integers(4, 40)))
    split = make_split(protocol, seqs(rows), n_items, seed=seed)  # type: ignore[arg-type]
    assert_no_target_in_train(split, rows)
    for u, r in zip(split.train_user_index, split.train.to_lists(), strict=True):
        orig = rows[u]
        # training keeps a subsequence of the prefix that ends before the validation target
        assert is_subsequence(r, orig[:-2])
        if protocol != "C":
            assert r == orig[:-2]
    valid_pos = {u: len(rows[u]) - 2 for u in split.valid.user_index.tolist()}
    for u, _, target in cases(split.valid):
        assert rows[u][valid_pos[u]] == target
    for u, _, target in cases(split.test):
        assert rows[u][-1] == target


@pytest.mark.parametrize("seed", range(4))
def test_time_split_no_leakage(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    rows, n_items = unique_event_sequences(rng, int(rng.integers(4, 30)), min_len=1)
    times = [np.sort(rng.integers(0, 100, size=len(r))).tolist() for r in rows]
    t = np.array([x for ts in times for x in ts])
    split = time_split(seqs(rows), t, n_items)
    assert_no_target_in_train(split, rows)
    time_of = {i: x for r, ts in zip(rows, times, strict=True) for i, x in zip(r, ts, strict=True)}
    cut = np.quantile(t, 0.8)
    assert all(time_of[i] < cut for i in split.train.items.tolist())
    earliest_target = min(
        [time_of[int(i)] for c in (split.valid, split.test) for i in c.targets], default=np.inf
    )
    assert all(time_of[i] < earliest_target for i in split.train.items.tolist())
