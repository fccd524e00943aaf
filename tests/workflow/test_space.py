import optuna
import pytest

from shopaug.workflow.space import DEFAULT_SPACE, Range, SearchSpace, sample_trial


def space(**kw):
    base = {"strategies": ["mask", "insert"], "filters": [["exact-duplicates", "ratio-cap"]]}
    return SearchSpace(**{**base, **kw})


def test_the_shipped_space_loads_and_checks_against_every_schema():
    shipped = SearchSpace.load()
    assert shipped == SearchSpace.load(DEFAULT_SPACE)
    for model in ("sasrec", "content", "markov"):
        shipped.check(model)
    assert "mask+insert" in shipped.strategy_sets()
    assert all(s.count("+") < shipped.max_strategies for s in shipped.strategy_sets())


def test_strategy_sets_are_every_combination_up_to_the_maximum():
    three = space(strategies=["crop", "mask", "insert"], max_strategies=2)
    assert three.strategy_sets() == [
        "crop",
        "mask",
        "insert",
        "crop+mask",
        "crop+insert",
        "mask+insert",
    ]


def test_ranges_are_checked():
    with pytest.raises(ValueError, match="above high"):
        Range(low=5, high=1)
    with pytest.raises(ValueError, match="log range"):
        Range(low=0, high=1, log=True)
    assert Range(low=1, high=20).integer and not Range(low=0.2, high=1.0).integer


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"strategies": ["mask", "shuffle"]}, "unknown strategy 'shuffle'"),
        ({"filters": [["exact-duplicates", "dedupe"]]}, "unknown filter 'dedupe'"),
    ],
)
def test_unknown_names_fail_when_the_space_is_read(change, message):
    with pytest.raises(ValueError, match=message):
        space(**change)


def test_check_tries_the_ends_of_every_range_before_any_trial():
    # Strategies take at most 100 copies: a range reaching 500 fails now, not in trial 7.
    with pytest.raises(ValueError, match="copies"):
        space(copies={"low": 1, "high": 500}).check("sasrec")
    with pytest.raises(ValueError, match="dropout"):
        space(model_params={"sasrec": {"dropout": {"low": 0.1, "high": 1.5}}}).check("sasrec")
    space(model_params={"sasrec": {"dropout": {"low": 0.1, "high": 0.5}}}).check("sasrec")


def test_a_bad_file_names_itself(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("strategies: [mask]\nfilters: [[ratio-cap]]\ncopies: {low: 1}\n")
    with pytest.raises(ValueError, match=str(path)):
        SearchSpace.load(path)
    path.write_text("strategies: [mask\n")
    with pytest.raises(ValueError, match="cannot read"):
        SearchSpace.load(path)


def test_a_trial_becomes_a_plan_with_shared_and_conditional_parameters():
    chosen = space(
        strategies=["mask", "insert", "cold-neighbours"],
        copies={"low": 1, "high": 20},
        correlation=["text", "cooccurrence"],
        max_ratio={"low": 1.0, "high": 10.0},
        weight=0.7,
        filters=[["exact-duplicates"], ["exact-duplicates", "ratio-cap"]],
        model_params={"sasrec": {"dropout": [0.2, 0.5]}},
    )
    trial = optuna.trial.FixedTrial(
        {
            "sasrec.dropout": 0.2,
            "augment": True,
            "strategies": "insert+cold-neighbours",
            "copies": 7,
            "correlation": "cooccurrence",
            "filters": "exact-duplicates,ratio-cap",
            "max_ratio": 4.0,
        }
    )
    plan, params = sample_trial(trial, chosen, "sasrec")
    assert params == {"dropout": 0.2}
    assert plan.strategies == ["insert", "cold-neighbours"]
    # copies and correlation go to the strategies that take them, and only to those.
    assert plan.params == {"insert": {"copies": 7, "correlation": "cooccurrence"}}
    assert plan.filters == ["exact-duplicates", "ratio-cap"]
    assert plan.filter_params == {"ratio-cap": {"max_ratio": 4.0}}
    assert plan.weight == 0.7
    plan.build_strategies()  # every value is one the strategies accept

    no_cap = optuna.trial.FixedTrial(
        {
            "sasrec.dropout": 0.5,
            "augment": True,
            "strategies": "mask",
            "copies": 2,
            "filters": "exact-duplicates",
        }
    )
    plan, _ = sample_trial(no_cap, chosen, "sasrec")
    assert plan.filter_params == {} and plan.params == {"mask": {"copies": 2}}


def test_a_trial_without_augmentation_samples_only_the_model():
    trial = optuna.trial.FixedTrial({"augment": False})
    assert sample_trial(trial, space(), "markov") == (None, {})


def test_without_text_drops_what_needs_item_embeddings():
    full = space(
        strategies=["mask", "insert", "cold-neighbours"], correlation=["text", "cooccurrence"]
    )
    bare = full.without_text()
    assert bare.strategies == ["mask", "insert"] and bare.correlation == "cooccurrence"
    with pytest.raises(ValueError, match="needs item text embeddings"):
        space(strategies=["cold-neighbours"]).without_text()


def test_trial_zero_values_are_the_models_defaults_or_the_fixed_ones():
    tuned = space(
        model_params={
            "content": {
                "id_dropout": {"low": 0.3, "high": 0.9},
                "hidden": [32, 128],  # the default, 64, is not a choice: left to the sampler
            }
        }
    )
    assert tuned.model_defaults("content", {}) == {"content.id_dropout": 0.3}
    assert tuned.model_defaults("content", {"hidden": 128, "id_dropout": 0.5}) == {
        "content.id_dropout": 0.5,
        "content.hidden": 128,
    }
