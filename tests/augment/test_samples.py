"""GeneratedSequences: provenance per row, selection, concatenation, Parquet, mixing with real rows."""

from __future__ import annotations

import numpy as np
import pytest

from shopaug.augment.samples import SAMPLE_COLUMNS, GeneratedSequences, concat, mix
from shopaug.data.sequences import Sequences


def samples(
    rows: list[list[int]],
    origin: str = "crop",
    score: list[float] | None = None,
    users: list | None = None,
    source_item: list[int] | None = None,
) -> GeneratedSequences:
    users = list(range(len(rows))) if users is None else users
    return GeneratedSequences.build(
        Sequences.from_lists(users, rows),
        origin,
        f"{origin}(seed=0)",
        source_row=np.arange(len(rows)),
        source_item=None if source_item is None else np.array(source_item),
        score=None if score is None else np.array(score),
    )


def test_build_fills_provenance_and_defaults() -> None:
    gen = samples([[1, 2], [3, 4, 5]])
    assert len(gen) == 2 and gen.n_events == 5
    assert gen.origin.tolist() == ["crop", "crop"]
    assert gen.generator.tolist() == ["crop(seed=0)", "crop(seed=0)"]
    assert gen.source_row.tolist() == [0, 1]
    assert gen.source_item.tolist() == [-1, -1]
    np.testing.assert_array_equal(gen.score, [1.0, 1.0])
    assert gen.score.dtype == np.float32 and gen.source_row.dtype == np.int64


def test_provenance_of_the_wrong_length_is_refused() -> None:
    gen = samples([[1, 2], [3]])
    with pytest.raises(ValueError, match="score has 1 entries for 2 rows"):
        GeneratedSequences(
            gen.sequences, gen.origin, gen.source_row, gen.source_item, gen.score[:1], gen.generator
        )


def test_empty_has_no_rows() -> None:
    empty = GeneratedSequences.empty()
    assert len(empty) == 0 and empty.n_events == 0
    assert empty.to_frame().columns.tolist() == list(SAMPLE_COLUMNS)
    assert empty.counts_by_origin() == {}


@pytest.mark.parametrize("rows", [np.array([2, 0]), np.array([True, False, True])])
def test_select_keeps_rows_and_provenance_together(rows) -> None:
    gen = samples([[1], [2, 2], [3, 3, 3]], score=[0.1, 0.2, 0.3], source_item=[7, 8, 9])
    picked = gen.select(rows)
    expected = [2, 0] if rows.dtype != bool else [0, 2]
    assert picked.sequences.to_lists() == [[r + 1] * (r + 1) for r in expected]
    assert picked.source_row.tolist() == expected
    assert picked.source_item.tolist() == [7 + r for r in expected]
    np.testing.assert_allclose(picked.score, [0.1 * (r + 1) for r in expected], rtol=1e-6)


def test_concat_keeps_order_and_skips_empty_parts() -> None:
    a = samples([[1, 2], [3]], origin="crop")
    b = samples([[4, 5, 6]], origin="mask", score=[0.5], users=["x"])
    merged = concat([a, GeneratedSequences.empty(), b])
    assert merged.sequences.to_lists() == [[1, 2], [3], [4, 5, 6]]
    assert merged.origin.tolist() == ["crop", "crop", "mask"]
    assert merged.source_row.tolist() == [0, 1, 0]
    np.testing.assert_allclose(merged.score, [1, 1, 0.5])
    assert merged.counts_by_origin() == {"crop": 2, "mask": 1}
    assert len(concat([])) == 0


def test_concat_keeps_event_weights_when_a_part_has_them() -> None:
    a = samples([[1, 2]])
    weighted = Sequences.from_lists([5], [[3, 4]], [[0.5, 0.25]])
    b = GeneratedSequences.build(weighted, "mask", "mask()", np.array([0]))
    merged = concat([a, b])
    np.testing.assert_allclose(merged.sequences.event_weights(), [1, 1, 0.5, 0.25])


def test_to_frame_has_one_row_per_sample() -> None:
    gen = samples([[1, 2], [3]], origin="substitute", score=[0.5, 0.75], source_item=[-1, 4])
    frame = gen.to_frame()
    assert frame.columns.tolist() == list(SAMPLE_COLUMNS)
    assert frame["items"].tolist() == [[1, 2], [3]]
    assert frame["origin"].tolist() == ["substitute", "substitute"]
    assert frame["source_item"].tolist() == [-1, 4]
    assert frame["score"].tolist() == [0.5, 0.75]


def test_write_and_read_round_trip(tmp_path) -> None:
    gen = concat(
        [
            samples([[1, 2, 3], [4]], origin="crop", users=["u1", "u2"]),
            samples([[5, 6]], origin="cold-neighbours", score=[0.8], users=["u3"]),
        ]
    )
    path = gen.write(tmp_path / "out" / "samples.parquet")
    assert path.exists() and not list((tmp_path / "out").glob("*.tmp"))
    back = GeneratedSequences.read(path)
    assert back.sequences.to_lists() == [[1, 2, 3], [4], [5, 6]]
    assert back.sequences.users.tolist() == ["u1", "u2", "u3"]
    for name in ("origin", "source_row", "source_item", "score", "generator"):
        np.testing.assert_array_equal(getattr(back, name), getattr(gen, name))
    assert back.source_row.dtype == np.int64 and back.score.dtype == np.float32


def test_read_rejects_a_parquet_file_without_the_sample_columns(tmp_path) -> None:
    path = tmp_path / "other.parquet"
    samples([[1]]).to_frame().drop(columns=["score"]).to_parquet(path)
    with pytest.raises(ValueError, match=r"not a samples file.*score"):
        GeneratedSequences.read(path)


REAL = Sequences.from_lists(["a", "b"], [[0, 1, 2], [3, 4]])


def test_mix_puts_real_rows_first_with_weight_one() -> None:
    gen = GeneratedSequences.build(
        Sequences.from_lists(["b", "a"], [[3], [1, 2]]),
        "crop",
        "crop()",
        source_row=np.array([1, 0]),
        score=np.array([0.5, 1.0]),
    )
    mixed, origin_row = mix(REAL, gen, weight=0.4)
    assert mixed.to_lists() == [[0, 1, 2], [3, 4], [3], [1, 2]]
    assert mixed.users.tolist() == ["a", "b", "b", "a"]
    np.testing.assert_allclose(mixed.weights, [1, 1, 1, 1, 1, 0.2, 0.4, 0.4], rtol=1e-6)
    assert origin_row.tolist() == [0, 1, 1, 0]


def test_mix_without_scores_gives_every_generated_event_the_weight() -> None:
    gen = samples([[3], [1, 2]], score=[0.5, 0.1])
    mixed, _ = mix(REAL, gen, weight=0.3, by_score=False)
    np.testing.assert_allclose(mixed.weights[REAL.n_events :], [0.3, 0.3, 0.3], rtol=1e-6)


def test_mix_keeps_real_weights_and_scales_generated_ones() -> None:
    real = Sequences.from_lists(["a"], [[0, 1]], [[0.5, 1.0]])
    gen = GeneratedSequences.build(
        Sequences.from_lists(["a"], [[1, 0]], [[0.5, 1.0]]),
        "reorder",
        "reorder()",
        np.array([0]),
        score=np.array([0.5]),
    )
    mixed, _ = mix(real, gen, weight=0.5)
    np.testing.assert_allclose(mixed.weights, [0.5, 1.0, 0.125, 0.25])


def test_mix_with_no_generated_rows_is_the_real_data() -> None:
    mixed, origin_row = mix(REAL, GeneratedSequences.empty())
    assert mixed.to_lists() == REAL.to_lists()
    np.testing.assert_array_equal(mixed.weights, np.ones(5))
    assert origin_row.tolist() == [0, 1]


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_mix_rejects_a_weight_outside_zero_one(weight: float) -> None:
    with pytest.raises(ValueError, match=r"weight must be in \[0, 1\]"):
        mix(REAL, samples([[1]]), weight=weight)
