"""From a data source to what a model may train on: the dataset, the protocol's split, the
training rows with their item side (texts, categories, embeddings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, FilePath

from shopaug.augment.llm_expand import expanded_texts, read_expansions
from shopaug.data.dataset import Dataset
from shopaug.data.errors import DataError
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.data.splits import Split, make_split
from shopaug.data.store import DatasetStore
from shopaug.encode.text_encoder import Backend
from shopaug.models import ItemSide, TrainData
from shopaug.progress import StageCallback

Protocol = Literal["W", "C", "S", "T"]


class DataSetup(BaseModel):
    """Which data, which protocol, which item side: everything that decides the training rows."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    protocol: Protocol = "W"
    split_seed: int = 0
    events: list[str] | None = None
    collapse_repeats: bool = False
    encoder: str | None = None
    encoder_backend: Backend = Field(
        "torch", description="Item text encoding: the reference, ONNX, or ONNX with int8 weights."
    )
    encoder_max_length: int | None = Field(None, ge=8, description="Tokens read per item text.")
    text_expansion: FilePath | None = Field(
        None,
        description="An expansions.parquet of `-s llm-expand` on this data: its kept phrases are "
        "appended to their items' texts before encoding (content model, diversity).",
    )
    embed_items: bool = True
    #: Where an Amazon folder is ingested (once) before it is read.
    work_dir: Path = Path("runs/bench")

    def load(self, on_stage: StageCallback | None = None) -> Dataset:
        return load_dataset(self.data, self.events, self.work_dir, on_stage)


def load_dataset(
    data: Path,
    events: list[str] | None = None,
    work_dir: Path = Path("runs/bench"),
    on_stage: StageCallback | None = None,
) -> Dataset:
    """A run folder is read as it is; an Amazon folder is ingested once into ``work_dir``."""
    kinds = tuple(events) if events else None
    if DatasetStore(data).exists():
        return Dataset.load(data, events=kinds)
    if not data.is_dir():
        raise DataError(f"{data}: not a run folder (no data/ingest.json) nor a data folder")
    run_dir = work_dir / f"data-{data.resolve().name}"
    try:
        spec = IngestSpec.amazon(data)
    except DataError as exc:
        raise DataError(f"{data}: not a run folder (no data/ingest.json) and {exc}") from exc
    if not _ingested_from(run_dir, spec):
        ingest(spec, run_dir, on_stage=on_stage)
    return Dataset.load(run_dir, events=kinds)


def _ingested_from(run_dir: Path, spec: IngestSpec) -> bool:
    store = DatasetStore(run_dir)
    return store.exists() and store.manifest().get("spec") == spec.model_dump(mode="json")


def item_side(
    dataset: Dataset,
    encoder: str | None,
    embed: bool = True,
    backend: Backend = "torch",
    max_length: int | None = None,
    text_expansion: Path | None = None,
) -> ItemSide:
    """Texts, leaf categories and (if ``embed``) text-encoder embeddings of every item.

    Embeddings feed content-aware models and the diversity measure; they are cached on disk, so
    only the first run on a catalog pays for encoding. ``text_expansion`` appends an
    ``llm-expand`` table's kept phrases to the texts first.
    """
    texts = dataset.item_texts()
    if text_expansion is not None:
        texts = expanded_texts(texts, read_expansions(text_expansion, dataset.n_items))
    embeddings = None
    if embed:
        from shopaug.encode.text_encoder import TextEncoder

        embeddings = TextEncoder(encoder, backend=backend, max_length=max_length).encode(texts)
    return ItemSide(
        texts=texts,
        categories=dataset.item_categories(),
        embeddings=embeddings,
        catalog=dataset.catalog(),
    )


def split_dataset(
    dataset: Dataset, protocol: Protocol, seed: int = 0, collapse_repeats: bool = False
) -> Split:
    """The protocol's split of every user sequence of 3 events or more (BENCHMARK.md)."""
    sequences = dataset.sequences(min_length=3, collapse_repeats=collapse_repeats)
    timestamps = dataset.sequence_timestamps(min_length=3, collapse_repeats=collapse_repeats)
    return make_split(protocol, sequences, dataset.n_items, seed, timestamps)


def split_training_data(dataset: Dataset, split: Split, side: ItemSide | None) -> TrainData:
    """What a model may fit on under ``split``: its training rows, with validation cases for
    early stopping; test cases stay in ``split``."""
    return TrainData(
        split.train,
        dataset.n_items,
        split.train_user_index,
        dataset.n_users,
        side,
        valid=split.valid,
    )


def prepare_training(
    setup: DataSetup, before_encoding: Callable[[], None] | None = None
) -> tuple[Split, TrainData]:
    """Load the data, split it by protocol, and build the training data with its item side."""
    dataset = setup.load()
    split = split_dataset(dataset, setup.protocol, setup.split_seed, setup.collapse_repeats)
    if before_encoding:
        before_encoding()
    side = item_side(
        dataset,
        setup.encoder,
        setup.embed_items,
        setup.encoder_backend,
        setup.encoder_max_length,
        setup.text_expansion,
    )
    return split, split_training_data(dataset, split, side)
