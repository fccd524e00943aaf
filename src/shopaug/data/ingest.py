"""Ingest: read a shop's files, validate and clean them, and write the run folder's store.

The flow is items first (interactions and queries must reference known items), then events, then
queries. Each table reports how many records it read, kept and rejected; every rejected record is in
``rejects.csv`` with its file, location, column and reason. A source file inside the run folder (the
pipeline generates the demo shop there) is recorded by its path relative to the run folder, so the
records stay true when the folder is moved or renamed into place.
"""

from __future__ import annotations

import codecs
import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from shopaug.data.errors import DataError
from shopaug.data.readers import FileFormat, read_raw
from shopaug.data.schema import INTERACTIONS, ITEMS, QUERIES, TableSpec
from shopaug.data.staging import REJECT_COLUMNS, WHOLE_RECORD, RawTable, empty_rejects
from shopaug.data.store import DatasetStore, connect, scalar, sql_literal
from shopaug.data.validation import TimeRange, ValidatedTable, validate
from shopaug.progress import StageCallback, notifier


class IngestSpec(BaseModel):
    """Where a shop's data lives and how to read it."""

    model_config = ConfigDict(extra="forbid")

    items: Path
    interactions: Path | None = None
    queries: Path | None = None
    formats: dict[str, FileFormat] = {}
    rename: dict[str, dict[str, str]] = {}
    encoding: str = "utf-8"
    clean_text: bool = True
    drop_duplicate_events: bool = True

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                "unknown encoding; use a name Python knows, such as utf-8, latin-1, cp1252 or "
                "utf-16"
            ) from None
        return value

    @classmethod
    def amazon(cls, directory: str | Path, **options: Any) -> IngestSpec:
        """The UniSRec-style Amazon layout: ``<Name>.item.json`` and ``<Name>.inter.json``."""
        directory = Path(directory)
        items = sorted(directory.glob("*.item.json"))
        inter = sorted(directory.glob("*.inter.json"))
        if len(items) != 1 or len(inter) != 1:
            raise DataError(
                f"{directory}: expected one *.item.json and one *.inter.json, "
                f"found {[p.name for p in items + inter]}"
            )
        return cls(items=items[0], interactions=inter[0], **options)


@dataclass
class TableReport:
    table: str
    file: str
    records: int
    kept: int
    rejected: int
    duplicates: int = 0
    attributes: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    run_dir: str
    tables: list[TableReport] = field(default_factory=list)
    n_users: int = 0
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return sum(t.rejected + t.duplicates for t in self.tables)

    def table(self, name: str) -> TableReport:
        return next(t for t in self.tables if t.table == name)

    def to_dict(self) -> dict:
        return asdict(self)


def ingest(
    spec: IngestSpec, run_dir: str | Path, on_stage: StageCallback | None = None
) -> IngestReport:
    """Validate, clean and store ``spec``'s files under ``run_dir/data``; returns the summary."""
    started = time.perf_counter()
    notify = notifier(on_stage)
    store = DatasetStore(run_dir)
    con = connect(temp_dir=_prepare_run_dir(store.run_dir) / ".tmp")
    report = IngestReport(run_dir=str(store.run_dir))
    time_range = TimeRange.around()
    rejects: list[pd.DataFrame] = []
    tables: dict[str, ValidatedTable] = {}
    plan: list[tuple[TableSpec, Path | None]] = [
        (ITEMS, spec.items),
        (INTERACTIONS, spec.interactions),
        (QUERIES, spec.queries),
    ]
    plan = [(t, p) for t, p in plan if p is not None]
    for step, (table_spec, path) in enumerate(plan):
        notify(f"reading {table_spec.name}", step / (len(plan) + 1))
        raw = read_raw(
            con,
            path,
            table_spec.name,
            spec.formats.get(table_spec.name),
            spec.rename.get(table_spec.name),
            spec.encoding,
        )
        raw.source = _recorded_path(raw.source, store.run_dir)
        notify(f"validating {table_spec.name}", (step + 0.5) / (len(plan) + 1))
        checked = validate(con, raw, table_spec, clean_text=spec.clean_text, time_range=time_range)
        duplicates = (
            _drop_duplicate_events(con, raw, checked)
            if (spec.drop_duplicate_events and table_spec.name != "items")
            else empty_rejects()
        )
        rejects += [checked.rejects, duplicates]
        tables[table_spec.name] = checked
        report.tables.append(
            TableReport(
                table_spec.name,
                str(raw.source),
                raw.n_records,
                checked.n_kept - len(duplicates),
                _count_records(checked.rejects),
                len(duplicates),
                checked.attributes,
            )
        )
    notify("writing store", len(plan) / (len(plan) + 1))
    store.clear()
    report.n_users = _write_store(con, store, tables)
    all_rejects = pd.concat([r for r in rejects if len(r)] or [empty_rejects()], ignore_index=True)
    store.write_rejects(all_rejects)
    report.seconds = time.perf_counter() - started
    store.write_manifest(_manifest(spec, report, store.run_dir))
    notify("done", 1.0)
    return report


def _prepare_run_dir(run_dir: Path) -> Path:
    """Create the run folder; a path that cannot be one is an error naming it, not a traceback."""
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"{run_dir}: exists and is not a folder; the run folder must be a folder")
    try:
        (run_dir / "data").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{run_dir}: cannot create the run folder: {exc.strerror or exc}") from exc
    return run_dir


def _recorded_path(path: Path, run_dir: Path) -> Path:
    """``path`` relative to the run folder when it lies inside it, else as given."""
    try:
        return path.resolve().relative_to(run_dir.resolve())
    except ValueError:
        return path


def _manifest(spec: IngestSpec, report: IngestReport, run_dir: Path) -> dict[str, Any]:
    """What was ingested from where; the run folder's own path is left out (it may move)."""
    sources = {
        name: str(_recorded_path(Path(value), run_dir))
        for name in ("items", "interactions", "queries")
        if (value := getattr(spec, name)) is not None
    }
    summary = report.to_dict()
    summary.pop("run_dir")
    return {
        "report": summary,
        "spec": {**spec.model_dump(mode="json"), **sources},
        "source_sha256": {name: file_sha256(Path(getattr(spec, name))) for name in sources},
    }


def _count_records(rejects: pd.DataFrame) -> int:
    """A record with several problems has several reject lines but counts once."""
    if rejects.empty:
        return 0
    return int(rejects.drop_duplicates(["table", "file", "location"]).shape[0])


def _drop_duplicate_events(
    con: duckdb.DuckDBPyConnection, raw: RawTable, checked: ValidatedTable
) -> pd.DataFrame:
    """Trackers double-fire: the same user, item, event and time twice is one event.

    Only events with a timestamp can be told apart from a real repeat (a re-purchase); events
    without one are all kept, since their order is the only time they have.
    """
    rel = checked.relation
    key = [
        c
        for c in ("user_id", "query", "item_id", "event", "timestamp")
        if c in checked.spec.column_names
    ]
    keys = ", ".join(key)
    dup = con.execute(
        f"""
        SELECT _row, _first FROM (
            SELECT _row, min(_row) OVER (PARTITION BY {keys}) AS _first FROM {rel}
            WHERE timestamp IS NOT NULL
        ) WHERE _row <> _first ORDER BY _row
        """
    ).fetchdf()
    if dup.empty:
        return empty_rejects()
    con.register("_dups", dup[["_row"]])
    con.execute(f"DELETE FROM {rel} WHERE _row IN (SELECT _row FROM _dups)")
    con.unregister("_dups")
    rows = dup["_row"].to_numpy()
    firsts = raw.locate(dup["_first"].to_numpy())
    frame = pd.DataFrame(
        {
            "table": raw.kind,
            "file": str(raw.source),
            "location": raw.locate(rows),
            "row": pd.array(rows, dtype="Int64"),
            "column": WHOLE_RECORD,
            "value": None,
            "reason": [f"duplicate event (same {', '.join(key)} as {f}); removed" for f in firsts],
        }
    )
    return frame[REJECT_COLUMNS]


def _write_store(
    con: duckdb.DuckDBPyConnection, store: DatasetStore, tables: dict[str, ValidatedTable]
) -> int:
    """Give items and users dense integer indices, then write every table sorted for reading.

    Extra columns of events and queries (a session id, a device) follow the schema's columns.
    """
    store.write_table(
        con,
        "items",
        "SELECT CAST(row_number() OVER (ORDER BY _row) - 1 AS BIGINT) AS item_index, "
        "* EXCLUDE (_row) FROM valid_items ORDER BY _row",
    )
    n_users = 0
    if "interactions" in tables:
        extras = _extra_columns(tables["interactions"], "e.")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE user_index AS "
            "SELECT user_id, CAST(row_number() OVER (ORDER BY first_row) - 1 AS BIGINT) AS user_index, "
            "n_events FROM (SELECT user_id, min(_row) AS first_row, count(*) AS n_events "
            "FROM valid_interactions GROUP BY user_id)"
        )
        store.write_table(
            con, "users", "SELECT user_index, user_id, n_events FROM user_index ORDER BY user_index"
        )
        item_index = f"read_parquet({sql_literal(str(store.path('items').resolve()))})"
        store.write_table(
            con,
            "interactions",
            f"SELECT u.user_index, i.item_index, e.user_id, e.item_id, e.event, e.timestamp, "
            f"e._row AS source_row{extras} FROM valid_interactions e "
            f"JOIN user_index u USING (user_id) JOIN (SELECT item_id, item_index FROM {item_index}) i "
            f"USING (item_id) ORDER BY u.user_index, e.timestamp NULLS FIRST, e._row",
        )
        n_users = scalar(con, "SELECT count(*) FROM user_index")
    if "queries" in tables:
        store.write_table(
            con,
            "queries",
            f"SELECT query, item_id, user_id, event, timestamp, _row AS source_row"
            f"{_extra_columns(tables['queries'])} FROM valid_queries ORDER BY _row",
        )
    return int(n_users)


def _extra_columns(table: ValidatedTable, prefix: str = "") -> str:
    return "".join(f', {prefix}"{c}"' for c in table.attributes)


def file_sha256(path: Path) -> str:
    """A source file's content hash: what ties a stored dataset (and a cached stage) to its input."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
