import numpy as np
import optuna
import pytest

import shopaug.workflow.experiment as experiment
import shopaug.workflow.tune as tuning
from shopaug.models.augmented import AugmentPlan
from shopaug.workflow import DataSetup, prepare_training
from shopaug.workflow.space import SearchSpace
from shopaug.workflow.tune import (
    COLD_GUARD,
    Objective,
    TrialRecord,
    TuneConfig,
    TunedPlan,
    TuneProgress,
    Tuner,
    choose,
    inner_cold_training,
    trial_record,
    tune,
)

SMALL = SearchSpace(
    strategies=["crop", "insert"],
    copies={"low": 1, "high": 4},
    correlation=["text", "cooccurrence"],
    weight={"low": 0.3, "high": 1.0},
    max_ratio={"low": 1.0, "high": 5.0},
    filters=[["exact-duplicates", "ratio-cap"]],
)


def config(shop_run, **kw):
    return TuneConfig(**{"data": shop_run, "model": "markov", "protocol": "W", "trials": 4, **kw})


def record_rankings(monkeypatch):
    """The targets of every set of cases the tuner ranks (wherever it ranks them)."""
    seen = []
    real = tuning.evaluate_model

    def recording(model, cases, **kw):
        seen.append(cases.targets.copy())
        return real(model, cases, **kw)

    for module in (tuning, experiment):
        monkeypatch.setattr(module, "evaluate_model", recording)
    return seen


class Recorder(TuneProgress):
    def __init__(self):
        self.finished, self.validations = [], []

    def validated(self, number, epoch, score):
        self.validations.append((number, epoch))

    def trial_finished(self, record, best):
        self.finished.append((record.number, best.number if best else None))


def test_trial_zero_trains_on_real_rows_and_every_trial_is_recorded(shop_run):
    progress = Recorder()
    plan = tune(config(shop_run), SMALL, progress)
    first = plan.trials[0]
    assert first.number == 0 and first.augment is None and first.state == "complete"
    assert plan.baseline_score == max(t.score for t in plan.trials if t.augment is None)
    fitted = [t for t in plan.trials if t.state != "repeat"]
    assert len(fitted) == 4 and [n for n, _ in progress.finished] == [t.number for t in plan.trials]
    augmented = [t for t in fitted if t.augment is not None]
    assert augmented and all(t.kept > 0 for t in augmented)
    chosen = next(t for t in plan.trials if t.number == plan.chosen_trial)
    assert plan.score == chosen.score and plan.augment == chosen.augment
    assert plan.protocol == "W" and plan.objective == "validation NDCG@10"


def test_tuning_scores_validation_cases_only(shop_run, monkeypatch):
    seen = record_rankings(monkeypatch)
    tune(config(shop_run, trials=3), SMALL)
    split, _ = prepare_training(DataSetup(data=shop_run, protocol="W", embed_items=False))
    assert seen and all(np.array_equal(t, split.valid.targets) for t in seen)
    assert not any(np.array_equal(t, split.test.targets) for t in seen)


def test_protocol_c_is_scored_on_the_inner_cold_split(shop_run, monkeypatch):
    seen = record_rankings(monkeypatch)
    plan = tune(config(shop_run, protocol="C", trials=2), SMALL)
    assert plan.protocol == "C" and "inner cold split" in plan.objective
    figures = plan.trials[0].figures
    assert {"inner_cold_recall@20", "inner_warm_recall@20"} <= set(figures)
    assert plan.trials[0].score == pytest.approx(
        (figures["inner_cold_recall@20"] + figures["inner_warm_recall@20"]) / 2
    )
    setup = DataSetup(data=shop_run, protocol="C", embed_items=False)
    inner, _ = inner_cold_training(setup, 1)
    outer, _ = prepare_training(setup)
    assert all(np.array_equal(t, inner.test.targets) for t in seen)
    # The inner cases are the outer training rows' last events, never an outer target.
    assert not any(np.array_equal(t, outer.test.targets) for t in seen)
    assert not any(np.array_equal(t, outer.valid.targets) for t in seen)


def test_repeats_are_free_and_an_exhausted_space_stops_the_search(shop_run):
    one_plan = SMALL.model_copy(
        update={"strategies": ["crop"], "copies": 2, "weight": 0.5, "max_ratio": 2.0}
    )
    plan = tune(config(shop_run, trials=3), one_plan)
    fitted = [t for t in plan.trials if t.state != "repeat"]
    assert len(fitted) == 2  # real rows alone, and the one plan the space holds
    assert len(plan.trials) <= tuning.REPEAT_ALLOWANCE * 3
    repeats = [t for t in plan.trials if t.state == "repeat"]
    assert repeats and all(t.score in {f.score for f in fitted} for t in repeats)


def test_the_time_limit_stops_new_trials(shop_run):
    plan = tune(config(shop_run, trials=50, time_limit=1e-6), SMALL)
    assert len(plan.trials) == 1 and plan.augment is None
    assert "no augmentation plan finished" in plan.verdict


def test_poor_trials_of_an_early_stopped_model_are_pruned(shop_run):
    cfg = config(shop_run, model="sasrec", params={"epochs": 3, "hidden": 16, "n_heads": 1})
    _, train = prepare_training(cfg.setup("W"))
    progress = Recorder()
    tuner = Tuner(cfg, SMALL, Objective(train), progress, records=[])
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.0)
    )
    study.enqueue_trial(
        {
            "augment": True,
            "strategies": "crop",
            "copies": 1,
            "weight": 0.5,
            "filters": "exact-duplicates,ratio-cap",
            "max_ratio": 2.0,
        }
    )
    study.optimize(tuner.run_trial, n_trials=1)
    record = trial_record(study.trials[0])
    # Every validation reached the tuner; the first one below the threshold stopped the fit.
    assert progress.validations == [(0, 1)]
    assert record.state == "pruned" and record.best_epoch == 1 and record.score is not None


def records(*scores, augmented=()):
    plan = AugmentPlan(strategies=["mask"])
    return [
        TrialRecord(number=i, state="complete", score=s, augment=plan if i in augmented else None)
        for i, s in enumerate(scores)
    ]


def test_a_plan_is_chosen_only_when_it_beats_no_augmentation_by_the_margin():
    chosen, plain, verdict = choose(records(0.10, 0.12, 0.105, augmented=(1, 2)), 0.05)
    assert chosen.number == 1 and plain.number == 0 and "+20.0%" in verdict
    chosen, plain, verdict = choose(records(0.10, 0.104, augmented=(1,)), 0.05)
    assert chosen.number == 0 and "no plan beat" in verdict and "+4.0%" in verdict
    chosen, _, _ = choose(records(0.10, 0.09, augmented=(1,)), 0.0)
    assert chosen.number == 0
    # Pruned trials are never chosen, whatever their last score.
    pruned = records(0.10, 0.5, augmented=(1,))
    pruned[1].state = "pruned"
    assert choose(pruned, 0.0)[0].number == 0


def test_on_protocol_c_a_plan_that_lowers_cold_targets_is_passed_over():
    # Trial 1 scores best on the mean, but its cold-target recall is below the plain trial's.
    trials = records(0.10, 0.13, 0.11, augmented=(1, 2))
    for record, cold in zip(trials, (0.08, 0.07, 0.09), strict=True):
        record.figures = {COLD_GUARD: cold}
    chosen, plain, verdict = choose(trials, 0.05, COLD_GUARD)
    assert chosen.number == 2 and plain.number == 0
    assert "passed over" in verdict and "trial 1 (0.0700)" in verdict
    # Without the guard the mean alone decides.
    assert choose(trials, 0.05)[0].number == 1
    # Nothing left that keeps cold targets: the real rows alone, and the verdict says why.
    trials[2].figures = {COLD_GUARD: 0.05}
    chosen, _, verdict = choose(trials, 0.05, COLD_GUARD)
    assert chosen.number == 0 and "2 plan(s) lowered" in verdict


def test_the_plan_file_round_trips_and_bad_files_name_themselves(shop_run, tmp_path):
    plan = tune(config(shop_run, trials=2), SMALL)
    path = plan.save(tmp_path / "plan.yaml")
    assert TunedPlan.load(path) == plan
    path.write_text("model: markov\n")
    with pytest.raises(ValueError, match=f"{path}: not a plan"):
        TunedPlan.load(path)
    with pytest.raises(ValueError, match="cannot read"):
        TunedPlan.load(tmp_path / "missing.yaml")


def test_config_is_validated_before_any_data_is_read(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        TuneConfig(data=tmp_path, model="nope")
    with pytest.raises(ValueError, match="hidden"):
        TuneConfig(data=tmp_path, model="sasrec", params={"hidden": -1})
    with pytest.raises(ValueError, match="trials"):
        TuneConfig(data=tmp_path, model="markov", trials=0)


def test_trial_zero_is_the_model_with_its_default_parameters(shop_run):
    from shopaug.models import model_class

    order = {"markov": {"order": {"low": 1, "high": 5}}}
    spaced = SearchSpace.model_validate({**SMALL.model_dump(), "model_params": order})
    plan = tune(config(shop_run, trials=3), spaced)
    default = model_class("markov").Params.model_fields["order"].default
    assert plan.trials[0].augment is None and plan.trials[0].params == {"order": default}


def test_a_tuned_blend_keeps_the_weights_its_chosen_trial_picked(shop_run, tmp_path):
    """A refit on every event has no validation: the plan carries the chosen trial's weights."""
    from shopaug.serve.bundle import TrainConfig

    blend = {"models": ["markov", "pop"]}
    plan = tune(config(shop_run, model="blend", params=blend, trials=2), SMALL)
    chosen = next(t for t in plan.trials if t.number == plan.chosen_trial)
    assert plan.choices == chosen.choices and plan.choices["chosen_on"] == "validation"
    assert TunedPlan.load(plan.save(tmp_path / "plan.yaml")) == plan
    refit = TrainConfig.from_plan(plan, tmp_path / "plan.yaml", data=shop_run)
    assert refit.params["weights"] == plan.choices["weights"]
    assert refit.params["combine"] == plan.choices["combines"]
