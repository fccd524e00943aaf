"""Sparse (rows x items) matrices built from weighted sequences, shared by the count models and the augmentation strategies.

Item-kNN, the Markov chain and the factor models all start from "which items did this history
hold, with what weight"; building that matrix once, here, keeps their weighting rules identical.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shopaug.data.sequences import Sequences, rank_within_runs


def interaction_matrix(
    sequences: Sequences, n_items: int, decay: float = 1.0, last: int | None = None
) -> sp.csr_matrix:
    """(rows x n_items) float32 CSR of summed event weights, each scaled by ``decay ** age``.

    ``age`` is the number of events after it in its row (0 for the last one), so ``decay < 1``
    lets recent events count more. With ``last`` only each row's ``last`` most recent events
    count. Entries that sum to zero (weight-0 events) are removed, so they are not even stored.
    """
    age = np.repeat(sequences.indptr[1:], sequences.lengths) - np.arange(sequences.n_events) - 1
    values = sequences.event_weights().astype(np.float64)
    if decay != 1.0:
        values = values * np.power(decay, age, dtype=np.float64)
    if last is not None:
        values = np.where(age < last, values, 0.0)
    matrix = sp.csr_matrix(
        (values, (sequences.row_ids(), sequences.items)), shape=(len(sequences), n_items)
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def best_first(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row of every stored entry, the order that sorts entries by row then by value (largest
    first, ties: lower column first), and each sorted entry's rank within its row."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    return rows, order, rank_within_runs(rows[order])


def keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The ``k`` largest entries of every row of a CSR matrix (ties: lower column first)."""
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    rows, order, rank = best_first(matrix)
    keep = order[rank < k]
    return sp.csr_matrix(
        (matrix.data[keep], (rows[keep], matrix.indices[keep])), shape=matrix.shape
    )
