"""What every reader shares: the staged-table shape, reject rows, and reading a file's lines.

A reader lands a file in DuckDB as an all-text table with ``_row`` (the record's number in its
file) and a locator that turns ``_row`` into the place a person would look ("line 12"). Rows a
reader cannot parse become structural rejects. Text files are read through :func:`text_lines`, so
compressed files, other encodings, undecodable bytes and overlong lines are handled once, the same
way for CSV and JSON lines, and every line keeps its physical number.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from shopaug.data.errors import DataError

Locator = Callable[[np.ndarray], list[str]]

REJECT_COLUMNS = ["table", "file", "location", "row", "column", "value", "reason"]
#: The ``column`` of a reject that concerns the whole record (unparsable, wrong field count).
WHOLE_RECORD = "(record)"
#: Longest line read; DuckDB's CSV default, so both CSV paths and JSON lines agree.
MAX_LINE_CHARS = 2_000_000
#: Rows buffered in Python before they are appended to the DuckDB staging table.
CHUNK_ROWS = 100_000
#: Column names the later stages add themselves; a source column with one of them is renamed.
RESERVED_NAMES = frozenset(
    {"_row", "_problems", "_first_row", "item_index", "user_index", "source_row"}
)
RESERVED_PREFIXES = ("__raw_", "__ref_", "__secs_")

_DECOMPRESSORS: dict[str, Callable[[Path], IO[bytes]]] = {
    ".gz": gzip.GzipFile,
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
}
COMPRESSED_SUFFIXES = (*_DECOMPRESSORS, ".zst")
#: What a damaged compressed stream raises part-way through.
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)

#: Undecodable bytes become lone surrogates U+DC00+byte (whatever the byte, unlike Python's
#: ``surrogateescape``), so a bad byte marks its line instead of stopping the whole file.
_MARK_BAD_BYTES = "shopaug-mark-bad-bytes"
codecs.register_error(
    _MARK_BAD_BYTES,
    lambda e: ("".join(chr(0xDC00 + b) for b in e.object[e.start : e.end]), e.end),
)
_BAD_BYTE = re.compile("[\udc00-\udcff]")


@dataclass
class RawTable:
    """A staged file: ``relation`` names the DuckDB table holding its text columns and ``_row``."""

    kind: str
    source: Path
    relation: str
    columns: list[str]
    n_records: int
    locate: Locator
    structural_rejects: pd.DataFrame = field(default_factory=lambda: empty_rejects())


def empty_rejects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS})


def rejects_frame(kind: str, path: Path, rejects: list[dict]) -> pd.DataFrame:
    """Rejects found while parsing (dicts of location, value, reason and maybe column): no row."""
    frame = pd.DataFrame(rejects, columns=["location", "column", "value", "reason"])
    frame["column"] = frame["column"].astype(object).fillna(WHOLE_RECORD)
    frame["table"] = kind
    frame["file"] = str(path)
    frame["row"] = pd.array([None] * len(frame), dtype="Int64")
    return frame[REJECT_COLUMNS]


def preview(text: str, limit: int = 200) -> str:
    """The start of a bad record for rejects.csv: enough to find it, never megabytes.

    Undecodable bytes (marked while reading) are shown as U+FFFD, the replacement character.
    """
    text = _BAD_BYTE.sub("\ufffd", text.rstrip("\r\n"))
    return text if len(text) <= limit else text[:limit] + "…"


def safe_names(names: list[str]) -> list[str]:
    """Unique, non-empty column names that cannot clash with the columns later stages add.

    A blank header cell becomes ``column<N>``; a repeated or reserved name gets ``_2``, ``_3``...
    so no source column is lost or overwrites another.
    """
    out: list[str] = []
    for i, name in enumerate(names, start=1):
        base = name.strip() or f"column{i}"
        candidate, n = base, 1
        while candidate in out or _reserved(candidate):
            n += 1
            candidate = f"{base}_{n}"
        out.append(candidate)
    return out


def _reserved(name: str) -> bool:
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


# --- opening and reading lines -----------------------------------------------------------------


def compression_of(path: Path) -> str:
    """The compression suffix of ``path`` (``.gz``, ``.bz2``, ``.xz``, ``.zst``) or ``""``."""
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSED_SUFFIXES else ""


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed by suffix (a ``.jsonl.gz`` is JSON lines once unpacked)."""
    suffix = compression_of(path)
    if suffix == ".zst":
        raise DataError(
            f"{path}: zstd-compressed files cannot be read here; decompress it (zstd -d) or "
            "compress it with gzip, bz2 or xz instead"
        )
    opener = _DECOMPRESSORS.get(suffix)
    return opener(path) if opener else path.open("rb")


def python_encoding(encoding: str) -> str:
    """UTF-8 is read as ``utf-8-sig`` so a byte-order mark never sticks to the first column."""
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


@dataclass(frozen=True)
class TextLine:
    """One physical line: its 1-based number, its text (ending kept) and what is wrong with it."""

    number: int
    text: str
    problem: str | None = None


def bad_encoding_reason(encoding: str, detail: str = "") -> str:
    return (
        f"bad encoding: not valid {encoding}{detail} (pass --encoding if the file uses another one)"
    )


def text_lines(path: Path, encoding: str) -> Iterator[TextLine]:
    """Every physical line of ``path``, decoded; a bad line carries its problem instead of raising.

    A line with undecodable bytes keeps its text with the bad bytes marked; a line longer than
    :data:`MAX_LINE_CHARS` comes back empty (it is never held in memory whole); a compressed file
    that ends early or is damaged ends with one line that says so.
    """
    number = 0
    try:
        binary = open_binary(path)
        text = io.TextIOWrapper(
            binary, encoding=python_encoding(encoding), errors=_MARK_BAD_BYTES, newline=""
        )
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with text:
        while True:
            try:
                line = text.readline(MAX_LINE_CHARS + 1)
                overlong = len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r"))
                full_length = len(line) + _skip_rest_of_line(text) if overlong else 0
            except DECOMPRESSION_ERRORS as exc:
                if number == 0:
                    raise DataError(f"{path}: cannot decompress: {exc}") from exc
                yield TextLine(
                    number + 1,
                    "",
                    f"the compressed file is damaged or truncated after line {number} ({exc}); "
                    "nothing after that line could be read",
                )
                return
            if not line:
                return
            number += 1
            yield _checked_line(number, line, full_length, encoding)


def _checked_line(number: int, line: str, overlong_by: int, encoding: str) -> TextLine:
    """``overlong_by``: the full length of a line cut at the limit (0 for one read whole)."""
    if overlong_by:
        return TextLine(
            number,
            "\n",
            f"line too long ({overlong_by:,} characters; the limit is {MAX_LINE_CHARS:,})",
        )
    bad = _BAD_BYTE.search(line)
    if bad is None:
        return TextLine(number, line)
    detail = f" (byte {ord(bad.group()) - 0xDC00:#04x} at column {bad.start() + 1})"
    return TextLine(number, line, bad_encoding_reason(encoding, detail))


def _skip_rest_of_line(text: io.TextIOWrapper) -> int:
    """Read past the rest of an overlong line in bounded pieces; returns how many characters."""
    skipped = 0
    while piece := text.readline(MAX_LINE_CHARS):
        skipped += len(piece)
        if piece.endswith(("\n", "\r")):
            break
    return skipped


def line_layout(path: Path, chunk_bytes: int = 1 << 22) -> tuple[int, np.ndarray]:
    """Physical lines up to the last non-blank one, and the numbers of the blank lines before it.

    A blank line is empty or a lone ``\\r``; trailing blank lines shift nothing and are left out.
    Scanned with numpy over the newline positions of each chunk, so a large file costs one read.
    """
    blanks: list[np.ndarray] = []
    newlines = 0  # newlines before the current chunk
    last_content = 0  # number of the last line holding anything
    pending, pending_first = 0, -1  # length and first byte of the line begun in earlier chunks
    with open_binary(path) as f:
        while chunk := f.read(chunk_bytes):
            data = np.frombuffer(chunk, dtype=np.uint8)
            ends = np.flatnonzero(data == 10)
            if len(ends):
                starts = np.concatenate(([0], ends[:-1] + 1))
                lengths = ends - starts
                first = data[starts].astype(np.int64)  # meaningful where the length is 1
                lengths[0] += pending
                first[0] = pending_first if pending else first[0]
                blank = (lengths == 0) | ((lengths == 1) & (first == 13))
                numbers = newlines + 1 + np.arange(len(ends))
                blanks.append(numbers[blank])
                if not blank.all():
                    last_content = int(numbers[~blank][-1])
                pending, pending_first = 0, -1
                newlines += len(ends)
            tail = data[ends[-1] + 1 :] if len(ends) else data
            if len(tail):
                pending_first = pending_first if pending else int(tail[0])
                pending += len(tail)
    if pending and not (pending == 1 and pending_first == 13):  # a last line without a newline
        last_content = newlines + 1
    found = np.concatenate(blanks) if blanks else np.zeros(0, dtype=np.int64)
    return last_content, found[found < last_content].astype(np.int64)


# --- staging into DuckDB -----------------------------------------------------------------------


class StagingTable:
    """An all-text DuckDB table filled in chunks, adding a column the first time one appears."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, relation: str, columns: list[str] | None = None
    ) -> None:
        self.con = con
        self.relation = relation
        self.columns: list[str] = list(columns or [])
        defs = "".join(f', "{c}" VARCHAR' for c in self.columns)
        con.execute(f"CREATE OR REPLACE TABLE {relation} (_row BIGINT{defs})")

    def append(self, columns: dict[str, list[str | None]], rows: list[int]) -> None:
        """Append one chunk: ``columns`` maps a name to its values, aligned with ``rows``."""
        if not rows:
            return
        for name in columns:
            if name not in self.columns:
                self.columns.append(name)
                self.con.execute(f'ALTER TABLE {self.relation} ADD COLUMN "{name}" VARCHAR')
        chunk = pa.table(
            {
                **{k: pa.array(v, type=pa.string()) for k, v in columns.items()},
                "_row": pa.array(rows, type=pa.int64()),
            }
        )
        self.con.register("_staging_chunk", chunk)
        self.con.execute(f"INSERT INTO {self.relation} BY NAME SELECT * FROM _staging_chunk")
        self.con.unregister("_staging_chunk")
