"""Row-level validation of a staged table, run inside DuckDB so it scales past memory.

Each check is a SQL expression that yields a reason or NULL; a row with any reason goes to the
rejects with every reason it has, a row with none is typed and kept. Nothing is dropped without a
line in the rejects file.

Timestamps are ISO 8601 text or epoch numbers (above 1e11 milliseconds, else seconds). A timestamp
before 1990-01-01 or more than a year after the ingest is rejected as implausible: such dates are
almost always a unit mistake (microseconds read as milliseconds land in the year 56971) or a
placeholder (0, -1), and the reason says which unit would have made the number plausible.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from shopaug.data.cleaning import category_path_arrow, clean_text_arrow
from shopaug.data.errors import DataError
from shopaug.data.schema import ColumnSpec, TableSpec
from shopaug.data.staging import REJECT_COLUMNS, RawTable, empty_rejects
from shopaug.data.store import scalar, sql_literal

#: Timestamps: epoch numbers above this are taken as milliseconds, below as seconds.
EPOCH_MS_THRESHOLD = 1e11
#: The plausible range of an event's time: from this date to this long after the ingest.
EARLIEST_TIMESTAMP = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
LATEST_AHEAD = dt.timedelta(days=366)
#: Other epoch units a number out of range may be in, tried for the hint in the reason.
_OTHER_UNITS = (("microseconds", 1e6), ("nanoseconds", 1e9))
_UDFS = {"shopaug_clean_text": clean_text_arrow, "shopaug_category_path": category_path_arrow}


@dataclass(frozen=True)
class TimeRange:
    """The accepted span of timestamps, as epoch seconds and as the dates a message shows."""

    first: float
    last: float

    @classmethod
    def around(cls, now: dt.datetime | None = None) -> TimeRange:
        now = now or dt.datetime.now(dt.UTC)
        return cls(EARLIEST_TIMESTAMP.timestamp(), (now + LATEST_AHEAD).timestamp())

    def text(self) -> str:
        first, last = (dt.datetime.fromtimestamp(t, dt.UTC).date() for t in (self.first, self.last))
        return f"{first} to {last}"


@dataclass
class ValidatedTable:
    """The accepted rows (DuckDB table ``relation``) and the rejects of one staged file."""

    spec: TableSpec
    relation: str
    n_kept: int
    rejects: pd.DataFrame
    attributes: list[str] = field(default_factory=list)


def check_columns(raw: RawTable, spec: TableSpec) -> None:
    """Fail fast, naming the file, when a required column is absent: no row could be kept."""
    missing = [c for c in spec.required_names if c not in raw.columns]
    if not missing:
        return
    if not raw.columns:
        raise DataError(f"{raw.source}: {_why_no_columns(raw)}")
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, raw.columns, n=1, cutoff=0.6)
        if close:
            hints.append(
                f"did you mean {close[0]!r} for {name!r}? "
                f"(map it with --map {spec.name}.{name}={close[0]})"
            )
    hint = ("; " + "; ".join(hints)) if hints else ""
    raise DataError(
        f"{raw.source}: missing required column{'s' if len(missing) > 1 else ''} "
        f"{', '.join(repr(m) for m in missing)} for {spec.name}; found {raw.columns}{hint}"
    )


def _why_no_columns(raw: RawTable) -> str:
    """An empty file, or one whose every record failed to parse: say which, with the first reason."""
    bad = raw.structural_rejects
    if raw.n_records == 0 or bad.empty:
        return "the file is empty (no records)"
    first = bad.iloc[0]
    return (
        f"none of its {raw.n_records:,} records could be read "
        f"({first['location']}: {first['reason']})"
    )


def validate(
    con: duckdb.DuckDBPyConnection,
    raw: RawTable,
    spec: TableSpec,
    clean_text: bool = True,
    time_range: TimeRange | None = None,
) -> ValidatedTable:
    """Type, clean and check ``raw``; referenced tables (``items``) must already be validated."""
    check_columns(raw, spec)
    _ensure_udfs(con)
    time_range = time_range or TimeRange.around()
    present = [c for c in spec.columns if c.name in raw.columns]
    extras = (
        [c for c in raw.columns if c not in spec.column_names] if spec.extra_columns_allowed else []
    )
    cleaned = _cleaned_projection(raw, spec, present, extras, clean_text)
    checked = f"checked_{spec.name}"
    problems = [p for c in present for p in _problems(c, time_range)]
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
    typed = ", ".join(_typed(c, time_range) for c in present) or ""
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
    return ValidatedTable(spec, relation, int(n_kept), all_rejects, extras)


def _ensure_udfs(con: duckdb.DuckDBPyConnection) -> None:
    for name, function in _UDFS.items():
        try:
            con.create_function(
                name,
                function,
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
    """Trim ids, clean text columns, lower-case event names; keep the raw text for messages.

    A category list (a JSON array, as Parquet lists and JSON lines hold it) becomes the path the
    schema expects; a timestamp also gets its epoch seconds (``__secs_``) for the range check.
    """
    parts = []
    for c in present:
        col = f'"{c.name}"'
        if c.name == "categories":
            col = f"shopaug_category_path({col})"
        if c.name in spec.text_columns and clean:
            expr = f"shopaug_clean_text({col})"
        elif c.name == "event":
            expr = f"lower(trim({col}))"
        else:
            expr = f"trim({col})"
        parts.append(f"{expr} AS {c.name}")
        parts.append(f'"{c.name}" AS __raw_{c.name}')
        if c.type == "timestamp":
            parts.append(f"{_epoch_seconds(expr)} AS __secs_{c.name}")
    parts += [f'"{e}"' for e in extras]
    parts.append("_row")
    return f"SELECT {', '.join(parts)} FROM {raw.relation}"


def _problem(column: str, condition: str, reason: str) -> str:
    """A struct that carries a reason when ``condition`` holds, and NULL reason otherwise."""
    return (
        f"struct_pack(col := '{column}', value := __raw_{column}, "
        f"reason := CASE WHEN {condition} THEN {reason} END)"
    )


def _problems(c: ColumnSpec, time_range: TimeRange) -> list[str]:
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
        out += _timestamp_problems(name, blank, time_range)
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


def _epoch_seconds(text: str) -> str:
    """Epoch seconds of a timestamp's text as DOUBLE (NULL if it is none, NaN/inf kept as such).

    Kept as a number, not a TIMESTAMP: converting 1e300 or NaN raises in DuckDB, so the range
    check comes first and only plausible values are ever converted.
    """
    number = f"TRY_CAST({text} AS DOUBLE)"
    return (
        f"(CASE WHEN {number} IS NOT NULL THEN "
        f"CASE WHEN {number} > {EPOCH_MS_THRESHOLD} THEN {number} / 1000 ELSE {number} END "
        f"ELSE epoch(TRY_CAST({text} AS TIMESTAMPTZ)) END)"
    )


def _in_range(secs: str, time_range: TimeRange) -> str:
    return f"({secs} BETWEEN {time_range.first} AND {time_range.last})"


def _to_timestamp(secs: str, safe: str) -> str:
    """``to_timestamp(secs)`` that cannot raise: DuckDB may evaluate a CASE branch on rows it
    does not select, so the argument itself is replaced by 0 wherever ``safe`` does not hold."""
    return f"to_timestamp(CASE WHEN {safe} THEN {secs} ELSE 0 END)"


def _timestamp_problems(name: str, blank: str, time_range: TimeRange) -> list[str]:
    secs = f"__secs_{name}"
    number = f"TRY_CAST({name} AS DOUBLE)"
    unit = f"(CASE WHEN {number} > {EPOCH_MS_THRESHOLD} THEN 'milliseconds' ELSE 'seconds' END)"
    # Only dates DuckDB can represent are printed (about 290,000 years either side of 1970).
    representable = f"abs({secs}) < 9e12"
    as_date = (
        f"CASE WHEN {representable} "
        f"THEN strftime({_to_timestamp(secs, representable)}, '%Y-%m-%d') ELSE 'no real date' END"
    )
    read_as = (
        f"CASE WHEN {number} IS NOT NULL THEN 'read as epoch ' || {unit} || ': ' || {as_date} "
        f"ELSE {as_date} END"
    )
    hints = " ".join(
        f"WHEN {_in_range(f'{number} / {factor}', time_range)} "
        f"THEN '; it looks like epoch {unit_name}'"
        for unit_name, factor in _OTHER_UNITS
    )
    implausible = (
        f"'implausible timestamp ' || {name} || ' (' || {read_as} || '; accepted: "
        f"{time_range.text()})' || CASE {hints} ELSE '' END"
    )
    return [
        _problem(name, blank, f"'missing {name} (the column is present, so every row needs one)'"),
        _problem(
            name,
            f"NOT {blank} AND ({secs} IS NULL OR NOT isfinite({secs}))",
            f"'not a timestamp (ISO 8601, or epoch seconds or milliseconds, expected): ' || {name}",
        ),
        _problem(name, f"isfinite({secs}) AND NOT {_in_range(secs, time_range)}", implausible),
    ]


def _typed(c: ColumnSpec, time_range: TimeRange) -> str:
    if c.type == "float":
        return f"TRY_CAST({c.name} AS DOUBLE) AS {c.name}"
    if c.type == "timestamp":
        # Converted only when plausible (hence representable): a number through its epoch
        # seconds, ISO text as DuckDB parses it, so sub-second digits are kept exactly.
        number = f"TRY_CAST({c.name} AS DOUBLE)"
        secs = f"__secs_{c.name}"
        plausible = f"(isfinite({secs}) AND {_in_range(secs, time_range)})"
        return (
            f"CASE WHEN {plausible} THEN CASE WHEN {number} IS NOT NULL "
            f"THEN CAST({_to_timestamp(secs, plausible)} AS TIMESTAMP) "
            f"ELSE CAST(TRY_CAST({c.name} AS TIMESTAMPTZ) AS TIMESTAMP) END END AS {c.name}"
        )
    if c.default is not None:
        return f"coalesce(nullif({c.name}, ''), {sql_literal(c.default)}) AS {c.name}"
    return f"{c.name}"


def _sql_type(c: ColumnSpec) -> str:
    return {"string": "VARCHAR", "float": "DOUBLE", "timestamp": "TIMESTAMP"}[c.type]
