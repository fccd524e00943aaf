"""Generated training rows and where each came from.

A strategy's output is a set of new item sequences, each with provenance (DESIGN.md, "Sample"):
``origin`` (the strategy), ``source_row`` (the real training row it was made from), ``source_item``
(the item it was made around: the substituted item, the warm neighbour of a cold item) and
``score`` (the strategy's confidence in [0, 1], e.g. the text similarity behind a substitution).
Rows are held as flat arrays like :class:`~shopaug.data.sequences.Sequences`, so a million
samples never become a million Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shopaug.data.sequences import Sequences

#: Columns of the samples table written to a run folder.
SAMPLE_COLUMNS = ("user", "items", "origin", "source_row", "source_item", "score", "generator")


@dataclass(frozen=True)
class GeneratedSequences:
    """New training rows (``sequences``) with one provenance entry per row."""

    sequences: Sequences
    origin: np.ndarray
    source_row: np.ndarray
    source_item: np.ndarray
    score: np.ndarray
    generator: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.sequences)
        for name in ("origin", "source_row", "source_item", "score", "generator"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} rows")

    @classmethod
    def build(
        cls,
        sequences: Sequences,
        origin: str,
        generator: str,
        source_row: np.ndarray,
        source_item: np.ndarray | None = None,
        score: np.ndarray | None = None,
    ) -> GeneratedSequences:
        """One strategy's rows: ``origin`` and ``generator`` are the same for all of them."""
        n = len(sequences)
        return cls(
            sequences=sequences,
            origin=np.full(n, origin, dtype=object),
            source_row=np.asarray(source_row, dtype=np.int64),
            source_item=(
                np.full(n, -1, dtype=np.int64)
                if source_item is None
                else np.asarray(source_item, dtype=np.int64)
            ),
            score=np.ones(n, dtype=np.float32) if score is None else np.asarray(score, np.float32),
            generator=np.full(n, generator, dtype=object),
        )

    @classmethod
    def empty(cls) -> GeneratedSequences:
        no_rows = Sequences(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64))
        return cls.build(no_rows, "", "", np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def n_events(self) -> int:
        return self.sequences.n_events

    def select(self, rows: np.ndarray) -> GeneratedSequences:
        """Keep the given rows (a boolean mask or indices), in that order."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        return GeneratedSequences(
            self.sequences.select_rows(rows),
            self.origin[rows],
            self.source_row[rows],
            self.source_item[rows],
            self.score[rows],
            self.generator[rows],
        )

    def counts_by_origin(self) -> dict[str, int]:
        names, counts = np.unique(self.origin.astype(str), return_counts=True)
        return dict(zip(names.tolist(), counts.tolist(), strict=True))

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: the items as a list, and the provenance columns."""
        seq = self.sequences
        items = np.split(seq.items, seq.indptr[1:-1]) if len(seq) else []
        return pd.DataFrame(
            {
                "user": seq.users,
                "items": [row.tolist() for row in items],
                "origin": self.origin.astype(str),
                "source_row": self.source_row,
                "source_item": self.source_item,
                "score": self.score,
                "generator": self.generator.astype(str),
            },
            columns=list(SAMPLE_COLUMNS),
        )

    def write(self, path: str | Path) -> Path:
        """Write as Parquet (atomically: a half-written file is never left under ``path``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        seq = self.sequences
        table = pa.table(
            {
                "user": pa.array(seq.users),
                "items": pa.ListArray.from_arrays(
                    pa.array(seq.indptr, pa.int64()).cast(pa.int32()), pa.array(seq.items)
                ),
                "origin": pa.array(self.origin.astype(str)),
                "source_row": pa.array(self.source_row),
                "source_item": pa.array(self.source_item),
                "score": pa.array(self.score),
                "generator": pa.array(self.generator.astype(str)),
            }
        )
        tmp = path.with_suffix(path.suffix + ".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> GeneratedSequences:
        table = pq.read_table(path)
        missing = [c for c in SAMPLE_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"{path}: not a samples file, missing columns {missing}")
        items = table.column("items").combine_chunks()
        offsets = items.offsets.to_numpy().astype(np.int64)
        flat = items.values.to_numpy().astype(np.int64)
        seq = Sequences(table.column("user").to_numpy(), offsets - offsets[0], flat)
        return cls(
            seq,
            table.column("origin").to_numpy(zero_copy_only=False).astype(object),
            table.column("source_row").to_numpy().astype(np.int64),
            table.column("source_item").to_numpy().astype(np.int64),
            table.column("score").to_numpy().astype(np.float32),
            table.column("generator").to_numpy(zero_copy_only=False).astype(object),
        )


def concat(parts: Sequence[GeneratedSequences]) -> GeneratedSequences:
    """All rows of ``parts``, in order."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return GeneratedSequences.empty()
    seqs = [p.sequences for p in parts]
    lengths = np.concatenate([s.lengths for s in seqs])
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    weights = None
    if any(s.weights is not None for s in seqs):
        weights = np.concatenate([s.event_weights() for s in seqs])
    merged = Sequences(
        np.concatenate([s.users for s in seqs]),
        indptr,
        np.concatenate([s.items for s in seqs]),
        weights,
    )
    return GeneratedSequences(
        merged,
        np.concatenate([p.origin for p in parts]),
        np.concatenate([p.source_row for p in parts]),
        np.concatenate([p.source_item for p in parts]),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.generator for p in parts]),
    )


def mix(
    real: Sequences,
    generated: GeneratedSequences,
    weight: float = 0.5,
    by_score: bool = True,
) -> tuple[Sequences, np.ndarray]:
    """Real rows followed by generated rows, as one weighted training set.

    A generated event counts ``weight`` (times the sample's ``score`` if ``by_score``) where a real
    one counts 1 (or its own weight), so models that honour event weights learn less from
    guesses than from what shoppers did. Also returns, for every row, the real row it comes from
    (itself for real rows), which models with per-user factors use as the row's user.
    """
    if not 0 <= weight <= 1:
        raise ValueError(f"generated-sample weight must be in [0, 1], got {weight}")
    gen = generated.sequences
    row_weight = generated.score * weight if by_score else np.full(len(gen), weight, np.float32)
    gen_weights = gen.event_weights() * np.repeat(row_weight, gen.lengths)
    lengths = np.concatenate([real.lengths, gen.lengths])
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    mixed = Sequences(
        np.concatenate([real.users, gen.users]),
        indptr,
        np.concatenate([real.items, gen.items]),
        np.concatenate([real.event_weights(), gen_weights]).astype(np.float32),
    )
    origin_row = np.concatenate([np.arange(len(real)), generated.source_row])
    return mixed, origin_row
