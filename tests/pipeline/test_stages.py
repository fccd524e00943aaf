import json
import os

import numpy as np
import pytest

from shopaug.augment import AugmentContext, generate
from shopaug.models.augmented import AugmentPlan
from shopaug.pipeline.executor import LocalExecutor
from shopaug.pipeline.stages import (
    DONE,
    StageCache,
    sharded_samples,
    stage_key,
)


def test_a_finished_stage_is_reused_and_a_new_slice_runs(tmp_path):
    cache = StageCache(tmp_path)
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("x")
        return {"n": 1}

    first = cache.run("encode", {"a": 1}, build)
    again = cache.run("encode", {"a": 1}, build)
    other = cache.run("encode", {"a": 2}, build)
    assert not first.reused and again.reused and not other.reused
    assert len(calls) == 2
    assert again.path == first.path and (again.path / "out.txt").read_text() == "x"
    assert again.info == {"n": 1}
    assert json.loads((first.path / DONE).read_text())["material"] == {"a": 1}


def test_an_interrupted_stage_leaves_nothing_a_later_run_trusts(tmp_path):
    cache = StageCache(tmp_path)

    def crash(folder):
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.run("train", {"m": 1}, crash)
    assert list((tmp_path / "train").iterdir()) == []
    # A folder under the final name without stage.json (say, copied in by hand) is rebuilt.
    final = tmp_path / "train" / stage_key("train", {"m": 1})
    final.mkdir()
    (final / "stale.txt").write_text("old")
    record = cache.run("train", {"m": 1}, lambda folder: None)
    assert not record.reused
    assert not (record.path / "stale.txt").exists()


def test_folders_abandoned_by_a_killed_process_are_removed(tmp_path):
    cache = StageCache(tmp_path)
    key = stage_key("augment", {"a": 1})
    dead = tmp_path / "augment" / f".{key}.999999999.deadbeef.tmp"  # no such process
    alive = tmp_path / "augment" / f".{key}.{os.getpid()}.cafe.tmp"  # still building
    dead.mkdir(parents=True)
    alive.mkdir()
    cache.run("augment", {"a": 1}, lambda folder: None)
    assert not dead.exists() and alive.exists()


def test_key_depends_on_stage_and_material():
    assert stage_key("train", {"a": 1}) == stage_key("train", {"a": 1})
    assert stage_key("train", {"a": 1}) != stage_key("train", {"a": 2})
    assert stage_key("train", {"a": 1}) != stage_key("evaluate", {"a": 1})


def test_one_shard_gives_the_unsharded_samples(small_train):
    train, plan = small_train, AugmentPlan(strategies=["crop", "reorder"])
    context = AugmentContext(train.sequences, train.n_items)
    expected, _ = generate(plan.build_strategies(7), context)
    samples, runs = sharded_samples(train, plan, 7, LocalExecutor(), 1)
    assert np.array_equal(samples.sequences.items, expected.sequences.items)
    assert np.array_equal(samples.source_row, expected.source_row)
    assert [r.name for r in runs] == ["crop", "reorder"]


def test_shards_keep_each_sample_with_the_row_it_came_from(small_train):
    train, plan = small_train, AugmentPlan(strategies=["crop"], params={"crop": {"copies": 2}})
    samples, runs = sharded_samples(train, plan, 0, LocalExecutor(), 3)
    assert runs[0].samples == len(samples) > 0
    source = train.sequences
    assert np.array_equal(samples.sequences.users, source.users[samples.source_row])
    for row in range(len(samples)):  # a crop is a contiguous piece of its source row
        piece, whole = samples.sequences.row(row), source.row(samples.source_row[row])
        assert any(np.array_equal(whole[i : i + len(piece)], piece) for i in range(len(whole)))


def test_each_shard_keeps_its_own_strategy_report(small_train, monkeypatch):
    """Shard reports (an LLM strategy's calls and answers) are listed, not one kept for all."""
    from shopaug.augment.sequence import Crop

    class ReportingCrop(Crop):
        def generate(self, context):
            context.reports[self.name] = {"rows": len(context.train)}
            return super().generate(context)

    monkeypatch.setattr(AugmentPlan, "build_strategies", lambda self, seed: [ReportingCrop()])
    plan = AugmentPlan(strategies=["crop"])
    _, runs = sharded_samples(small_train, plan, 0, LocalExecutor(), 3)
    shards = runs[0].details["shards"]
    assert len(shards) == 3 and sum(s["rows"] for s in shards) == len(small_train.sequences)
    _, (one,) = sharded_samples(small_train, plan, 0, LocalExecutor(), 1)
    assert one.details == {"rows": len(small_train.sequences)}
