"""ContentSASRec: items known by their text, so a never-seen item is rankable on day one."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from shopaug.data.sequences import Sequences
from shopaug.data.splits import leave_one_out
from shopaug.models.base import ItemSide, TrainData
from shopaug.models.content import ContentSASRec, standardise
from shopaug.models.ranking import rank_targets

N_WARM = 20
#: Cold item -> the warm item whose text it nearly repeats (a new colour of the same product).
TWINS = {N_WARM: 5, N_WARM + 1: 12}
N_ITEMS = N_WARM + len(TWINS)
TEXT_DIM = 32
FAST = {"hidden": 32, "n_layers": 1, "n_heads": 2, "max_len": 8, "dropout": 0.1}
FAST |= {"lr": 5e-3, "batch_size": 64, "num_threads": 1, "epochs": 40, "patience": 8}


def toy_embeddings(seed: int = 0) -> np.ndarray:
    """Random unit text vectors; each cold item is its warm twin plus a little noise."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(N_ITEMS, TEXT_DIM))
    for cold, warm in TWINS.items():
        emb[cold] = emb[warm] + 0.15 * rng.normal(size=TEXT_DIM)
    return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)


def toy_data() -> TrainData:
    """Warm items follow i -> i+1 (mod N_WARM); cold items never occur."""
    rng = np.random.default_rng(0)
    starts = rng.integers(0, N_WARM, 160)
    lengths = rng.integers(6, 13, 160)
    seqs = [[(s + t) % N_WARM for t in range(n)] for s, n in zip(starts, lengths)]
    split = leave_one_out(Sequences.from_lists(np.arange(160), seqs), N_ITEMS)
    return TrainData(
        split.train, N_ITEMS, items=ItemSide(embeddings=toy_embeddings()), valid=split.valid
    )


@pytest.fixture(scope="module", params=["fuse", "text"])
def fitted(request: pytest.FixtureRequest) -> ContentSASRec:
    return ContentSASRec(mode=request.param, **FAST).fit(toy_data())


def rank_of(model: ContentSASRec, history: list[int], item: int) -> int:
    hist = Sequences.from_lists([0], [history])
    return int(rank_targets(model.score(hist), np.array([item]), hist)[0])


def test_cold_item_ranks_next_to_its_warm_twin(fitted: ContentSASRec) -> None:
    for cold, warm in TWINS.items():
        history = [warm - 3, warm - 2, warm - 1]
        # The twins share the top: in "text" mode the cold one may even come first.
        assert rank_of(fitted, history, warm) <= 1
        assert rank_of(fitted, history, cold) <= 2, f"cold {cold} should follow {warm - 1}"
        # ... and not after an unrelated history.
        assert rank_of(fitted, [warm + 4, warm + 5, warm + 6], cold) > 5


def test_cold_items_have_no_id_part(fitted: ContentSASRec) -> None:
    has_id = fitted.net_.has_id.numpy()
    assert not has_id[list(TWINS)].any() and has_id[:N_WARM].all()
    if fitted.mode == "text":
        assert fitted.net_.item_embedding is None


def test_save_load_round_trip(fitted: ContentSASRec, tmp_path: Path) -> None:
    fitted.save(tmp_path / "content.pt")
    loaded = ContentSASRec.load(tmp_path / "content.pt")
    hist = Sequences.from_lists([0, 1], [[1, 2, 3], [7, 8]])
    np.testing.assert_array_equal(loaded.score(hist), fitted.score(hist))
    assert loaded.mode == fitted.mode


def test_items_added_after_fit_score_like_the_cold_items_of_the_fit(
    fitted: ContentSASRec, tmp_path: Path
) -> None:
    """An item listed after training gets what a cold item of the fit has: its projected text,
    in the fit's standardisation, and no ID part. Twins of the cold items must score the same."""
    model = copy.deepcopy(fitted)
    cold = list(TWINS)
    added = model.add_items(toy_embeddings()[cold])
    assert added.tolist() == [N_ITEMS, N_ITEMS + 1] and model.n_items_ == N_ITEMS + 2
    hist = Sequences.from_lists([0, 1], [[2, 3, 4], [10, 11]])
    scores = model.score(hist)
    np.testing.assert_allclose(scores[:, added], scores[:, cold], rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "grown.pt")
    np.testing.assert_array_equal(ContentSASRec.load(tmp_path / "grown.pt").score(hist), scores)
    model.set_item_texts(added[:1], toy_embeddings()[[3]])
    changed = model.score(hist)
    if fitted.mode == "text":  # without ID parts, the same text is the same score
        np.testing.assert_allclose(changed[:, added[0]], changed[:, 3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(changed[:, added[0]], scores[:, added[0]])
    with pytest.raises(ValueError, match="embeddings must be"):
        model.add_items(np.zeros((1, TEXT_DIM + 1)))


def test_ranking_counts_id_weight_of_the_id_part_and_training_all_of_it(
    fitted: ContentSASRec, tmp_path: Path
) -> None:
    import torch

    if fitted.mode == "text":
        pytest.skip("text mode has no ID part")
    net = copy.deepcopy(fitted.net_)
    weights = net.item_embedding.weight.detach()
    has_id = net.has_id.unsqueeze(1).float()
    net.id_dropout, net.id_weight = 0.0, 0.25
    net.eval()
    _, ranked = net.item_parts()
    torch.testing.assert_close(ranked, 0.25 * weights * has_id)
    net.train()
    _, trained = net.item_parts()
    torch.testing.assert_close(trained, weights * has_id)
    # The weight is a parameter: it is saved with the model and changes the scores.
    model = ContentSASRec(mode="fuse", id_weight=1.0, **FAST).fit(toy_data())
    model.save(tmp_path / "full.pt")
    loaded = ContentSASRec.load(tmp_path / "full.pt")
    assert loaded.id_weight == 1.0 and loaded.net_.id_weight == 1.0
    hist = Sequences.from_lists([0], [[1, 2, 3]])
    lighter = copy.deepcopy(model)
    lighter.net_.id_weight = 0.5
    assert not np.allclose(lighter.score(hist), model.score(hist))
    with pytest.raises(ValueError, match="id_weight"):
        ContentSASRec(id_weight=1.5)


def test_needs_text_embeddings() -> None:
    data = toy_data()
    with pytest.raises(ValueError, match="embeddings"):
        ContentSASRec(**FAST).fit(TrainData(data.sequences, N_ITEMS))
    bad = TrainData(data.sequences, N_ITEMS, items=ItemSide(embeddings=np.zeros((3, 4))))
    with pytest.raises(ValueError, match="n_items"):
        ContentSASRec(**FAST).fit(bad)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="mode"):
        ContentSASRec(mode="ids")  # type: ignore[arg-type]


def test_standardise_centres_and_scales() -> None:
    out = standardise(toy_embeddings() + 3.0)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    assert np.linalg.norm(out, axis=1).mean() == pytest.approx(1.0, rel=1e-5)


def test_items_seen_only_in_generated_rows_get_no_id_vector_but_are_trained_targets():
    real = toy_data()
    cold = N_WARM
    # One generated row placing the cold item after its warm twin, appended after the real rows.
    generated = Sequences.from_lists(np.array([999]), [[TWINS[cold], cold]])
    both = Sequences.from_lists(
        np.concatenate([real.sequences.users, generated.users]),
        [real.sequences.row(i).tolist() for i in range(len(real.sequences))]
        + [generated.row(0).tolist()],
    )
    data = TrainData(
        both,
        N_ITEMS,
        items=real.items,
        valid=real.valid,
        n_real_rows=len(real.sequences),
    )
    model = ContentSASRec(mode="fuse", **{**FAST, "epochs": 1}).fit(data)
    assert not bool(model.net_.has_id[cold])
    assert bool(model.net_.has_id[TWINS[cold]])
    assert model._loss_item_mask(data)[cold]
    # Without the marker every row counts as real, and the cold item gets an ID vector.
    as_real = ContentSASRec(mode="fuse", **{**FAST, "epochs": 1}).fit(
        TrainData(both, N_ITEMS, items=real.items, valid=real.valid)
    )
    assert bool(as_real.net_.has_id[cold])


def test_text_learns_from_real_rows_keeps_generated_rows_off_the_text_projection() -> None:
    model = ContentSASRec(mode="fuse", text_learns_from="real", **{**FAST, "epochs": 1})
    model.fit(toy_data())
    model.net_.train()
    model.net_.zero_grad(set_to_none=True)  # drop the last training step's gradients
    real_table, generated_table = model._item_tables()
    generated_table.sum().backward(retain_graph=True)
    projection = model.net_.text_projection.weight
    assert projection.grad is None or not projection.grad.any()
    assert model.net_.item_embedding.weight.grad.any()  # the ID part still learns from them
    model.net_.zero_grad()
    real_table.sum().backward()
    assert projection.grad.any()


@pytest.mark.parametrize("learns_from, projection_moves", [("real", False), ("all", True)])
def test_with_only_generated_rows_the_text_projection_stays_at_its_init(
    learns_from: str, projection_moves: bool
) -> None:
    import torch

    real = toy_data()
    data = TrainData(real.sequences, N_ITEMS, items=real.items, valid=real.valid, n_real_rows=0)
    model = ContentSASRec(mode="fuse", text_learns_from=learns_from, **{**FAST, "epochs": 2})
    model.fit(data)
    torch.manual_seed(model.seed)  # fit seeds torch the same way before building the network
    initial = model._make_network(model.config_)
    moved = not torch.equal(initial.text_projection.weight, model.net_.text_projection.weight)
    assert moved == projection_moves
    assert not torch.equal(initial.blocks[0].ffn[0].weight, model.net_.blocks[0].ffn[0].weight)


def test_unknown_text_source_is_rejected() -> None:
    with pytest.raises(ValueError, match="text_learns_from"):
        ContentSASRec(text_learns_from="generated")  # type: ignore[arg-type]
