import numpy as np
import pytest

from shopaug.data.splits import EvalCases
from shopaug.evaluate.ranking import evaluate_model
from shopaug.models import make_model
from shopaug.models.augmented import AugmentPlan
from shopaug.pipeline.config import ExecutorConfig
from shopaug.pipeline.executor import (
    LocalExecutor,
    chunks,
    make_executor,
    shard_seed,
    user_shards,
)
from shopaug.pipeline.stages import sharded_ranker, sharded_samples


def add(shared, x):
    return shared + x


def test_local_map_keeps_order_and_passes_shared():
    assert LocalExecutor().map(add, [1, 2, 3], 10) == [11, 12, 13]
    assert isinstance(make_executor(ExecutorConfig()), LocalExecutor)


def test_shard_seeds_are_fixed_and_distinct():
    assert shard_seed(5, 0, 1) == 5
    seeds = [shard_seed(5, s, 4) for s in range(4)]
    assert len(set(seeds)) == 4
    assert seeds == [shard_seed(5, s, 4) for s in range(4)]
    assert seeds != [shard_seed(6, s, 4) for s in range(4)]


def test_user_shards_partition_rows_and_keep_users_together():
    users = np.array([3, 1, 3, 2, 7, 1])
    shards = user_shards(users, 3)
    assert sorted(np.concatenate(shards).tolist()) == list(range(6))
    for rows in shards:
        others = np.setdiff1d(np.arange(6), rows)
        assert not set(users[rows]) & set(users[others])


def test_chunks_cover_every_position_once():
    pieces = chunks(10, 3)
    assert [i for s in pieces for i in range(10)[s]] == list(range(10))
    assert chunks(2, 5) == [slice(0, 1), slice(1, 2)]


@pytest.fixture(scope="session")
def ray_executor():
    """One local Ray cluster (one CPU) for the test session."""
    ray = pytest.importorskip("ray")
    executor = make_executor(ExecutorConfig(kind="ray", num_cpus=1))
    yield executor
    ray.shutdown()


def test_ray_gives_the_same_samples_as_in_process(ray_executor, small_train):
    train = small_train
    plan = AugmentPlan(strategies=["crop", "mask", "reorder"], params={"crop": {"copies": 2}})
    local, local_runs = sharded_samples(train, plan, 3, LocalExecutor(), 3)
    remote, remote_runs = sharded_samples(train, plan, 3, ray_executor, 3)
    assert len(local) > 0
    assert np.array_equal(local.sequences.indptr, remote.sequences.indptr)
    assert np.array_equal(local.sequences.items, remote.sequences.items)
    assert np.array_equal(local.source_row, remote.source_row)
    assert local.origin.tolist() == remote.origin.tolist()
    assert [r.samples for r in local_runs] == [r.samples for r in remote_runs]


def test_batch_scoring_on_shards_and_on_ray_equals_one_piece(ray_executor, small_train):
    model = make_model("markov").fit(small_train)
    rng = np.random.default_rng(4)
    cases = EvalCases(small_train.sequences, rng.integers(0, 30, 40), np.arange(40))
    whole = evaluate_model(model, cases, ks=(5, 10))
    for executor in (LocalExecutor(), ray_executor):
        sharded = sharded_ranker(executor, 3)(model, cases, ks=(5, 10))
        np.testing.assert_array_equal(sharded.ranks, whole.ranks)
        np.testing.assert_array_equal(sharded.top_items, whole.top_items)
        np.testing.assert_array_equal(sharded.users, whole.users)
