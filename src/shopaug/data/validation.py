"""Row-level validation of a staged table, run inside DuckDB so it scales past memory.

Each check is a SQL expression that yields a reason or NULL; a row with any reason goes to the
rejects with every reason it has, a row with none is typed and kept. Nothing is dropped without a
line in the rejects file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from shopaug.data.cleaning import clean_text_arrow
from shopaug.data.errors import DataError
from shopaug.data.readers import REJECT_COLUMNS, RawTable, empty_rejects
from shopaug.data.schema import ColumnSpec, TableSpec
from shopaug.data.store import scalar, sql_literal

#: Timestamps: epoch numbers above this are taken as milliseconds, below as seconds.
EPOCH_MS_THRESHOLD = 1e11
_TEXT_UDF = "shopaug_clean_text"


@dataclass
class ValidatedTable:
    """The accepted rows (DuckDB table ``relation``) and the rejects of one staged file."""

    spec: TableSpec
    relation: str
    n_kept: int
    rejects: pd.DataFrame


def check_columns(raw: RawTable, spec: TableSpec) -> None:
    """Fail fast, naming the file, when a required column is absent: no row could be kept."""
    missing = [c for c in spec.required_names if c not in raw.columns]
    if not missing:
        return
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, raw.columns, n=1, cutoff=0.6)
        if close:
            hints.append(
                f"did you mean {close[0]!r} for {name!r}? (map it with --map {name}={close[0]})"
            )
    hint = ("; " + "; ".join(hints)) if hints else ""
    raise DataError(
        f"{raw.source}: missing required column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(repr(m) for m in missing)} for {spec.name}; found {raw.columns}{hint}"
    )


def validate(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    spec: TableSpec,
    clean_text: bool = True,
) -> ValidatedTable:
    """Type, clean and check ``raw``; referenced tables (``items``) must already be validated."""
    check_columns(raw, spec)
    _ensure_text_udf(con)
    present = [c for c in spec.columns if c.name in raw.columns]
    extras = (
        [c for c in raw.columns if c not in spec.column_names] if spec.extra_columns_allowed else []
    )
    cleaned = _cleaned_projection(raw, spec, present, extras, clean_text)
    checked = f"checked_{spec.name}"
    problems = [p for c in present for p in _problems(c, spec)]
    joins = "".join(_reference_join(c) for c in present if c.references)
    problem_list = "list_filter([" + ", ".join(problems) + "], lambda p: p.reason IS NOT NULL)"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {checked} AS "
        f"SELECT s.*, {problem_list} AS _problems FROM ({cleaned}) s {joins}"
    )
    if spec.key:
        _flag_duplicate_keys(con, checked, spec.key)
    rejects = _collect_rejects(con, raw, checked)
    relation = f"valid_{spec.name}"
    typed = ", ".join(_typed(c) for c in present) or ""
    defaults = ", ".join(
        f"CAST({sql_literal(c.default)} AS VARCHAR) AS {c.name}"
        for c in spec.columns
        if c not in present and c.default is not None
    )
    missing_optional = ", ".join(
        f"CAST(NULL AS {_sql_type(c)}) AS {c.name}"
        for c in spec.columns
        if c not in present and c.default is None
    )
    select = ", ".join(
        x for x in (typed, defaults, missing_optional, *[f'"{e}"' for e in extras], "_row") if x
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {relation} AS "
        f"SELECT {select} FROM {checked} WHERE len(_problems) = 0 ORDER BY _row"
    )
    n_kept = scalar(con, f"SELECT count(*) FROM {relation}")
    con.execute(f"DROP TABLE {checked}")
    all_rejects = pd.concat(
        [df for df in (raw.structural_rejects, rejects) if len(df)] or [rejects], ignore_index=True
    )
    return ValidatedTable(spec, relation, int(n_kept), all_rejects)


def _ensure_text_udf(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.create_function(
            _TEXT_UDF,
            clean_text_arrow,
            ["VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
    except duckdb.Error as exc:
        if "already created" not in str(exc):
            raise


def _cleaned_projection(
    raw: RawTable, spec: TableSpec, present: list[ColumnSpec], extras: list[str], clean: bool
) -> str:
    """Trim ids, clean text columns, lower-case event names; keep the raw text for messages."""
    parts = []
    for c in present:
        col = f'"{c.name}"'
        if c.name in spec.text_columns and clean:
            expr = f"{_TEXT_UDF}({col})"
        elif c.name == "event":
            expr = f"lower(trim({col}))"
        else:
            expr = f"trim({col})"
        parts.append(f"{expr} AS {c.name}")
        parts.append(f"{col} AS __raw_{c.name}")
    parts += [f'"{e}"' for e in extras]
    parts.append("_row")
    return f"SELECT {', '.join(parts)} FROM {raw.relation}"


def _problem(column: str, condition: str, reason: str) -> str:
    """A struct that carries a reason when ``condition`` holds, and NULL reason otherwise."""
    return (
        f"struct_pack(col := '{column}', value := __raw_{column}, "
        f"reason := CASE WHEN {condition} THEN {reason} END)"
    )


def _problems(c: ColumnSpec, spec: TableSpec) -> list[str]:
    name = c.name
    blank = f"({name} IS NULL OR {name} = '')"
    out = []
    if c.required or c.nonempty:
        what = "empty" if c.nonempty else "missing"
        out.append(_problem(name, blank, f"'{what} {name}'"))
    if c.type == "float":
        number = f"TRY_CAST({name} AS DOUBLE)"
        out.append(
            _problem(name, f"NOT {blank} AND {number} IS NULL", f"'not a number: ' || {name}")
        )
        out.append(
            _problem(
                name,
                f"NOT {blank} AND NOT isfinite({number})",
                f"'not a finite number: ' || {name}",
            )
        )
        if name == "price":
            out.append(_problem(name, f"{number} < 0", f"'negative {name}: ' || {name}"))
    if c.type == "timestamp":
        out.append(
            _problem(
                name, blank, f"'missing {name} (the column is present, so every row needs one)'"
            )
        )
        out.append(
            _problem(
                name,
                f"NOT {blank} AND {_timestamp_expr(name)} IS NULL",
                f"'not a timestamp (ISO 8601 or epoch seconds expected): ' || {name}",
            )
        )
    if c.references:
        ref = f"__ref_{c.references}_{name}"
        out.append(
            _problem(
                name,
                f"NOT {blank} AND {ref} IS NULL",
                f"'unknown {name} ' || {name} || ' (not in {c.references})'",
            )
        )
    return out


def _reference_join(c: ColumnSpec) -> str:
    ref = f"__ref_{c.references}_{c.name}"
    key = "item_id" if c.references == "items" else c.name
    return f" LEFT JOIN (SELECT {key} AS {ref} FROM valid_{c.references}) ON s.{c.name} = {ref}"


def _flag_duplicate_keys(con: duckdb.DuckDBPyConnection, checked: str, key: str) -> None:
    """The first valid row of a key wins; later ones are rejected and point back to it."""
    con.execute(
        f"""
        CREATE TEMP TABLE {checked}_keyed AS
        SELECT * REPLACE (
            CASE WHEN len(_problems) = 0 AND _first_row <> _row
                 THEN list_append(_problems, struct_pack(col := '{key}', value := __raw_{key},
                      reason := 'duplicate {key} ' || {key} || ' (first at #' || _first_row || ')'))
                 ELSE _problems END AS _problems)
        FROM (
            SELECT *, min(CASE WHEN len(_problems) = 0 THEN _row END)
                      OVER (PARTITION BY {key}) AS _first_row
            FROM {checked}
        )
        """
    )
    con.execute(f"DROP TABLE {checked}")
    con.execute(f"ALTER TABLE {checked}_keyed RENAME TO {checked}")


def _collect_rejects(con: duckdb.DuckDBPyConnection, raw: RawTable, checked: str) -> pd.DataFrame:
    frame = con.execute(
        f"SELECT _row AS row, p.col AS column, p.value AS value, p.reason AS reason "
        f"FROM (SELECT _row, unnest(_problems) AS p FROM {checked} WHERE len(_problems) > 0) "
        f"ORDER BY _row"
    ).fetchdf()
    if frame.empty:
        return empty_rejects()
    rows = frame["row"].to_numpy(dtype=np.int64)
    frame["location"] = raw.locate(rows)
    frame["reason"] = [_point_back(r, raw) for r in frame["reason"]]
    frame["table"] = raw.kind
    frame["file"] = str(raw.source)
    frame["row"] = frame["row"].astype("Int64")
    return frame[REJECT_COLUMNS]


def _point_back(reason: str, raw: RawTable) -> str:
    """Turn the '(first at #N)' of a duplicate into the first row's location in the file."""
    if "(first at #" not in reason:
        return reason
    head, _, tail = reason.rpartition("(first at #")
    first = int(tail.rstrip(")"))
    return f"{head}(first at {raw.locate(np.array([first]))[0]})"


def _timestamp_expr(name: str) -> str:
    number = f"TRY_CAST({name} AS DOUBLE)"
    return (
        f"(CASE WHEN {number} IS NOT NULL THEN "
        f"CAST(to_timestamp(CASE WHEN {number} > {EPOCH_MS_THRESHOLD} THEN {number} / 1000 "
        f"ELSE {number} END) AS TIMESTAMP) "
        f"ELSE CAST(TRY_CAST({name} AS TIMESTAMPTZ) AS TIMESTAMP) END)"
    )


def _typed(c: ColumnSpec) -> str:
    if c.type == "float":
        return f"TRY_CAST({c.name} AS DOUBLE) AS {c.name}"
    if c.type == "timestamp":
        return f"{_timestamp_expr(c.name)} AS {c.name}"
    if c.default is not None:
        return f"coalesce(nullif({c.name}, ''), {sql_literal(c.default)}) AS {c.name}"
    return f"{c.name}"


def _sql_type(c: ColumnSpec) -> str:
    return {"string": "VARCHAR", "float": "DOUBLE", "timestamp": "TIMESTAMP"}[c.type]
