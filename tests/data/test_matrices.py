"""The shared (rows x items) matrices: weights summed, zero weights dropped, decay, top-k pruning."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shopaug.data.matrices import interaction_matrix, keep_top_per_row
from shopaug.data.sequences import Sequences


def test_interaction_matrix_sums_repeats_and_drops_zero_weights() -> None:
    seqs = Sequences.from_lists(["a", "b"], [[0, 2, 0], [1, 2]], weights=[[1, 0.5, 2], [0, 1]])
    matrix = interaction_matrix(seqs, 3)
    np.testing.assert_allclose(matrix.toarray(), [[3, 0, 0.5], [0, 0, 1]])
    assert matrix.dtype == np.float32
    assert matrix.nnz == 3  # the weight-0 event of row b is not stored


def test_interaction_matrix_decay_and_last() -> None:
    seqs = Sequences.from_lists(["a"], [[0, 1, 2]])
    np.testing.assert_allclose(interaction_matrix(seqs, 3, decay=0.5).toarray(), [[0.25, 0.5, 1]])
    np.testing.assert_allclose(interaction_matrix(seqs, 3, last=2).toarray(), [[0, 1, 1]])


def test_keep_top_per_row_keeps_the_largest_with_ties_to_lower_index() -> None:
    matrix = sp.csr_matrix(np.array([[0.1, 0.5, 0.5, 0.2], [0.0, 0.0, 0.3, 0.0]], dtype=np.float32))
    kept = keep_top_per_row(matrix, 2).toarray()
    np.testing.assert_allclose(kept, [[0, 0.5, 0.5, 0], [0, 0, 0.3, 0]])
    tie = sp.csr_matrix(np.array([[0.4, 0.4, 0.4]], dtype=np.float32))
    np.testing.assert_allclose(keep_top_per_row(tie, 2).toarray(), [[0.4, 0.4, 0]])
