"""Readers that land a user's file in DuckDB as an all-text staging table.

Every reader produces the same shape: one VARCHAR column per source column plus ``_row`` (the record's
1-based number in its file) and a locator that turns ``_row`` into the place a person would look
("line 12", "item '42'"). Rows a reader cannot even parse become structural rejects here; value-level
checks happen later, once, in :mod:`shopaug.data.validation`, whatever the source format.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np

from shopaug.data.csv_reader import read_csv
from shopaug.data.errors import DataError
from shopaug.data.schema import TABLES
from shopaug.data.staging import (
    CHUNK_ROWS,
    COMPRESSED_SUFFIXES,
    DECOMPRESSION_ERRORS,
    REJECT_COLUMNS,
    RawTable,
    StagingTable,
    empty_rejects,
    open_binary,
    preview,
    rejects_frame,
    safe_names,
    text_lines,
)
from shopaug.data.store import scalar, sql_literal

__all__ = ["REJECT_COLUMNS", "FileFormat", "RawTable", "detect_format", "empty_rejects", "read_raw"]

FileFormat = Literal["csv", "parquet", "jsonl", "amazon-items", "amazon-inter"]

#: Floats up to this magnitude are exact integers, so an integral one is written without ".0".
_EXACT_INTEGER = 2**53


def detect_format(path: Path) -> FileFormat:
    name = path.name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    if name.endswith(".item.json"):
        return "amazon-items"
    if name.endswith(".inter.json"):
        return "amazon-inter"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise DataError(
        f"{path}: cannot tell the format from the file name; use .csv, .tsv, .parquet, .jsonl, "
        "or the Amazon *.item.json / *.inter.json names"
    )


def read_raw(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    kind: str,
    fmt: FileFormat | None = None,
    rename: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> RawTable:
    """Stage ``path`` as table ``raw_<kind>``; ``rename`` maps the file's column names to ours."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    fmt = fmt or detect_format(path)
    relation = f"raw_{kind}"
    readers = {
        "csv": lambda: read_csv(con, path, kind, relation, encoding),
        "parquet": lambda: _read_parquet(con, path, kind, relation),
        "jsonl": lambda: _read_jsonl(con, path, kind, relation, encoding),
        "amazon-items": lambda: _read_amazon_items(con, path, kind, relation),
        "amazon-inter": lambda: _read_amazon_inter(con, path, kind, relation),
    }
    if fmt not in readers:
        raise DataError(f"{path}: unknown format {fmt!r}; choose one of {sorted(readers)}")
    try:
        raw = readers[fmt]()
    except OSError as exc:  # unreadable (permissions, a device error): the file, not a row
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if rename:
        _rename_columns(con, raw, rename)
    return raw


def _rename_columns(con: duckdb.DuckDBPyConnection, raw: RawTable, rename: dict[str, str]) -> None:
    """Apply ``{our column: file column}``; both sides must exist, or nothing is renamed."""
    ours_allowed = TABLES[raw.kind].column_names if raw.kind in TABLES else None
    for ours, theirs in rename.items():
        mapping = f"mapping {raw.kind}.{ours}={theirs}"
        if ours_allowed is not None and ours not in ours_allowed:
            raise DataError(
                f"{raw.source}: {mapping}: {raw.kind} has no column {ours!r} (its columns are "
                f"{', '.join(ours_allowed)}; any other file column is kept under its own name); "
                f"the file's columns are {raw.columns}"
            )
        if theirs not in raw.columns:
            raise DataError(
                f"{raw.source}: {mapping}: column {theirs!r} (mapped to {ours!r}) is not in the "
                f"file; its columns are {raw.columns}"
            )
        if ours in raw.columns and ours != theirs and ours not in rename.values():
            raise DataError(
                f"{raw.source}: {mapping}: cannot map {theirs!r} to {ours!r}: the file already "
                f"has {ours!r}"
            )
    for ours, theirs in rename.items():
        if ours != theirs:
            con.execute(f'ALTER TABLE {raw.relation} RENAME COLUMN "{theirs}" TO "__map_{ours}"')
    for ours, theirs in rename.items():
        if ours != theirs:
            con.execute(f'ALTER TABLE {raw.relation} RENAME COLUMN "__map_{ours}" TO "{ours}"')
    inverse = {theirs: ours for ours, theirs in rename.items()}
    raw.columns = [inverse.get(c, c) for c in raw.columns]


# --- Parquet -----------------------------------------------------------------------------------


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str) -> RawTable:
    src = f"read_parquet({sql_literal(str(path))}, file_row_number=true)"
    try:
        types = {
            name: kind_of
            for name, kind_of in _describe_types(con, f"SELECT * FROM {src}")
            if name != "file_row_number"
        }
        names = safe_names(list(types))
        casts = ", ".join(
            _parquet_text(c, t) + f' AS "{n}"' for (c, t), n in zip(types.items(), names)
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {relation} AS SELECT {casts}, "
            f"CAST(file_row_number + 1 AS BIGINT) AS _row FROM {src}"
        )
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from exc
    n = scalar(con, f"SELECT count(*) FROM {relation}")
    return RawTable(kind, path, relation, names, int(n), lambda rows: [f"row {r}" for r in rows])


def _parquet_text(column: str, sql_type: str) -> str:
    """A Parquet value as the text a CSV would hold.

    Float columns come from pandas' integer columns with gaps: an integral float is written as an
    integer (id 1, not "1.0") and NaN is missing. Lists and structs become JSON, as in JSON lines,
    so a list of categories reaches validation as a JSON array it can turn into a path. (TRY_CAST:
    DuckDB may evaluate a CASE branch on rows it does not select, so a branch must not raise.)
    """
    column = f'"{column}"'
    if sql_type in ("DOUBLE", "FLOAT", "REAL"):
        return (
            f"CASE WHEN isnan({column}) THEN NULL "
            f"WHEN {column} = trunc({column}) AND abs({column}) < {_EXACT_INTEGER} "
            f"THEN CAST(TRY_CAST({column} AS BIGINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END"
        )
    if sql_type.endswith("]") or sql_type.startswith(("STRUCT", "MAP", "UNION")):
        return f"CAST(to_json({column}) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"


# --- JSON lines --------------------------------------------------------------------------------


def _read_jsonl(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str, encoding: str
) -> RawTable:
    """Parse line by line in Python: one bad line must become one reject, not a failed file."""
    table = StagingTable(con, relation)
    rejects: list[dict] = []
    n_records = n_kept = 0
    first: dict | None = None
    for records, rows, chunk_rejects, n_lines in _jsonl_chunks(path, encoding):
        rejects.extend(chunk_rejects)
        n_records += n_lines
        n_kept += len(rows)
        first = first or (records[0] if records else None)
        table.append(_record_columns(records), rows)
    if n_kept <= 1:
        _refuse_single_document(path, first, n_records)
    return RawTable(
        kind,
        path,
        relation,
        table.columns,
        n_records,
        lambda rows: [f"line {r}" for r in rows],
        rejects_frame(kind, path, rejects),
    )


def _jsonl_chunks(
    path: Path, encoding: str
) -> Iterator[tuple[list[dict], list[int], list[dict], int]]:
    """Yield (records as text, their line numbers, rejects, records seen) per chunk."""
    records: list[dict] = []
    rows: list[int] = []
    rejects: list[dict] = []
    seen = 0
    for line in text_lines(path, encoding):
        if not line.text.strip() and line.problem is None:
            continue
        seen += 1
        record, reason = _parse_json_line(line.text, line.problem)
        if reason is not None:
            rejects.append(
                {"location": f"line {line.number}", "value": preview(line.text), "reason": reason}
            )
        else:
            records.append(record)
            rows.append(line.number)
        if len(rows) >= CHUNK_ROWS:
            yield records, rows, rejects, seen
            records, rows, rejects, seen = [], [], [], 0
    yield records, rows, rejects, seen


def _parse_json_line(text: str, problem: str | None) -> tuple[dict, str | None]:
    if problem is not None:
        return {}, problem
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"malformed JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, found {type(record).__name__}"
    return record, None


def _record_columns(records: list[dict]) -> dict[str, list[str | None]]:
    """Records to text columns, keys in order of first appearance, safe against clashes."""
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    names = safe_names(list(keys))
    return {n: [_as_text(r.get(k)) for r in records] for k, n in zip(keys, names)}


def _refuse_single_document(path: Path, first: dict | None, n_records: int) -> None:
    """A ``.json`` holding one document (an object keyed by id, an array) is not JSON lines.

    Read as JSON lines it would be one odd record (columns '0', '1', ...) or one reject per line;
    say what the file is instead.
    """
    if first is not None and not all(isinstance(v, (dict, list)) for v in first.values()):
        return
    if first is None and n_records == 0:
        return
    document = _whole_json(path)
    if isinstance(document, dict) and document:
        values = list(document.values())
        kind = "item.json" if isinstance(values[0], dict) else "inter.json"
        raise DataError(
            f"{path}: holds one JSON object keyed by id ({len(document):,} keys), not JSON lines "
            "(one object per line). That is the Amazon layout: name the file "
            f"<Name>.{kind} (<Name>.item.json for items, <Name>.inter.json for user → item lists), "
            "or ingest its folder with --amazon"
        )
    if isinstance(document, list):
        raise DataError(
            f"{path}: holds one JSON array of {len(document):,} values, not JSON lines; write one "
            "JSON object per line (.jsonl)"
        )


def _whole_json(path: Path) -> object:
    """The file parsed as one JSON document, or None when it is not one."""
    try:
        with open_binary(path) as f:
            return json.load(f)
    except (ValueError, *DECOMPRESSION_ERRORS):
        return None


def _as_text(value: object) -> str | None:
    """A JSON value as text: nested values as JSON, integral floats as integers, NaN as missing."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer() and abs(value) < _EXACT_INTEGER:
            return str(int(value))
    return str(value)


# --- Amazon (UniSRec/RecBole-style) JSON -------------------------------------------------------


def _load_json_object(path: Path) -> dict:
    try:
        with open_binary(path) as f:
            data = json.load(f)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: bad encoding, not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    except DECOMPRESSION_ERRORS as exc:
        raise DataError(f"{path}: cannot decompress: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by id, found {type(data).__name__}")
    return data


def _read_amazon_items(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str
) -> RawTable:
    """``{"<item index>": {"title", "description", "brand", "categories"}}``."""
    data = _load_json_object(path)
    keys = list(data)
    rejects: list[dict] = []
    good_rows: list[int] = []
    records: list[dict] = []
    for row, key in enumerate(keys, start=1):
        value = data[key]
        if not isinstance(value, dict):
            rejects.append(
                {
                    "location": f"item {key!r}",
                    "value": preview(json.dumps(value)),
                    "reason": f"expected an object of item fields, found {type(value).__name__}",
                }
            )
            continue
        good_rows.append(row)
        records.append({"item_id": key, **{k: v for k, v in value.items() if k != "item_id"}})
    table = StagingTable(con, relation, ["item_id"])
    table.append(_record_columns(records), good_rows)
    return RawTable(
        kind,
        path,
        relation,
        table.columns,
        len(keys),
        lambda rows: [f"item {keys[r - 1]!r}" for r in rows],
        rejects_frame(kind, path, rejects),
    )


def _read_amazon_inter(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str
) -> RawTable:
    """``{"<user index>": [item index, ...]}``, each list in time order (order kept via ``_row``)."""
    data = _load_json_object(path)
    users: list[str] = []
    items: list[str | None] = []
    positions: list[int] = []
    rejects: list[dict] = []
    for key, seq in data.items():
        if not isinstance(seq, list):
            rejects.append(
                {
                    "location": f"user {key!r}",
                    "value": preview(json.dumps(seq)),
                    "reason": f"expected a list of item ids, found {type(seq).__name__}",
                }
            )
            continue
        users.extend([key] * len(seq))
        items.extend(_as_text(i) for i in seq)
        positions.extend(range(1, len(seq) + 1))
    table = StagingTable(con, relation, ["user_id", "item_id"])
    table.append({"user_id": users, "item_id": items}, list(range(1, len(users) + 1)))
    con.execute(f"ALTER TABLE {relation} ADD COLUMN event VARCHAR DEFAULT 'review'")

    def locate(r: np.ndarray) -> list[str]:
        return [f"user {users[i - 1]!r}, position {positions[i - 1]}" for i in r]

    return RawTable(
        kind,
        path,
        relation,
        ["user_id", "item_id", "event"],
        len(users) + len(rejects),
        locate,
        rejects_frame(kind, path, rejects),
    )


# --- helpers -----------------------------------------------------------------------------------


def _describe_types(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {query}").fetchall()]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
