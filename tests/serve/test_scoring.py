"""Per-request scoring gives the model's own scores, and follows catalog changes."""

from __future__ import annotations

import numpy as np

from shopaug.data.sequences import Sequences
from shopaug.models import ContentSASRec, ItemSide, MarkovChain, TrainData
from shopaug.serve.scoring import HistoryScorer


def train_data(n_items: int = 12) -> TrainData:
    rng = np.random.default_rng(0)
    seqs = [[(s + t) % n_items for t in range(6)] for s in rng.integers(0, n_items, 40)]
    embeddings = rng.normal(size=(n_items, 8)).astype(np.float32)
    return TrainData(
        Sequences.from_lists(np.arange(40), seqs), n_items, items=ItemSide(embeddings=embeddings)
    )


def test_matches_the_models_score_for_sequence_and_other_models() -> None:
    data = train_data()
    params = {"hidden": 8, "n_layers": 1, "max_len": 4, "epochs": 2, "num_threads": 1}
    for model in (ContentSASRec(**params).fit(data), MarkovChain().fit(data)):
        scorer = HistoryScorer(model)
        for history in ([1, 2, 3], [5], [0, 1, 2, 3, 4, 5, 6]):
            expected = model.score(Sequences.from_lists([0], [history]))[0]
            np.testing.assert_allclose(scorer.score(history), expected, rtol=1e-5, atol=1e-6)


def test_item_changes_are_seen_after_invalidate() -> None:
    params = {"hidden": 8, "n_layers": 1, "max_len": 4, "epochs": 1, "num_threads": 1}
    model = ContentSASRec(**params).fit(train_data())
    scorer = HistoryScorer(model)
    before = scorer.score([1, 2])
    model.add_items(np.ones((1, 8), dtype=np.float32))
    assert len(scorer.score([1, 2])) == 12  # cached vectors until told
    scorer.invalidate()
    after = scorer.score([1, 2])
    assert len(after) == 13
    np.testing.assert_allclose(after[:12], before, rtol=1e-5, atol=1e-6)
