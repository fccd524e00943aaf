import json

import pandas as pd
import pytest

from shopaug.pipeline import run_pipeline
from shopaug.pipeline import stages as stages_module


def by_stage(outcome):
    return {s.stage: s for s in outcome.stages}


def test_a_rerun_reuses_every_stage_and_gives_the_same_metrics(tiny):
    config = tiny()
    first = run_pipeline(config)
    second = run_pipeline(config)
    ran = by_stage(first)
    assert set(ran) == {
        "ingest",
        "augment",
        "train pop",
        "train pop+aug",
        "train markov",
        "train markov+aug",
        "evaluate",
    }
    assert not any(s.reused for s in first.stages)
    assert all(s.reused for s in second.stages)
    assert first.results == second.results
    assert [r["model"] for r in first.results["results"]] == [
        "pop",
        "pop+aug",
        "markov",
        "markov+aug",
    ]
    assert first.augment_counts()["0"]["crop"] > 0
    out = config.out
    per_user = pd.read_parquet(out / "per_user.parquet")
    assert set(per_user["model"]) == {"pop", "pop+aug", "markov", "markov+aug"}
    assert {"ndcg@10", "in:all"} <= set(per_user.columns)
    record = json.loads((out / "run.json").read_text())
    assert [s["reused"] for s in record["stages"]] == [True] * len(second.stages)
    assert (out / "data" / "items.parquet").exists()  # the ingested store, linked


def test_changing_a_model_parameter_reruns_only_that_model(tiny):
    run_pipeline(tiny())
    changed = run_pipeline(tiny(models={"pop": {}, "markov": {"order": 2}}))
    reused = {s.stage: s.reused for s in changed.stages}
    assert reused["ingest"] and reused["augment"]
    assert reused["train pop"] and reused["train pop+aug"]
    assert not reused["train markov"] and not reused["train markov+aug"]
    assert not reused["evaluate"]


def test_a_run_killed_in_training_is_finished_by_the_next(tiny, monkeypatch):
    config = tiny(augment=None)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages_module, "run_model", killed)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config)
    assert not any((config.cache / "train").iterdir())
    monkeypatch.undo()
    outcome = run_pipeline(config)
    assert by_stage(outcome)["ingest"].reused
    assert not by_stage(outcome)["train pop"].reused


def test_a_tune_section_chooses_the_plan_and_only_its_model_trains_with_it(tiny):
    from shopaug.workflow.tune import TunedPlan

    config = tiny(augment=None, tune={"model": "markov", "trials": 3})
    outcome = run_pipeline(config)
    stages = [s.stage for s in outcome.stages]
    assert stages.index("tune") == 1
    plan = TunedPlan.load(config.out / "plan.yaml")
    assert outcome.tuned == plan and plan.model == "markov" and len(plan.trials) >= 3
    labels = [r["model"] for r in outcome.results["results"]]
    assert labels == (["pop", "markov", "markov+aug"] if plan.augment else ["pop", "markov"])
    again = run_pipeline(config)
    assert next(s for s in again.stages if s.stage == "tune").reused
    assert TunedPlan.load(config.out / "plan.yaml") == plan


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tune": {"model": "markov"}}, "the tune section chooses the plan"),
        ({"augment": None, "tune": {"model": "als"}}, "tune.model: 'als' is not among"),
        ({"augmented_models": ["als"]}, "augmented_models: 'als' is not among"),
        ({"augment": None, "tune": {"model": "markov", "trials": 0}}, "trials"),
    ],
)
def test_tune_and_augmented_models_are_checked_with_the_config(tiny, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(**changes)


def test_augmented_models_limit_which_models_train_twice(tiny):
    outcome = run_pipeline(tiny(augmented_models=["markov"]))
    assert [r["model"] for r in outcome.results["results"]] == ["pop", "markov", "markov+aug"]
