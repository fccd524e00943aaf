"""A corpus of bad input, built in code: every format, every record kind, known bad-record counts.

Each case is one file mixing good records with bad ones. Ingest must never raise, keep every good
record, list every bad one once in rejects.csv (file, location, column, reason), and account for
every record: kept + rejected == records. Good records carry ids starting with ``G`` (items),
``g`` (a user in events) or ``good`` (a query), so a bad record kept in place of a good one shows.
A few more files cannot be used at all: they must stop with one error naming the file.
"""

from __future__ import annotations

import bz2
import gzip
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shopaug.cli import app
from shopaug.data.errors import DataError
from shopaug.data.ingest import IngestSpec, ingest
from shopaug.data.store import DatasetStore

LOCATION = re.compile(r"^(line \d+|row \d+|record \d+|item '.*'|user '.*'(, position \d+)?)$")
CATALOG = "item_id,title\n" + "".join(f"G{i},Item {i}\n" for i in range(10))
GOOD_PREFIX = {
    "items": ("item_id", "G"),
    "interactions": ("user_id", "g"),
    "queries": ("query", "good"),
}

Writer = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One corpus file: what it holds, how many records, how many of them are bad."""

    name: str
    kind: str
    filename: str
    content: bytes | str | Writer
    total: int
    bad: int
    encoding: str = "utf-8"
    #: The column and prefix that mark good records, where the kind's default does not fit.
    good: tuple[str, str] | None = None

    def write(self, folder: Path) -> Path:
        path = folder / self.filename
        if callable(self.content):
            self.content(path)
        else:
            data = self.content.encode() if isinstance(self.content, str) else self.content
            path.write_bytes(gzip.compress(data) if self.filename.endswith(".gz") else data)
        return path


def lines(*rows: str, end: str = "\n") -> str:
    return "".join(row + end for row in rows)


def parquet(records: list[dict] | pa.Table) -> Writer:
    def write(path: Path) -> None:
        table = records if isinstance(records, pa.Table) else pa.Table.from_pylist(records)
        pq.write_table(table, path)

    return write


def jsonl(*records: dict | str) -> str:
    """JSON lines; a str is written as it is (a broken line)."""
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def bz2_file(text: str) -> Writer:
    def write(path: Path) -> None:
        path.write_bytes(bz2.compress(text.encode()))

    return write


def truncated_gzip(text: str) -> Writer:
    def write(path: Path) -> None:
        data = gzip.compress(text.encode())
        path.write_bytes(data[: len(data) * 2 // 3])

    return write


ITEM_HEAD = "item_id,title,price"
GOOD_ITEMS = ["G1,Mug,1.5", 'G2,"Cup, blue",2', "G3,Bowl,3"]
EVENT_HEAD = "user_id,item_id,event,timestamp"
GOOD_EVENTS = [
    "g1,G1,view,2025-01-01T10:00:00",
    "g2,G2,cart,1735725600",
    "g3,G3,view,1735725600000",
]
QUERY_HEAD = "query,item_id,user_id"
GOOD_QUERIES = ["good mug,G1,u1", "good cup,G2,", "good bowl,G3,u3"]
LONG = "x" * 3_000_000

CASES = [
    # --- items: CSV and friends ---------------------------------------------------------------
    Case("csv clean", "items", "clean.csv", lines(ITEM_HEAD, *GOOD_ITEMS), 3, 0),
    Case(
        "csv empty titles",
        "items",
        "titles.csv",
        lines(ITEM_HEAD, *GOOD_ITEMS, "B1,,1", "B2,  ,2"),
        5,
        2,
    ),
    Case(
        "csv bad prices",
        "items",
        "prices.csv",
        lines(ITEM_HEAD, *GOOD_ITEMS, "B1,a,abc", "B2,b,-1", "B3,c,inf", "B4,d,NaN"),
        7,
        4,
    ),
    Case(
        "csv duplicate ids",
        "items",
        "dups.csv",
        lines(ITEM_HEAD, *GOOD_ITEMS, "G1,Again,1", "G2,Again,2"),
        5,
        2,
    ),
    Case(
        "csv short row", "items", "short.csv", lines(ITEM_HEAD, "G1,Mug,1", "B1", "G2,Cup,2"), 3, 1
    ),
    Case(
        "csv long row",
        "items",
        "long.csv",
        lines(ITEM_HEAD, "G1,Mug,1", "B1,a,1,x,y,z", "G2,Cup,2"),
        3,
        1,
    ),
    Case(
        "csv broken quote at the end",
        "items",
        "quote_end.csv",
        lines(ITEM_HEAD, *[f'G{i},"T, {i}",{i}' for i in range(10)], 'B1,"Bowl, big,3'),
        11,
        1,
    ),
    Case(
        "csv broken quote mid-file",
        "items",
        "quote_mid.csv",
        lines(ITEM_HEAD, 'G1,"Mug, red",1', 'B1,"Bowl, big,3', 'G2,"Cup, blue",2', "G3,Fork,4"),
        4,
        1,
    ),
    Case(
        "csv text after a closing quote",
        "items",
        "quote_after.csv",
        lines(ITEM_HEAD, 'G1,5" screen,1', 'B1,"q"x,3', "G2,ok,2"),
        3,
        1,
    ),
    Case(
        "csv multi-line fields",
        "items",
        "multiline.csv",
        lines(
            "item_id,title,description", 'G1,Mug,"two\nlines"', "B1", 'G2,Cup,"a\n\nb"', "G3,Bowl,"
        ),
        4,
        1,
    ),
    Case(
        "csv multi-line record with an extra field",
        "items",
        "multiline_extra.csv",
        lines("item_id,title,description", 'G1,Mug,"x"', 'B1,Cup,"a\nb",extra', "G2,Bowl,y"),
        3,
        1,
    ),
    Case(
        "csv blank lines",
        "items",
        "blank.csv",
        lines(ITEM_HEAD, "G1,Mug,1", "", "B1,,1", "", "G2,Cup,2", "", ""),
        3,
        1,
    ),
    Case(
        "csv bad utf-8",
        "items",
        "utf8.csv",
        lines(ITEM_HEAD, "G1,Mug,1").encode() + b"B1,Caf\xe9,1\n" + lines("G2,Cup,2").encode(),
        3,
        1,
    ),
    Case(
        "csv 3 MB line",
        "items",
        "long_line.csv",
        lines(ITEM_HEAD, *GOOD_ITEMS, f"B1,{LONG},1", "G4,Plate,4"),
        5,
        1,
    ),
    Case(
        "csv crlf",
        "items",
        "crlf.csv",
        lines(ITEM_HEAD, "G1,Mug,1", "B1", "G2,Cup,2", end="\r\n"),
        3,
        1,
    ),
    Case("csv byte-order mark", "items", "bom.csv", "\ufeff" + lines(ITEM_HEAD, *GOOD_ITEMS), 3, 0),
    Case(
        "csv markup-only title",
        "items",
        "markup.csv",
        lines(ITEM_HEAD, "G1,<b>Mug</b> &amp; lid,1", "B1,<br/>,1", "G2,5 < 10 > 2,2"),
        3,
        1,
    ),
    Case(
        "csv semicolons",
        "items",
        "semi.csv",
        lines("item_id;title;price", "G1;Mug, red;1", "B1;;1", "G2;Cup;2"),
        3,
        1,
    ),
    Case(
        "csv whitespace-only id",
        "items",
        "blank_id.csv",
        lines(ITEM_HEAD, " G1 ,Mug,1", "   ,Cup,2"),
        2,
        1,
    ),
    Case(
        "csv duplicate header",
        "items",
        "dup_header.csv",
        lines("item_id,title,color,color", "G1,Mug,red,blue"),
        1,
        0,
    ),
    Case(
        "csv latin-1",
        "items",
        "latin1.csv",
        lines(ITEM_HEAD, "G1,Café,1", "B1,Crème,-3").encode("latin-1"),
        2,
        1,
        encoding="latin-1",
    ),
    Case(
        "csv cp1252 with an undefined byte",
        "items",
        "cp1252.csv",
        lines(ITEM_HEAD, "G1,€ mug,1").encode("cp1252") + b"B1,bad \x81 byte,1\n",
        2,
        1,
        encoding="cp1252",
    ),
    Case(
        "csv utf-16",
        "items",
        "utf16.csv",
        lines(ITEM_HEAD, "G1,Café,1", "B1", "G2,Thé,2").encode("utf-16"),
        3,
        1,
        encoding="utf-16",
    ),
    Case(
        "tsv",
        "items",
        "items.tsv",
        lines("item_id\ttitle\tprice", "G1\tMug, red\t1", "B1\tCup\tx"),
        2,
        1,
    ),
    Case(
        "tsv quoted tab",
        "items",
        "quoted.tsv",
        lines("item_id\ttitle\tprice", 'G1\t"Mug\twith tab"\t1', "B1\tno price\t\tx"),
        2,
        1,
    ),
    Case(
        "csv.gz with a multi-line field",
        "items",
        "items.csv.gz",
        lines(ITEM_HEAD, 'G1,"two\nlines",1', "B1", "G2,Cup,2"),
        3,
        1,
    ),
    Case("csv.gz plain", "items", "plain.csv.gz", lines(ITEM_HEAD, *GOOD_ITEMS, "B1,,1"), 4, 1),
    Case(
        "csv.bz2",
        "items",
        "items.csv.bz2",
        bz2_file(lines(ITEM_HEAD, *GOOD_ITEMS, "B1,a,b,c")),
        4,
        1,
    ),
    # --- items: Parquet -----------------------------------------------------------------------
    Case(
        "parquet float and NaN ids",
        "items",
        "float_ids.parquet",
        parquet(
            pa.table(
                {
                    "item_id": pa.array([1.0, 2.0, float("nan"), 4.0]),
                    "title": ["G one", "G two", "B nan", ""],
                }
            )
        ),
        4,
        2,
        good=("title", "G"),
    ),
    Case(
        "parquet list categories and bad price",
        "items",
        "lists.parquet",
        parquet(
            [
                {"item_id": "G1", "title": "Mug", "categories": ["Home", "Kitchen"], "price": "1"},
                {"item_id": "B1", "title": "Cup", "categories": ["Home"], "price": "abc"},
            ]
        ),
        2,
        1,
    ),
    Case(
        "parquet duplicates and structs",
        "items",
        "structs.parquet",
        parquet(
            [
                {"item_id": "G1", "title": "Mug", "dims": {"w": 1, "h": 2}},
                {"item_id": "G1", "title": "Mug again", "dims": {"w": 1, "h": 3}},
                {"item_id": "G2", "title": "Cup", "dims": None},
            ]
        ),
        3,
        1,
    ),
    # --- items: JSON lines --------------------------------------------------------------------
    Case(
        "jsonl broken lines",
        "items",
        "items.jsonl",
        lines(
            json.dumps({"item_id": "G1", "title": "Mug"}),
            '{"item_id": "B1", "title": ',
            "[1, 2]",
            json.dumps({"item_id": "B2", "title": ""}),
            json.dumps({"item_id": "G2", "title": "Cup", "tags": ["x"]}),
        ).encode()
        + b'{"item_id": "B3", "title": "\xff"}\n',
        6,
        4,
    ),
    Case(
        "jsonl NaN id",
        "items",
        "nan.jsonl",
        jsonl({"item_id": "G1", "title": "a"}, '{"item_id": NaN, "title": "b"}'),
        2,
        1,
    ),
    Case(
        "jsonl float ids and nested categories",
        "items",
        "nested.jsonl",
        jsonl(
            {"item_id": "G1", "title": "a", "categories": [["A", "B"], ["C"]]},
            {"item_id": 1.5, "title": ""},
        ),
        2,
        1,
    ),
    Case(
        "jsonl.gz", "items", "items.jsonl.gz", jsonl({"item_id": "G1", "title": "a"}, "{oops"), 2, 1
    ),
    Case(
        "jsonl 3 MB line",
        "items",
        "long.jsonl",
        jsonl({"item_id": "G1", "title": "a"}, {"item_id": "B1", "title": LONG}),
        2,
        1,
    ),
    Case(
        "ndjson blank lines",
        "items",
        "items.ndjson",
        "\n"
        + jsonl({"item_id": "G1", "title": "a"})
        + "\n\n"
        + jsonl({"item_id": "B1", "title": "b", "price": "x"}),
        2,
        1,
    ),
    Case(
        "json lines named .json",
        "items",
        "items.json",
        jsonl({"item_id": "G1", "title": "a"}, {"item_id": "G1", "title": "b"}),
        2,
        1,
    ),
    # --- items: Amazon ------------------------------------------------------------------------
    Case(
        "amazon items",
        "items",
        "Shop.item.json",
        json.dumps(
            {"G1": {"title": "Mug"}, "B1": 5, "G2": {"title": "Cup", "brand": "x"}}, indent=2
        ),
        3,
        1,
    ),
    Case(
        "amazon items empty title",
        "items",
        "Empty.item.json",
        json.dumps({"G1": {"title": "a"}, "B1": {"title": ""}}),
        2,
        1,
    ),
    Case(
        "amazon items gz",
        "items",
        "Gz.item.json.gz",
        json.dumps({"G1": {"title": "a"}, "B1": ["list"]}),
        2,
        1,
    ),
    # --- interactions -------------------------------------------------------------------------
    Case(
        "events csv value problems",
        "interactions",
        "events.csv",
        lines(
            EVENT_HEAD,
            *GOOD_EVENTS,
            "b1,NOPE,view,2025-01-01",
            ",G1,view,2025-01-01",
            "b2,G1,view,yesterday",
        ),
        6,
        3,
    ),
    Case(
        "events csv implausible timestamps",
        "interactions",
        "times.csv",
        lines(
            EVENT_HEAD,
            *GOOD_EVENTS,
            "b1,G1,view,NaN",
            "b2,G1,view,1e300",
            "b3,G1,view,1e22",
            "b4,G1,view,-1",
            "b5,G1,view,3000-01-01",
            "b6,G1,view,1735689600000000",
            "b7,G1,view,inf",
        ),
        10,
        7,
    ),
    Case(
        "events csv double-fired",
        "interactions",
        "double.csv",
        lines(EVENT_HEAD, *GOOD_EVENTS, GOOD_EVENTS[0], "b1,G1,view,"),
        5,
        2,
    ),
    Case(
        "events csv extra columns",
        "interactions",
        "extra.csv",
        lines("user_id,item_id,session,device", "g1,G1,s1,phone", "b1,G99,s2,pc"),
        2,
        1,
    ),
    Case(
        "events csv structural",
        "interactions",
        "struct.csv",
        lines(EVENT_HEAD, *GOOD_EVENTS, "b1,G1", "b2,G1,view,2025-01-01,x,y"),
        5,
        2,
    ),
    Case(
        "events csv broken quote",
        "interactions",
        "quote.csv",
        lines(EVENT_HEAD, GOOD_EVENTS[0], 'b1,"G1,view,2025-01-01', GOOD_EVENTS[1]),
        3,
        1,
    ),
    Case(
        "events csv upper-case events",
        "interactions",
        "upper.csv",
        lines(EVENT_HEAD, "g1,G1,VIEW,2025-01-01", "g1,G2, Cart ,2025-01-02"),
        2,
        0,
    ),
    Case(
        "events tsv",
        "interactions",
        "events.tsv",
        lines("user_id\titem_id", "g1\tG1", "b1\tG42"),
        2,
        1,
    ),
    Case(
        "events csv.gz",
        "interactions",
        "events.csv.gz",
        lines(EVENT_HEAD, *GOOD_EVENTS, "b1,G1,view,13th of May"),
        4,
        1,
    ),
    Case(
        "events parquet float timestamps",
        "interactions",
        "float_ts.parquet",
        parquet(
            pa.table(
                {
                    "user_id": ["g1", "b1", "b2", "g2"],
                    "item_id": ["G1", "G1", "G1", "G2"],
                    "timestamp": pa.array([1.7e9, float("nan"), 1e300, 1.7e12]),
                }
            )
        ),
        4,
        2,
    ),
    Case(
        "events parquet datetimes",
        "interactions",
        "dt.parquet",
        lambda p: pd.DataFrame(
            {
                "user_id": ["g1", "b1"],
                "item_id": ["G1", "G77"],
                "timestamp": pd.to_datetime(["2025-01-01", "2025-01-02"]),
            }
        ).to_parquet(p),
        2,
        1,
    ),
    Case(
        "events parquet float ids",
        "interactions",
        "float_users.parquet",
        parquet(pa.table({"user_id": pa.array([1.0, float("nan")]), "item_id": ["G1", "G2"]})),
        2,
        1,
        good=("item_id", "G"),
    ),
    Case(
        "events jsonl",
        "interactions",
        "events.jsonl",
        jsonl({"user_id": "g1", "item_id": "G1"}, "{bad", {"user_id": "b1", "item_id": None}),
        3,
        2,
    ),
    Case(
        "events jsonl.gz",
        "interactions",
        "events.jsonl.gz",
        jsonl(
            {"user_id": "g1", "item_id": "G1", "timestamp": 1735689600},
            {"user_id": "b1", "item_id": "G1", "timestamp": -5},
        ),
        2,
        1,
    ),
    Case(
        "amazon interactions",
        "interactions",
        "Shop.inter.json",
        json.dumps({"g1": ["G1", "G2"], "b1": "G1", "g2": ["G3", "G404"]}),
        5,
        2,
    ),
    Case(
        "amazon interactions gz",
        "interactions",
        "Gz.inter.json.gz",
        json.dumps({"g1": ["G1"], "g2": ["B"]}),
        2,
        1,
    ),
    # --- queries ------------------------------------------------------------------------------
    Case(
        "queries csv",
        "queries",
        "queries.csv",
        lines(QUERY_HEAD, *GOOD_QUERIES, ",G1,u1", "bad item,G404,u2"),
        5,
        2,
    ),
    Case(
        "queries csv markup",
        "queries",
        "markup_q.csv",
        lines(QUERY_HEAD, "good <b>mug</b>,G1,", "<p></p>,G1,"),
        2,
        1,
    ),
    Case(
        "queries csv.gz",
        "queries",
        "queries.csv.gz",
        lines(QUERY_HEAD, *GOOD_QUERIES, "short"),
        4,
        1,
    ),
    Case(
        "queries tsv timestamps",
        "queries",
        "queries.tsv",
        lines("query\titem_id\ttimestamp", "good mug\tG1\t2025-01-01", "bad\tG1\t1e22"),
        2,
        1,
    ),
    Case(
        "queries jsonl",
        "queries",
        "queries.jsonl",
        jsonl({"query": "good mug", "item_id": "G1"}, "nope", {"query": "", "item_id": "G1"}),
        3,
        2,
    ),
    Case(
        "queries jsonl.gz",
        "queries",
        "queries.jsonl.gz",
        jsonl({"query": "good mug", "item_id": "G1", "session": "s"}),
        1,
        0,
    ),
    Case(
        "queries parquet",
        "queries",
        "queries.parquet",
        parquet(pa.table({"query": ["good mug", "bad no item"], "item_id": ["G1", None]})),
        2,
        1,
    ),
]

#: Files that cannot be used at all: one error naming the file (and what is wrong), no traceback.
REFUSED = [
    ("empty.csv", "", "the file is empty"),
    ("blanks_only.csv", "\n\n\n", "the file is empty"),
    ("noid.csv", "sku,title\n1,a\n", "missing required column 'item_id'"),
    ("Title.csv", "item_id,Title\n1,a\n", "--map items.title=Title"),
    ("catalog.json", json.dumps({"0": {"title": "a"}, "1": {"title": "b"}}), "the Amazon layout"),
    ("pretty.json", json.dumps({"0": {"title": "a"}}, indent=2), "the Amazon layout"),
    ("array.json", json.dumps([{"item_id": "1", "title": "a"}]), "one JSON array"),
    ("broken.jsonl", "not json\n{\n", "none of its 2 records could be read"),
    ("notgzip.csv.gz", "item_id,title\n1,a\n", "cannot decompress"),
    ("items.csv.zst", "item_id,title\n1,a\n", "zstd-compressed"),
    ("items.xlsx", "whatever", "cannot tell the format"),
    ("bad.parquet", "not parquet at all", "cannot read as Parquet"),
]


def run_case(case: Case, folder: Path) -> tuple[Path, IngestSpec]:
    path = case.write(folder)
    if case.kind == "items":
        return path, IngestSpec(items=path, encoding=case.encoding)
    catalog = folder / "catalog.csv"
    catalog.write_text(CATALOG)
    return path, IngestSpec(items=catalog, **{case.kind: path}, encoding=case.encoding)


def check_store(case: Case, path: Path, run: Path) -> None:
    """The run folder after a case: counts, rejects.csv rows, and only good records kept."""
    store = DatasetStore(run)
    rejects = pd.read_csv(store.rejects_path, dtype=str, keep_default_na=False)
    rejects = rejects[rejects["table"] == case.kind]
    assert (rejects["file"] == str(path)).all()
    assert all(LOCATION.match(loc) for loc in rejects["location"]), rejects["location"].tolist()
    assert (rejects["column"] != "").all() and (rejects["reason"] != "").all()
    assert rejects["location"].nunique() == case.bad, rejects[["location", "reason"]].to_string()
    column, prefix = case.good or GOOD_PREFIX[case.kind]
    table = case.kind
    kept = store.read(table)[column].astype(str) if store.has(table) else pd.Series([], dtype=str)
    assert kept.str.startswith(prefix).all(), kept.tolist()
    assert len(kept) == case.total - case.bad


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_through_the_api(case: Case, tmp_path: Path) -> None:
    path, spec = run_case(case, tmp_path)
    report = ingest(spec, tmp_path / "run")
    t = report.table(case.kind)
    assert t.records == case.total
    assert t.kept + t.rejected + t.duplicates == t.records  # nothing vanishes
    assert t.rejected + t.duplicates == case.bad
    check_store(case, path, tmp_path / "run")


def test_the_corpus_is_large_and_covers_every_format_and_kind() -> None:
    files = [c.filename for c in CASES] + [name for name, _, _ in REFUSED]
    assert len(set(files)) == len(files) >= 60
    suffixes = {
        ".csv",
        ".tsv",
        ".csv.gz",
        ".parquet",
        ".jsonl",
        ".jsonl.gz",
        ".item.json",
        ".inter.json",
    }
    assert all(any(f.endswith(s) for f in files) for s in suffixes)
    assert {c.kind for c in CASES} == {"items", "interactions", "queries"}
    assert all(
        any(c.kind == k and c.bad for c in CASES) for k in ("items", "interactions", "queries")
    )


@pytest.mark.parametrize(("name", "text", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_unusable_files_stop_with_one_error_naming_them(name, text, message, tmp_path) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError) as err:
        ingest(IngestSpec(items=path), tmp_path / "run")
    assert str(err.value).startswith(str(path)) and message in str(err.value)


CLI_CASES = [
    c
    for c in CASES
    if c.name
    in {
        "csv broken quote mid-file",
        "csv.gz with a multi-line field",
        "jsonl broken lines",
        "events csv implausible timestamps",
        "queries parquet",
        "amazon interactions",
    }
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_corpus_case_through_the_cli(case: Case, tmp_path: Path) -> None:
    path, spec = run_case(case, tmp_path)
    args = ["ingest", "--out", str(tmp_path / "run"), "--encoding", case.encoding]
    for kind in ("items", "interactions", "queries"):
        if (value := getattr(spec, kind)) is not None:
            args += [f"--{kind}", str(value)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    if case.bad:
        assert f"{case.bad:,} records not kept" in result.output
    check_store(case, path, tmp_path / "run")


@pytest.mark.parametrize(("name", "text", "message"), REFUSED[:4], ids=[r[0] for r in REFUSED[:4]])
def test_unusable_files_through_the_cli(name, text, message, tmp_path) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = CliRunner().invoke(app, ["ingest", "--items", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output


def test_a_truncated_gzip_keeps_every_complete_line(tmp_path: Path) -> None:
    text = lines(ITEM_HEAD, *[f"G{i},Item {i},{i}" for i in range(3000)])
    path = tmp_path / "cut.csv.gz"
    truncated_gzip(text)(path)
    readable = zlib.decompressobj(wbits=31).decompress(path.read_bytes())
    complete = readable.count(b"\n") - 1  # minus the header
    report = ingest(IngestSpec(items=path), tmp_path / "run")
    t = report.table("items")
    assert (t.records, t.kept, t.rejected) == (complete + 1, complete, 1)
    rejects = pd.read_csv(DatasetStore(tmp_path / "run").rejects_path)
    assert rejects["location"].tolist() == [f"line {complete + 2}"]
    assert "damaged or truncated" in rejects["reason"][0]


def test_ids_and_attributes_survive_the_corpus(tmp_path: Path) -> None:
    """Spot checks of what good records become: trimmed ids, paths, integers, attributes."""
    by_name = {c.name: c for c in CASES}
    for name, table, column, expected in [
        ("parquet float and NaN ids", "items", "item_id", ["1", "2"]),
        ("parquet list categories and bad price", "items", "categories", ["Home > Kitchen"]),
        ("jsonl float ids and nested categories", "items", "categories", ["A > B"]),
        ("csv whitespace-only id", "items", "item_id", ["G1"]),
        ("csv markup-only title", "items", "title", ["Mug & lid", "5 < 10 > 2"]),
        ("csv duplicate header", "items", "color_2", ["blue"]),
        ("events csv extra columns", "interactions", "device", ["phone"]),
        ("events csv upper-case events", "interactions", "event", ["view", "cart"]),
    ]:
        folder = tmp_path / re.sub(r"\W+", "_", name)
        folder.mkdir()
        _, spec = run_case(by_name[name], folder)
        ingest(spec, folder / "run")
        values = DatasetStore(folder / "run").read(table)[column].tolist()
        assert values == expected, name
