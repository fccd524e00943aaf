"""Readers that land a user's file in DuckDB as an all-text staging table.

Every reader produces the same shape: one VARCHAR column per source column plus ``_row`` (the record's
1-based number in its file) and a locator that turns ``_row`` into the place a person would look
("line 12", "item '42'"). Rows a reader cannot even parse become structural rejects here; value-level
checks happen later, once, in :mod:`shopaug.data.validation`, whatever the source format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from shopaug.data.errors import DataError
from shopaug.data.store import scalar, sql_literal

FileFormat = Literal["csv", "parquet", "jsonl", "amazon-items", "amazon-inter"]
Locator = Callable[[np.ndarray], list[str]]

REJECT_COLUMNS = ["table", "file", "location", "row", "column", "value", "reason"]
JSONL_CHUNK = 100_000


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


def detect_format(path: Path) -> FileFormat:
    name = path.name.lower()
    for suffix in (".gz", ".zst", ".bz2"):
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
        "csv": lambda: _read_csv(con, path, kind, relation, encoding),
        "parquet": lambda: _read_parquet(con, path, kind, relation),
        "jsonl": lambda: _read_jsonl(con, path, kind, relation, encoding),
        "amazon-items": lambda: _read_amazon_items(con, path, kind, relation),
        "amazon-inter": lambda: _read_amazon_inter(con, path, kind, relation),
    }
    if fmt not in readers:
        raise DataError(f"{path}: unknown format {fmt!r}; choose one of {sorted(readers)}")
    raw = readers[fmt]()
    if rename:
        _rename_columns(con, raw, rename)
    return raw


def _rename_columns(con: duckdb.DuckDBPyConnection, raw: RawTable, rename: dict[str, str]) -> None:
    for ours, theirs in rename.items():
        if theirs not in raw.columns:
            raise DataError(
                f"{raw.source}: column {theirs!r} (mapped to {ours!r}) is not in the file; "
                f"its columns are {raw.columns}"
            )
        if ours in raw.columns and ours != theirs:
            raise DataError(
                f"{raw.source}: cannot map {theirs!r} to {ours!r}: the file already has {ours!r}"
            )
    for ours, theirs in rename.items():
        if ours != theirs:
            con.execute(f'ALTER TABLE {raw.relation} RENAME COLUMN "{theirs}" TO "{ours}"')
    inverse = {theirs: ours for ours, theirs in rename.items()}
    raw.columns = [inverse.get(c, c) for c in raw.columns]


# --- CSV ---------------------------------------------------------------------------------------


def _read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str, encoding: str
) -> RawTable:
    options = (
        f"all_varchar=true, header=true, store_rejects=true, "
        f"rejects_table='rejects_{kind}', rejects_scan='rejects_scan_{kind}', "
        f"encoding={sql_literal(encoding)}"
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {relation} AS SELECT *, "
            f"CAST(row_number() OVER () AS BIGINT) AS _row "
            f"FROM read_csv({sql_literal(str(path))}, {options})"
        )
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot read as CSV: {_first_line(exc)}") from exc
    columns = [c for c in _columns(con, relation) if c != "_row"]
    n_ok = scalar(con, f"SELECT count(*) FROM {relation}")
    bad = con.execute(
        f"SELECT line, column_name, csv_line, error_type, error_message "
        f"FROM rejects_{kind} ORDER BY line"
    ).fetchdf()
    # A record that fails on several columns is reported once per column; count records once.
    bad_lines = np.unique(bad["line"].to_numpy(dtype=np.int64))
    single_line = _count_lines(path) == 1 + n_ok + len(bad_lines)
    if single_line:
        # Accepted rows fill the lines the rejected ones leave free; g_j counts accepted rows
        # before the j-th rejected line, so a row's line is its number plus the header plus the
        # rejected lines that come before it.
        gaps = bad_lines - np.arange(1, len(bad_lines) + 1) - 1

        def locate(rows: np.ndarray) -> list[str]:
            lines = rows + 1 + np.searchsorted(gaps, rows, side="left")
            return [f"line {int(x)}" for x in lines]
    else:

        def locate(rows: np.ndarray) -> list[str]:
            return [f"record {int(x)}" for x in rows]

    rejects = pd.DataFrame(
        {
            "table": kind,
            "file": str(path),
            "location": [f"line {int(x)}" for x in bad["line"]],
            "row": pd.array([None] * len(bad), dtype="Int64"),
            "column": bad["column_name"].astype(object),
            "value": bad["csv_line"].astype(object),
            "reason": [_csv_reason(t, m) for t, m in zip(bad["error_type"], bad["error_message"])],
        },
        columns=REJECT_COLUMNS,
    )
    return RawTable(kind, path, relation, columns, int(n_ok + len(bad_lines)), locate, rejects)


def _csv_reason(error_type: str, message: str) -> str:
    if error_type == "INVALID ENCODING":
        return "bad encoding: not valid UTF-8 (pass --encoding if the file uses another one)"
    if error_type in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
        return f"wrong number of fields ({message.strip()})"
    return f"{error_type.lower()}: {message.strip()}"


def _count_lines(path: Path) -> int:
    """Newline count, plus one for a last line without its newline (compressed files: unknown)."""
    if path.suffix in (".gz", ".zst", ".bz2"):
        return -1
    n, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


# --- Parquet -----------------------------------------------------------------------------------


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str) -> RawTable:
    src = f"read_parquet({sql_literal(str(path))}, file_row_number=true)"
    try:
        names = [c for c in _describe(con, f"SELECT * FROM {src}") if c != "file_row_number"]
        casts = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in names)
        con.execute(
            f"CREATE OR REPLACE TABLE {relation} AS SELECT {casts}, "
            f"CAST(file_row_number + 1 AS BIGINT) AS _row FROM {src}"
        )
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot read as Parquet: {_first_line(exc)}") from exc
    n = scalar(con, f"SELECT count(*) FROM {relation}")
    return RawTable(kind, path, relation, names, int(n), lambda rows: [f"row {r}" for r in rows])


# --- JSON lines --------------------------------------------------------------------------------


def _read_jsonl(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str, encoding: str
) -> RawTable:
    """Parse line by line in Python: one bad line must become one reject, not a failed file."""
    columns: list[str] = []
    rejects: list[dict] = []
    n_records = 0
    con.execute(f"CREATE OR REPLACE TABLE {relation} (_row BIGINT)")
    for chunk, chunk_rejects, n_lines in _jsonl_chunks(path, encoding):
        rejects.extend(chunk_rejects)
        n_records += n_lines
        if not chunk:
            continue
        for key in chunk:
            if key != "_row" and key not in columns:
                columns.append(key)
                con.execute(f'ALTER TABLE {relation} ADD COLUMN "{key}" VARCHAR')
        arrow_chunk = pa.table(
            {
                k: pa.array(v, type=pa.int64() if k == "_row" else pa.string())
                for k, v in chunk.items()
            }
        )
        con.register("_jsonl_chunk", arrow_chunk)
        con.execute(f"INSERT INTO {relation} BY NAME SELECT * FROM _jsonl_chunk")
        con.unregister("_jsonl_chunk")
    return RawTable(
        kind,
        path,
        relation,
        columns,
        n_records,
        lambda rows: [f"line {r}" for r in rows],
        _rejects_frame(kind, path, rejects),
    )


def _jsonl_chunks(path: Path, encoding: str) -> Iterator[tuple[dict[str, list], list[dict], int]]:
    """Yield (column -> values, rejects, records seen) per chunk; ``_row`` is the line number."""
    columns: dict[str, list] = {"_row": []}
    rejects: list[dict] = []
    n_rows = 0
    seen = 0
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            seen += 1
            record, reason = _parse_json_line(raw, encoding)
            if reason is not None:
                rejects.append(
                    {"location": f"line {line_no}", "value": _preview(raw), "reason": reason}
                )
            else:
                for key, value in record.items():
                    columns.setdefault(key, [None] * n_rows).append(_as_text(value))
                n_rows += 1
                columns["_row"].append(line_no)
                for values in columns.values():
                    if len(values) < n_rows:
                        values.append(None)
            if n_rows >= JSONL_CHUNK:
                yield columns, rejects, seen
                columns, rejects, n_rows, seen = {"_row": []}, [], 0, 0
    yield columns if n_rows else {}, rejects, seen


def _parse_json_line(raw: bytes, encoding: str) -> tuple[dict, str | None]:
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return {}, f"bad encoding: not valid {encoding} (byte {raw[exc.start]:#04x} at {exc.start})"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"malformed JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return {}, f"expected a JSON object, found {type(record).__name__}"
    return record, None


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _preview(raw: bytes, limit: int = 200) -> str:
    return raw[:limit].decode("utf-8", errors="replace").rstrip()


# --- Amazon (UniSRec/RecBole-style) JSON -------------------------------------------------------


def _load_json_object(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            data = json.load(f)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: bad encoding, not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by id, found {type(data).__name__}")
    return data


def _read_amazon_items(
    con: duckdb.DuckDBPyConnection, path: Path, kind: str, relation: str
) -> RawTable:
    """``{"<item index>": {"title", "description", "brand", "categories"}}``."""
    data = _load_json_object(path)
    keys = list(data)
    fields: list[str] = []
    rejects: list[dict] = []
    good_rows: list[int] = []
    for row, key in enumerate(keys, start=1):
        value = data[key]
        if not isinstance(value, dict):
            rejects.append(
                {
                    "location": f"item {key!r}",
                    "value": _preview(json.dumps(value).encode()),
                    "reason": f"expected an object of item fields, found {type(value).__name__}",
                }
            )
            continue
        good_rows.append(row)
        fields.extend(f for f in value if f not in fields)
    columns = {"item_id": [keys[r - 1] for r in good_rows]}
    for f in fields:
        columns[f] = [_as_text(data[keys[r - 1]].get(f)) for r in good_rows]
    _register_table(con, relation, columns, good_rows)
    return RawTable(
        kind,
        path,
        relation,
        ["item_id", *fields],
        len(keys),
        lambda rows: [f"item {keys[r - 1]!r}" for r in rows],
        _rejects_frame(kind, path, rejects),
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
                    "value": _preview(json.dumps(seq).encode()),
                    "reason": f"expected a list of item ids, found {type(seq).__name__}",
                }
            )
            continue
        users.extend([key] * len(seq))
        items.extend(_as_text(i) for i in seq)
        positions.extend(range(1, len(seq) + 1))
    rows = list(range(1, len(users) + 1))
    _register_table(con, relation, {"user_id": users, "item_id": items}, rows)
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
        _rejects_frame(kind, path, rejects),
    )


def _register_table(
    con: duckdb.DuckDBPyConnection, relation: str, columns: dict[str, list], rows: list[int]
) -> None:
    table = pa.table(
        {
            **{k: pa.array(v, type=pa.string()) for k, v in columns.items()},
            "_row": pa.array(rows, type=pa.int64()),
        }
    )
    con.register("_staging", table)
    con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM _staging")
    con.unregister("_staging")


def _rejects_frame(kind: str, path: Path, rejects: list[dict]) -> pd.DataFrame:
    """Rejects found while parsing, before columns are known: no row number, no column."""
    frame = pd.DataFrame(rejects, columns=["location", "value", "reason"])
    frame.insert(0, "table", kind)
    frame.insert(1, "file", str(path))
    frame.insert(3, "row", pd.array([None] * len(frame), dtype="Int64"))
    frame.insert(4, "column", None)
    return frame


# --- helpers -----------------------------------------------------------------------------------


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return _describe(con, f"SELECT * FROM {relation}")


def _describe(con: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE {query}").fetchall()]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]
