"""Ingest: read a shop's files, validate and clean them, and write the run folder's store.

The flow is items first (interactions and queries must reference known items), then events, then
queries. Each table reports how many records it read, kept and rejected; every rejected record is in
``rejects.csv`` with its file, location, column and reason.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict

from shopaug.data.errors import DataError
from shopaug.data.readers import REJECT_COLUMNS, FileFormat, RawTable, empty_rejects, read_raw
from shopaug.data.schema import INTERACTIONS, ITEMS, QUERIES, TableSpec
from shopaug.data.store import DatasetStore, connect, scalar, sql_literal
from shopaug.data.validation import ValidatedTable, validate

StageCallback = Callable[[str, float], None]


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

    @classmethod
    def amazon(cls, directory: str | Path) -> IngestSpec:
        """The UniSRec-style Amazon layout: ``<Name>.item.json`` and ``<Name>.inter.json``."""
        directory = Path(directory)
        items = sorted(directory.glob("*.item.json"))
        inter = sorted(directory.glob("*.inter.json"))
        if len(items) != 1 or len(inter) != 1:
            raise DataError(
                f"{directory}: expected one *.item.json and one *.inter.json, "
                f"found {[p.name for p in items + inter]}"
            )
        return cls(items=items[0], interactions=inter[0])


@dataclass
class TableReport:
    table: str
    file: str
    records: int
    kept: int
    rejected: int
    duplicates: int = 0


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
    notify = on_stage or (lambda stage, fraction: None)
    store = DatasetStore(run_dir)
    con = connect(temp_dir=store.run_dir / ".tmp")
    report = IngestReport(run_dir=str(store.run_dir))
    rejects: list[pd.DataFrame] = []
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
        notify(f"validating {table_spec.name}", (step + 0.5) / (len(plan) + 1))
        checked = validate(con, raw, table_spec, clean_text=spec.clean_text)
        duplicates = (
            _drop_duplicate_events(con, raw, checked)
            if (spec.drop_duplicate_events and table_spec.name != "items")
            else empty_rejects()
        )
        rejects += [checked.rejects, duplicates]
        report.tables.append(
            TableReport(
                table_spec.name,
                str(path),
                raw.n_records,
                checked.n_kept - len(duplicates),
                _count_records(checked.rejects),
                len(duplicates),
            )
        )
    notify("writing store", len(plan) / (len(plan) + 1))
    store.clear()
    report.n_users = _write_store(con, store, has_queries=spec.queries is not None)
    all_rejects = pd.concat([r for r in rejects if len(r)] or [empty_rejects()], ignore_index=True)
    store.write_rejects(all_rejects)
    report.seconds = time.perf_counter() - started
    store.write_manifest(
        {
            "report": report.to_dict(),
            "spec": spec.model_dump(mode="json"),
            "source_sha256": {t.table: _file_hash(Path(t.file)) for t in report.tables},
        }
    )
    notify("done", 1.0)
    return report


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
            "column": None,
            "value": None,
            "reason": [f"duplicate event (same {', '.join(key)} as {f}); removed" for f in firsts],
        }
    )
    return frame[REJECT_COLUMNS]


def _write_store(con: duckdb.DuckDBPyConnection, store: DatasetStore, has_queries: bool) -> int:
    """Give items and users dense integer indices, then write every table sorted for reading."""
    store.write_table(
        con,
        "items",
        "SELECT CAST(row_number() OVER (ORDER BY _row) - 1 AS BIGINT) AS item_index, "
        "* EXCLUDE (_row) FROM valid_items ORDER BY _row",
    )
    n_users = 0
    if _exists(con, "valid_interactions"):
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
            f"e._row AS source_row FROM valid_interactions e "
            f"JOIN user_index u USING (user_id) JOIN (SELECT item_id, item_index FROM {item_index}) i "
            f"USING (item_id) ORDER BY u.user_index, e.timestamp NULLS FIRST, e._row",
        )
        n_users = scalar(con, "SELECT count(*) FROM user_index")
    if has_queries and _exists(con, "valid_queries"):
        store.write_table(
            con,
            "queries",
            "SELECT query, item_id, user_id, event, timestamp, _row AS source_row "
            "FROM valid_queries ORDER BY _row",
        )
    return int(n_users)


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]))


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
