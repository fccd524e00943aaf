"""CSV and TSV files: DuckDB's reader where every record is one line, Python's ``csv`` elsewhere.

DuckDB parses large files fast, but only knows a rejected record's line, not an accepted one's, and
a broken quote makes it swallow the next line whole. So it reads the file with a fixed dialect
(quote ``"``, our own header and delimiter: its sniffer turns quoting off when one quote is broken,
and then every quoted comma splits a field), and its result is used when every record is one line:
then the blank and rejected lines (found by a scan of the file) place every accepted row exactly.
Otherwise (quoted line breaks, a broken quote, mixed line endings, an encoding DuckDB lacks, bz2/xz)
Python's ``csv`` module reads the file record by record, giving every record its physical line; a
record whose quoting breaks is re-read line by line, so a broken quote costs its own line and not
the good rows after it.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from shopaug.data.errors import DataError
from shopaug.data.staging import (
    CHUNK_ROWS,
    MAX_LINE_CHARS,
    REJECT_COLUMNS,
    WHOLE_RECORD,
    RawTable,
    StagingTable,
    TextLine,
    bad_encoding_reason,
    compression_of,
    line_layout,
    preview,
    rejects_frame,
    safe_names,
    text_lines,
)
from shopaug.data.store import scalar, sql_literal

#: Python codec names DuckDB's CSV reader decodes itself (ASCII-compatible, so lines can be counted).
DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "iso8859-1": "latin-1"}
DUCKDB_COMPRESSIONS = ("", ".gz")
DELIMITERS = (",", "\t", ";", "|")
#: Python's csv refuses fields over 128 KiB by default; a multi-line field may reach a few lines.
FIELD_SIZE_LIMIT = 16 * MAX_LINE_CHARS
#: Python ``csv`` error messages in the words a shop owner would use.
_QUOTE_REASONS = {
    "unexpected end of data": "a quoted field is never closed",
    "expected after": "text follows a closing quote",
    "field larger than field limit": "a field is too long",
}


def read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str, encoding: str
) -> RawTable:
    """Stage a CSV/TSV file (optionally gzip, bz2 or xz compressed) as ``relation``."""
    header_line = _first_line(path, encoding).text
    delimiter = _delimiter(path, header_line)
    raw = None
    if _duckdb_can_read(path, encoding):
        columns = _header(header_line, delimiter)
        raw = _read_with_duckdb(con, path, kind, relation, encoding, delimiter, columns)
    return raw or _read_with_python(con, path, kind, relation, encoding, delimiter)


def _duckdb_can_read(path: Path, encoding: str) -> bool:
    return (
        codecs.lookup(encoding).name in DUCKDB_ENCODINGS
        and compression_of(path) in DUCKDB_COMPRESSIONS
    )


def _first_line(path: Path, encoding: str) -> TextLine:
    """The header line; an empty file (or one of blank lines) cannot be read at all."""
    for line in text_lines(path, encoding):
        if line.problem:
            raise DataError(f"{path}: the header (line {line.number}) is unusable: {line.problem}")
        if line.text.strip():
            return line
    raise DataError(f"{path}: the file is empty (no header line with column names)")


def _delimiter(path: Path, header_line: str) -> str:
    """Tab for ``.tsv``; otherwise the candidate the header line holds most of (comma on a tie)."""
    name = path.name.lower().removesuffix(compression_of(path))
    if name.endswith(".tsv"):
        return "\t"
    return max(DELIMITERS, key=header_line.count)


def _header(line: str, delimiter: str) -> list[str]:
    return safe_names(next(csv.reader([line], delimiter=delimiter), []))


def _parse_line(text: str, delimiter: str) -> tuple[list[str], str | None]:
    """One line parsed alone (strictly): its fields, or the parser's complaint."""
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True), []), None
    except csv.Error as exc:
        return [], str(exc)


def field_count_reason(expected: int, found: int) -> str:
    return f"wrong number of fields (expected {expected}, found {found})"


def quote_reason(error: str) -> str:
    for needle, reason in _QUOTE_REASONS.items():
        if needle in error:
            return f"bad quoting: {reason}"
    return f"bad quoting: {error}"


# --- DuckDB: the fast path ---------------------------------------------------------------------


def _read_with_duckdb(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    kind: str,
    relation: str,
    encoding: str,
    delimiter: str,
    columns: list[str],
) -> RawTable | None:
    """DuckDB's parse, or None when its records are not one per line (then Python reads it)."""
    rejects_table, rejects_scan = f"rejects_{kind}", f"rejects_scan_{kind}"
    con.execute(f"DROP TABLE IF EXISTS {rejects_table}; DROP TABLE IF EXISTS {rejects_scan}")
    schema = "{" + ", ".join(f"{sql_literal(c)}: 'VARCHAR'" for c in columns) + "}"
    options = (
        f"auto_detect=false, header=true, columns={schema}, delim={sql_literal(delimiter)}, "
        f"quote='\"', escape='\"', max_line_size={MAX_LINE_CHARS}, "
        f"encoding={sql_literal(DUCKDB_ENCODINGS[codecs.lookup(encoding).name])}, "
        f"store_rejects=true, rejects_table='{rejects_table}', rejects_scan='{rejects_scan}'"
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {relation} AS SELECT *, "
            f"CAST(row_number() OVER () AS BIGINT) AS _row "
            f"FROM read_csv({sql_literal(str(path))}, {options})"
        )
    except duckdb.Error:
        return None
    n_ok = scalar(con, f"SELECT count(*) FROM {relation}")
    bad = con.execute(
        f"SELECT line, list(CAST(error_type AS VARCHAR) ORDER BY column_idx) AS errors, "
        f"any_value(csv_line) AS csv_line "
        f"FROM {rejects_table} GROUP BY line ORDER BY line"
    ).fetchdf()
    bad_lines = bad["line"].to_numpy(dtype=np.int64)
    skipped = _lines_without_rows(con, path, relation, columns, n_ok, bad)
    if skipped is None:
        con.execute(f"DROP TABLE {relation}")
        return None
    # Accepted rows fill, in order, the lines that blank and rejected lines leave free; g_j counts
    # accepted rows before the j-th skipped line, so a row's line is its number plus the header
    # plus the skipped lines that come before it.
    gaps = skipped - np.arange(1, len(skipped) + 1) - 1

    def locate(rows: np.ndarray) -> list[str]:
        lines = rows + 1 + np.searchsorted(gaps, rows, side="left")
        return [f"line {int(x)}" for x in lines]

    rejects = pd.DataFrame(
        {
            "table": kind,
            "file": str(path),
            "location": [f"line {int(x)}" for x in bad_lines],
            "row": pd.array([None] * len(bad), dtype="Int64"),
            "column": WHOLE_RECORD,
            "value": [preview(v) for v in bad["csv_line"].fillna("")],
            "reason": [
                _duckdb_reason(list(errors), line, len(columns), delimiter, encoding)
                for errors, line in zip(bad["errors"], bad["csv_line"].fillna(""))
            ],
        },
        columns=REJECT_COLUMNS,
    )
    return RawTable(kind, path, relation, columns, int(n_ok + len(bad)), locate, rejects)


def _lines_without_rows(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    relation: str,
    columns: list[str],
    n_ok: int,
    bad: pd.DataFrame,
) -> np.ndarray | None:
    """The sorted lines holding no accepted row (blank or rejected), or None when some record
    spans several lines: then DuckDB's numbering is not the file's, and Python must read it.

    DuckDB numbers a rejected record by the lines before it counted as one each, blank ones
    included; that is the physical line exactly when no record holds a line break.
    """
    if bad["csv_line"].fillna("").str.rstrip("\r\n").str.contains("\n").any():
        return None
    breaks = " OR ".join(f'contains("{c}", chr(10))' for c in columns)
    if scalar(con, f"SELECT count(*) FROM (SELECT 1 FROM {relation} WHERE {breaks} LIMIT 1)"):
        return None
    n_lines, blank = line_layout(path)
    if 1 in blank or n_lines != 1 + n_ok + len(bad) + len(blank):
        return None
    return np.union1d(blank, bad["line"].to_numpy(dtype=np.int64))


def _duckdb_reason(
    errors: list[str], csv_line: str, n_columns: int, delimiter: str, encoding: str
) -> str:
    """One reason per rejected record, however many columns DuckDB complained about."""
    if "INVALID ENCODING" in errors:
        return bad_encoding_reason(encoding)
    if "LINE SIZE OVER MAXIMUM" in errors:
        return f"line too long (over {MAX_LINE_CHARS:,} bytes)"
    fields, error = _parse_line(csv_line, delimiter)
    if error or "UNQUOTED VALUE" in errors:
        return quote_reason(error or "a misplaced quote")
    if "TOO MANY COLUMNS" in errors or "MISSING COLUMNS" in errors:
        return field_count_reason(n_columns, len(fields))
    return f"cannot parse: {', '.join(e.lower() for e in errors)}"


# --- Python csv: every record with its physical line -------------------------------------------


@dataclass(frozen=True)
class _Record:
    """A parsed record: good (``values``) or rejected (``reason``), with its first line."""

    line: int
    values: list[str] | None = None
    reason: str | None = None
    text: str = ""


class _LineFeed:
    """Feeds lines to ``csv.reader`` and remembers which ones the current record used."""

    def __init__(self, lines: Iterable[TextLine]) -> None:
        self._lines = lines
        self.taken: list[TextLine] = []

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.taken.append(line)
            yield line.text

    def take(self) -> list[TextLine]:
        taken, self.taken = self.taken, []
        return taken


def _read_with_python(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    kind: str,
    relation: str,
    encoding: str,
    delimiter: str,
) -> RawTable:
    """Read record by record with Python's ``csv``; ``_row`` is the record's first line."""
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    feed = _LineFeed(text_lines(path, encoding))
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    header = _python_header(path, reader, feed)
    table = StagingTable(con, relation, header)
    rejects: list[dict] = []
    values: list[list[str]] = []
    rows: list[int] = []
    n_records = 0
    while True:
        try:
            fields, error = next(reader), None
        except StopIteration:
            break
        except csv.Error as exc:
            fields, error = [], str(exc)
        for record in _judge(fields, error, feed.take(), len(header), delimiter):
            n_records += 1
            if record.values is None:
                rejects.append(
                    {
                        "location": f"line {record.line}",
                        "value": preview(record.text),
                        "reason": record.reason,
                    }
                )
                continue
            values.append(record.values)
            rows.append(record.line)
        if len(rows) >= CHUNK_ROWS:
            table.append(_columns(header, values), rows)
            values, rows = [], []
    table.append(_columns(header, values), rows)
    return RawTable(
        kind,
        path,
        relation,
        header,
        n_records,
        lambda r: [f"line {x}" for x in r],
        rejects_frame(kind, path, rejects),
    )


def _python_header(path: Path, reader: Iterator[list[str]], feed: _LineFeed) -> list[str]:
    """The first non-blank record; the file is unusable when it does not parse."""
    try:
        for fields in reader:
            if fields:
                return safe_names(fields)
            feed.take()
    except csv.Error as exc:
        raise DataError(f"{path}: the header cannot be read: {quote_reason(str(exc))}") from exc
    finally:
        feed.take()
    raise DataError(f"{path}: the file is empty (no header line with column names)")


def _columns(header: list[str], values: list[list[str]]) -> dict[str, list[str | None]]:
    """Rows to columns; an empty field is NULL, as DuckDB's reader makes it."""
    by_column = zip(*values) if values else [()] * len(header)
    return {name: [v or None for v in col] for name, col in zip(header, by_column)}


def _judge(
    fields: list[str], error: str | None, lines: list[TextLine], n_columns: int, delimiter: str
) -> list[_Record]:
    """The records in ``lines``: one normally; one per line when a multi-line record's quoting
    is broken (a quote that never closes swallows the good lines after it)."""
    problem = next((line.problem for line in lines if line.problem), None)
    if error is None and (not fields or len(fields) == n_columns):
        if problem is not None:  # parsed, but a line of it is unreadable: one reject
            return [_Record(lines[0].number, reason=problem, text=lines[0].text)]
        return [_Record(lines[0].number, values=fields)] if fields else []  # [] is a blank line
    if error is not None and len(lines) > 1:
        return [record for line in lines for record in _judge_alone(line, n_columns, delimiter)]
    if problem is not None:
        reason = problem
    elif error is not None:
        reason = quote_reason(error)
    else:
        reason = field_count_reason(n_columns, len(fields))
    return [_Record(lines[0].number, reason=reason, text=lines[0].text)]


def _judge_alone(line: TextLine, n_columns: int, delimiter: str) -> list[_Record]:
    """A line of a broken record as a record of its own; with an odd number of quotes it is the
    broken part (or the end of a quoted field), never a good row."""
    fields, error = _parse_line(line.text, delimiter)
    if error is None and line.text.count('"') % 2:
        error = "an odd number of quotes"
    return _judge(fields, error, [line], n_columns, delimiter)
