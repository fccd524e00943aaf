"""The dataset store of a run folder: Parquet files plus DuckDB views over them.

Parquet is the durable format (any warehouse reads it); DuckDB gives SQL over it without loading
tens of millions of events into Python. Views are created per connection, with absolute paths, so a
run folder can be moved or copied whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from shopaug.data.errors import DataError

TABLE_FILES = {
    "items": "items.parquet",
    "users": "users.parquet",
    "interactions": "interactions.parquet",
    "queries": "queries.parquet",
}
REJECTS_FILE = "rejects.csv"
MANIFEST_FILE = "ingest.json"


def connect(temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the settings every stage relies on (UTC, ordered results)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {_sql_path(temp_dir)}")
    return con


class DatasetStore:
    """``RUN/data/``: one Parquet file per table, ``rejects.csv`` and the ``ingest.json`` manifest."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "data"

    def path(self, table: str) -> Path:
        return self.root / TABLE_FILES[table]

    @property
    def rejects_path(self) -> Path:
        return self.root / REJECTS_FILE

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def has(self, table: str) -> bool:
        return self.path(table).exists()

    def require(self) -> None:
        if not self.exists():
            raise DataError(
                f"{self.run_dir}: no ingested data here (missing {self.manifest_path}); "
                "run `shopaug ingest` first"
            )

    def manifest(self) -> dict[str, Any]:
        self.require()
        return json.loads(self.manifest_path.read_text())

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A connection with one view per stored table (``items``, ``interactions``, ...)."""
        self.require()
        con = connect()
        for table in TABLE_FILES:
            if self.has(table):
                con.execute(
                    f"CREATE VIEW {table} AS SELECT * FROM read_parquet({_sql_path(self.path(table))})"
                )
        return con

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        if not self.has(table):
            raise DataError(f"{self.run_dir}: the store has no {table} table")
        return pd.read_parquet(self.path(table), columns=columns)

    # --- writing -------------------------------------------------------------------------------

    def write_table(self, con: duckdb.DuckDBPyConnection, table: str, query: str) -> None:
        """Write the result of ``query`` atomically: a crash never leaves a half-written file."""
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(table)
        tmp = target.with_suffix(".parquet.tmp")
        con.execute(
            f"COPY ({query}) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
        )
        os.replace(tmp, target)

    def write_rejects(self, rejects: pd.DataFrame) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.rejects_path.with_suffix(".csv.tmp")
        rejects.to_csv(tmp, index=False)
        os.replace(tmp, self.rejects_path)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Written last: its presence marks a complete ingest."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(tmp, self.manifest_path)

    def clear(self) -> None:
        """Remove a previous ingest's files so a new one never mixes with them."""
        for name in (*TABLE_FILES.values(), REJECTS_FILE, MANIFEST_FILE):
            (self.root / name).unlink(missing_ok=True)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value of a one-row query, with the result read to its end.

    DuckDB 2 keeps a partly fetched result (``fetchone``) open on the connection and then refuses
    some later work on it (registering a function raises "unfinished result"); ``fetchall`` ends it.
    """
    return con.execute(sql, params or []).fetchall()[0][0]


def sql_literal(text: str) -> str:
    """A SQL string literal; DuckDB takes file paths and names in literals, not parameters."""
    return "'" + text.replace("'", "''") + "'"


def _sql_path(path: Path) -> str:
    return sql_literal(str(path.resolve()))
