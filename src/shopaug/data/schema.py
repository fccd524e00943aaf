"""The three record kinds a shop brings (items, interactions, query logs), described as data.

Loaders, validation and the store all read these specs instead of hard-coding column lists, so a new
optional column is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["string", "float", "timestamp"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a record kind.

    ``nonempty`` rejects blank strings as well as missing values; ``references`` names the record
    kind whose key this column must match (an interaction's ``item_id`` must be a known item).
    """

    name: str
    type: ColumnType = "string"
    required: bool = False
    nonempty: bool = False
    references: str | None = None
    default: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """A record kind: its columns, and the key that must be unique (if any).

    Columns beyond the spec's are kept as text attributes (an item's colour, an event's session or
    device), so nothing a shop sends disappears on the way in.
    """

    name: str
    columns: tuple[ColumnSpec, ...]
    key: str | None = None
    extra_columns_allowed: bool = True
    text_columns: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_names(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


ITEMS = TableSpec(
    name="items",
    key="item_id",
    columns=(
        ColumnSpec("item_id", required=True, nonempty=True),
        ColumnSpec("title", required=True, nonempty=True),
        ColumnSpec("description", default=""),
        ColumnSpec("brand", default=""),
        ColumnSpec("categories", default=""),
        ColumnSpec("price", type="float"),
    ),
    text_columns=("title", "description", "brand", "categories"),
)

INTERACTIONS = TableSpec(
    name="interactions",
    columns=(
        ColumnSpec("user_id", required=True, nonempty=True),
        ColumnSpec("item_id", required=True, nonempty=True, references="items"),
        ColumnSpec("event", default="interaction"),
        ColumnSpec("timestamp", type="timestamp"),
    ),
)

QUERIES = TableSpec(
    name="queries",
    columns=(
        ColumnSpec("query", required=True, nonempty=True),
        ColumnSpec("item_id", required=True, nonempty=True, references="items"),
        ColumnSpec("user_id"),
        ColumnSpec("event", default="click"),
        ColumnSpec("timestamp", type="timestamp"),
    ),
    text_columns=("query",),
)

TABLES: dict[str, TableSpec] = {t.name: t for t in (ITEMS, INTERACTIONS, QUERIES)}

#: Separator of the category path in ``items.categories`` ("Electronics > Audio > Headphones").
CATEGORY_SEPARATORS = (" > ", ">", "|", ",")

#: Events in increasing order of intent; unknown event names are kept as they are.
KNOWN_EVENTS = ("view", "click", "cart", "purchase", "review", "interaction")


def split_categories(path: str) -> list[str]:
    """Split a category path on the first separator it contains (Amazon uses commas)."""
    if not path:
        return []
    for sep in CATEGORY_SEPARATORS:
        if sep in path:
            return [p.strip() for p in path.split(sep) if p.strip()]
    return [path.strip()]
