"""The interface of the LLM text products: steps that write text about items and users, not rows.

A strategy turns training rows into more training rows; ``llm-queries``, ``llm-profiles`` and
``llm-describe`` turn the catalog (and, for profiles, the training rows) into a table of text
that a later stage reads from a file of its own: synthetic queries for the search bench,
descriptions for items that have none, intent profiles of users. They share one shape so that a
caller runs any of them by name without knowing which it is: a :class:`TextProduct` is
configured like a strategy (backend, limit, offset as plain data), registered by name in
``shopaug.augment.TEXT_PRODUCTS``, and ``generate(source, progress)`` returns a :class:`TextRun`,
which knows its file and what its LLM calls cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from shopaug.augment.context import ProgressHook
from shopaug.augment.llm_common import LLMOptions
from shopaug.data.sequences import Sequences
from shopaug.llm import Usage


@dataclass(frozen=True)
class TextSource:
    """What a text product may read: the catalog's text fields (row i is item i) and, for the
    products about users, the training rows; ``user_index`` maps those rows to the dataset's
    user table (``TrainData.user_index``). Validation and test rows never reach a product."""

    catalog: pd.DataFrame
    train: Sequences | None = None
    user_index: np.ndarray | None = None

    def require_train(self, product: str) -> Sequences:
        if self.train is None:
            raise ValueError(f"{product} needs the training rows: TextSource(catalog, train)")
        return self.train


def as_source(source: TextSource | pd.DataFrame) -> TextSource:
    """A bare catalog is the source of the products about items."""
    return source if isinstance(source, TextSource) else TextSource(source)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> Path:
    """``frame`` as Parquet, atomically: a killed run never leaves half a file under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_parquet(tmp, index=False, compression="zstd")
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class TextRun:
    """A product's table (one row per text written; failures leave none), the file it goes to,
    and what its LLM calls cost (failures are counted there)."""

    table: pd.DataFrame
    cost: Usage
    file: str

    def report(self) -> dict[str, Any]:
        """What the CLI's table and ``summary.json`` show: rows written and the cost."""
        return {"written": len(self.table), **self.cost.as_dict()}

    def write(self, folder: str | Path) -> Path:
        """The table as ``folder/file``."""
        return write_parquet(self.table, Path(folder) / self.file)


class TextProduct(LLMOptions):
    """Base class of the LLM text products (see the module docstring).

    Subclasses set ``name`` (the ``-s`` name) and ``file`` (the table's file name) and implement
    :meth:`generate`.
    """

    name: ClassVar[str] = "text-product"
    file: ClassVar[str] = "text.parquet"

    def generate(
        self, source: TextSource | pd.DataFrame, progress: ProgressHook | None = None
    ) -> TextRun:
        """The product's table for ``source`` (a bare catalog will do for item products),
        windowed by ``offset`` and ``limit``; ``progress`` follows the LLM batches."""
        raise NotImplementedError
