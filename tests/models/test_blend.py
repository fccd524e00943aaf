"""Blend: member scores made distributions, joined by the weight validation chose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopaug.data.sequences import Sequences
from shopaug.data.splits import leave_one_out
from shopaug.models import Blend, ParameterError, make_model
from shopaug.models.base import ItemSide, TrainData
from shopaug.models.blend import LOG_FLOOR, join, member_log_probs
from shopaug.models.ranking import rank_metrics, rank_targets

N_ITEMS = 15


def chain_data(seed: int = 0) -> TrainData:
    """Users walk i -> i+1 (mod 10) most of the time and jump to a bestseller otherwise, so
    the chain and popularity each know part of the next step."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(120):
        item, row = int(rng.integers(0, 10)), []
        for _ in range(int(rng.integers(4, 9))):
            row.append(item)
            item = (item + 1) % 10 if rng.random() < 0.6 else int(rng.choice([10, 11, 12]))
        rows.append(row)
    split = leave_one_out(Sequences.from_lists(np.arange(len(rows)), rows), N_ITEMS)
    return TrainData(split.train, N_ITEMS, valid=split.valid)


def valid_ndcg(model, data: TrainData) -> float:
    ranks = rank_targets(model.score(data.valid.inputs), data.valid.targets, data.valid.inputs)
    return float(rank_metrics(ranks, (10,))["ndcg@10"].mean())


@pytest.fixture(scope="module")
def fitted() -> tuple[Blend, TrainData]:
    data = chain_data()
    model = make_model("blend", models=["markov", "pop"], params={"markov": {"smoothing": 0}})
    return model.fit(data), data


def test_weights_are_the_best_of_the_validation_grid(fitted) -> None:
    model, data = fitted
    step = model.choices_["steps"][0]
    best = max(max(scores) for scores in step["grid"].values())
    assert model.best_score_ == pytest.approx(best)
    chosen = step["grid"][step["combine"]][model.choices_["grid_weights"].index(step["weight"])]
    assert chosen == pytest.approx(best)
    # What validation saw is what the fitted blend scores.
    assert valid_ndcg(model, data) == pytest.approx(model.best_score_)


def test_never_below_its_first_member_on_validation(fitted) -> None:
    model, _ = fitted
    own = model.choices_["member_valid_ndcg@10"]
    assert set(own) == {"markov", "pop"}
    assert model.best_score_ >= own["markov"]
    assert 0 < model.weights_[0] < 1, "a complementary member joins with a weight inside (0, 1)"


def test_score_is_the_chosen_join_of_member_distributions() -> None:
    data = chain_data()
    model = make_model("blend", models=["markov", "pop"], weights=[0.3], combine="mixture").fit(
        data
    )
    histories = data.valid.inputs
    markov, pop = model.members_
    p_markov = markov.score(histories) / markov.score(histories).sum(axis=1, keepdims=True)
    p_pop = np.exp(pop.score(histories) - pop.score(histories).max(axis=1, keepdims=True))
    p_pop /= p_pop.sum(axis=1, keepdims=True)
    mixed = 0.7 * p_markov + 0.3 * p_pop
    seen = model.seen_
    assert not seen[13:].any(), "items 13 and 14 never occur in the training rows"
    expected = np.log(mixed[:, seen] / mixed[:, seen].sum(axis=1, keepdims=True))
    scores = model.score(histories)
    np.testing.assert_allclose(scores[:, seen], expected, rtol=1e-5, atol=1e-5)
    # Neither member has seen items 13 and 14: nobody vouches for them.
    assert (scores[:, ~seen] == LOG_FLOOR).all()
    assert model.choices_["chosen_on"] == "given"


def test_an_item_only_the_text_member_knows_keeps_its_text_score() -> None:
    """A chain has no evidence on an item absent from training: it abstains there, so a cold
    item is ranked by the content member instead of sinking with the chain's zero."""
    train = chain_data()
    rng = np.random.default_rng(0)
    items = ItemSide(embeddings=rng.normal(size=(N_ITEMS, 8)).astype(np.float32))
    data = TrainData(train.sequences, N_ITEMS, items=items, valid=train.valid)
    content = {"hidden": 8, "n_heads": 1, "epochs": 2, "num_threads": 1}
    histories = data.valid.inputs
    for how in ("product", "mixture"):
        model = make_model(
            "blend",
            models=["markov", "content"],
            params={"content": content},
            weights=[0.5],
            combine=how,
        ).fit(data)
        cold = ~model.seen_
        text = member_log_probs(model.members_[1], histories, None)
        scores = model.score(histories).astype(np.float64)
        assert (scores[:, cold] > LOG_FLOOR).all()
        # The cold items' scores are the content member's, shifted by the row's normaliser only.
        shift = scores[:, cold] - text[:, cold]
        np.testing.assert_allclose(shift, shift[:, :1].repeat(cold.sum(), axis=1), atol=1e-4)
        np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0, rtol=1e-4)


def test_join_ends_and_normalisation() -> None:
    rng = np.random.default_rng(0)
    a, b = (np.log(rng.dirichlet(np.ones(6), size=3)) for _ in range(2))
    for how in ("mixture", "product"):
        np.testing.assert_allclose(join(a, b, 0.0, how), a, atol=1e-12)
        np.testing.assert_allclose(join(a, b, 1.0, how), b, atol=1e-12)
        # Where one side abstains the other speaks, at the ends of the grid too.
        unknown = a.copy()
        unknown[:, 0] = np.nan
        kept = join(unknown, b, 0.0, how)
        assert np.isfinite(kept).all()
        np.testing.assert_allclose(np.exp(kept).sum(axis=1), 1.0)
        np.testing.assert_allclose((kept - a)[:, 1:], (kept - a)[:, 1:2].repeat(5, 1))
        np.testing.assert_allclose(np.exp(join(a, b, 0.4, how)).sum(axis=1), 1.0)
    np.testing.assert_allclose(
        join(a, b, 0.4, "mixture"), np.log(0.6 * np.exp(a) + 0.4 * np.exp(b))
    )


def test_member_distributions_from_probabilities_and_from_logits() -> None:
    data = chain_data()
    markov = make_model("markov").fit(data)
    sasrec_like = make_model("pop").fit(data)  # scores are counts, read as logits
    for model in (markov, sasrec_like):
        log_p = member_log_probs(model, data.valid.inputs, None)
        np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0)
    # A chain's order survives (log of the normalised row).
    scores = markov.score(data.valid.inputs)
    log_p = member_log_probs(markov, data.valid.inputs, None)
    assert (
        np.argsort(-scores, axis=1, kind="stable")[:, :3]
        == np.argsort(-log_p, axis=1, kind="stable")[:, :3]
    ).all()


def test_choosing_weights_needs_validation_cases() -> None:
    data = chain_data()
    no_valid = TrainData(data.sequences, N_ITEMS)
    with pytest.raises(ValueError, match="validation cases"):
        make_model("blend", models=["markov", "pop"]).fit(no_valid)


def test_members_get_the_blend_seed_unless_their_params_fix_one() -> None:
    model = make_model(
        "blend", models=["markov", "sasrec"], params={"sasrec": {"hidden": 8}}, seed=3
    )
    assert model._member("sasrec").seed == 3
    fixed = make_model("blend", models=["markov", "sasrec"], params={"sasrec": {"seed": 7}}, seed=3)
    assert fixed._member("sasrec").seed == 7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"models": ["markov"]}, "models"),
        ({"models": ["markov", "nope"]}, "'nope' is not a model to blend"),
        ({"models": ["markov", "blend"]}, "'blend' is not a model to blend"),
        ({"models": ["markov", "markov"]}, "each member once"),
        ({"params": {"sasrec": {}}}, "not among the members"),
        ({"params": {"content": {"hidden": -1}}}, "blend.params.content.hidden"),
        ({"weights": [0.5, 0.5], "combine": "mixture"}, "one per member after the first"),
        ({"weights": [1.5], "combine": "mixture"}, r"\[0, 1\]"),
        ({"weights": [0.5]}, "fixed combine"),
    ],
)
def test_bad_parameters_fail_before_any_fit(params: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        make_model("blend", **params)


def test_save_and_load_keep_members_and_weights(fitted, tmp_path: Path) -> None:
    model, data = fitted
    model.save(tmp_path / "blend.bin")
    loaded = Blend.load(tmp_path / "blend.bin")
    assert loaded.weights_ == model.weights_ and loaded.combines_ == model.combines_
    assert loaded.history_ == model.history_ and loaded.best_epoch_ == model.best_epoch_
    np.testing.assert_array_equal(loaded.score(data.valid.inputs), model.score(data.valid.inputs))


def test_refit_fixes_what_validation_chose_over_seeds() -> None:
    """A serving refit has no validation: median weight, commoner combine, members' epochs."""
    seeds = [
        {
            "chosen_on": "validation",
            "weights": [w],
            "combines": [c],
            "member_best_epoch": {"sasrec": e},
        }
        for w, c, e in [(0.3, "mixture", 12), (0.5, "product", 20), (0.4, "mixture", 15)]
    ]
    params = {"models": ["markov", "sasrec"], "params": {"sasrec": {"hidden": 8}}}
    refit = Blend.refit_params(params, None, seeds)
    # The commoner combine, and the median weight of the seeds that chose it.
    assert refit["weights"] == [pytest.approx(0.35)] and refit["combine"] == ["mixture"]
    assert refit["params"] == {"sasrec": {"hidden": 8, "epochs": 15}}
    make_model("blend", **refit)  # a valid parameter set
    assert Blend.refit_params(params, None, []) == params


def test_a_refit_blend_fits_without_validation() -> None:
    data = chain_data()
    chosen = make_model("blend", models=["markov", "pop"]).fit(data)
    refit = Blend.refit_params(chosen.get_params(), None, [chosen.validation_choices()])
    model = make_model("blend", **refit).fit(TrainData(data.sequences, N_ITEMS))
    assert model.weights_ == chosen.weights_ and model.combines_ == chosen.combines_


def test_an_early_stopped_member_reports_its_epochs_through_the_blend() -> None:
    data = chain_data()
    seen: list[tuple[int, float, int]] = []
    model = make_model(
        "blend",
        models=["markov", "sasrec"],
        params={"sasrec": {"hidden": 8, "n_heads": 1, "epochs": 3, "num_threads": 1}},
    )
    model.fit(
        data, on_validation=lambda epoch, score: seen.append((epoch, score, len(model.history_)))
    )
    sasrec = model.members_[1]
    assert [epoch for epoch, _, _ in seen] == [
        r["epoch"] for r in sasrec.history_ if "valid_ndcg10" in r
    ]
    # The hook can read the curve so far off the blend (the progress line shows the last loss).
    assert all(length >= 1 for _, _, length in seen)
    assert model.history_ == sasrec.history_ and model.best_epoch_ == sasrec.best_epoch_
    assert model.choices_["member_best_epoch"] == {"sasrec": sasrec.best_epoch_}


def test_without_an_early_stopped_member_the_curve_is_empty(fitted) -> None:
    model, _ = fitted
    assert model.history_ == [] and model.best_epoch_ == 0
