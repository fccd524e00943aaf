"""Model parameters as typed schemas: construction, get_params, coercion and error messages."""

from __future__ import annotations

import inspect

import pytest

from shopaug.models import (
    MODELS,
    ParameterError,
    check_model_params,
    make_model,
    model_param_specs,
)

#: Every model's defaults before the schemas existed (the hand-written ``__init__``s): a schema
#: must not change a default, or every published number would move.
SASREC = {
    "hidden": 64,
    "n_layers": 2,
    "n_heads": 2,
    "max_len": 50,
    "dropout": 0.5,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 256,
    "epochs": 200,
    "patience": 10,
    "eval_every": 1,
    "loss": "ce",
    "n_negatives": 1,
    "mask_history": False,
    "item_bias": False,
    "seed": 0,
    "num_threads": None,
    "device": "cpu",
    "verbose": False,
}
FACTORS = {"factors": 128, "fold_in": True, "num_threads": 0, "random_state": 0}
DEFAULTS = {
    "pop": {"by_category": False},
    "pop-category": {"by_category": True},
    "itemknn": {"neighbors": 100, "shrink": 50.0, "similarity": "cosine", "history_decay": 0.6},
    "markov": {"smoothing": 30.0, "order": 5, "decay": 0.6},
    "als": {**FACTORS, "regularization": 10.0, "alpha": 50.0, "iterations": 15},
    "bpr": {**FACTORS, "learning_rate": 0.1, "regularization": 0.01, "iterations": 300},
    "sasrec": SASREC,
    "content": {
        **SASREC,
        "mode": "fuse",
        "projection": "linear",
        "id_dropout": 0.3,
        "id_weight": 0.6,
        "text_learns_from": "all",
    },
    "blend": {
        "models": ["markov", "content"],
        "params": {},
        "weights": None,
        "combine": "auto",
        "grid": 11,
        "seed": 0,
    },
}


def test_defaults_are_unchanged_and_every_model_is_covered() -> None:
    assert set(DEFAULTS) == set(MODELS)
    for name, defaults in DEFAULTS.items():
        assert make_model(name).get_params() == defaults, name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_schema_is_what_get_params_and_the_signature_read(name: str) -> None:
    specs = model_param_specs(name)
    model = make_model(name)
    assert [s.name for s in specs] == list(model.get_params())
    assert list(inspect.signature(MODELS[name]).parameters) == [s.name for s in specs]
    for spec in specs:
        assert spec.help, f"{name}.{spec.name} has no help line"
        assert spec.type and getattr(model, spec.name) == spec.default


def test_command_line_strings_are_coerced_to_the_declared_types() -> None:
    model = make_model("sasrec", hidden="32", lr="1e-3", item_bias="true", num_threads="1")
    params = model.get_params()
    assert (params["hidden"], params["lr"], params["item_bias"]) == (32, 1e-3, True)
    assert params["num_threads"] == 1
    assert check_model_params("markov", {"order": "2"}) == {"order": 2}  # only what was given


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("markov", {"order": "abc"}, "markov.order: expected int >= 1 (default 5), got 'abc'"),
        ("markov", {"order": 0}, "markov.order: expected int >= 1 (default 5), got 0"),
        ("markov", {"order": True}, "markov.order: expected int >= 1"),
        ("markov", {"decay": 2}, "markov.decay: expected float in [0, 1] (default 0.6), got 2"),
        ("itemknn", {"similarity": "pearson"}, "one of 'cosine', 'jaccard' (default 'cosine')"),
        ("sasrec", {"dropout": 1.0}, "sasrec.dropout: expected float in [0, 1)"),
        ("sasrec", {"num_threads": "x"}, "expected int >= 0 or null (default null)"),
        ("sasrec", {"hidden": 30, "n_heads": 4}, "hidden=30 must be divisible by n_heads=4"),
        ("markov", {"ordr": 2}, "markov.ordr: unknown parameter; did you mean 'order'?"),
        ("markov", {"nosuch": 1}, "(parameters: smoothing, order, decay)"),
    ],
)
def test_a_bad_parameter_names_itself_and_what_it_takes(name, params, expected) -> None:
    with pytest.raises(ParameterError) as caught:
        make_model(name, **params)
    assert expected in str(caught.value)
    with pytest.raises(ParameterError):  # the same check without building the model
        check_model_params(name, params)


def test_errors_name_the_label_a_model_runs_under() -> None:
    with pytest.raises(ParameterError, match=r"^first-order\.order: expected int"):
        check_model_params("markov", {"order": "x"}, label="first-order")
