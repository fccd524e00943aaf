"""A small catalog written in code, and one text encoder shared by the search tests."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

ROWS = [
    ("A1", "Tianofa Chew-Proof Dog Collar, Large", "Tianofa", "Pets > Dogs > Dog Collars", 19.99),
    ("A2", "Vomi Cozy Dog Bed, Grey", "Vomi", "Pets > Dogs > Dog Beds", 49.0),
    ("A3", "Vomi Cat Tree, Medium", "Vomi", "Pets > Cats > Cat Trees", 89.5),
    ("A4", "Lura Hydrating Face Serum", "Lura", "Beauty > Skin Care > Serums", 24.0),
    ("A5", "Kael Orbital Sander 240W", "Kael", "Tools > Power Tools > Sanders", 59.0),
    ("A6", "Navore Portable Speaker, Silver", "Navore", "Electronics > Audio > Speakers", 86.99),
    ("A7", "Tianofa Reflective Cat Collar", "Tianofa", "Pets > Cats > Cat Collars", 9.5),
    ("A8", "Lura Mineral Sunscreen SPF 50", "Lura", "Beauty > Skin Care > Sunscreen", None),
]


def catalog_frame() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["item_id", "title", "brand", "categories", "price"])
    frame["description"] = [
        f"A {t.split(',')[0].lower()} that shoppers love." for t in frame["title"]
    ]
    return frame


@pytest.fixture(scope="session")
def make_catalog() -> Callable[[], pd.DataFrame]:
    """A fresh copy of the catalog per call, for fixtures of any scope."""
    return catalog_frame


@pytest.fixture
def catalog() -> pd.DataFrame:
    return catalog_frame()


@pytest.fixture(scope="session")
def encoder(tmp_path_factory: pytest.TempPathFactory):
    """The packaged MiniLM with a private cache (one model load for the whole session)."""
    import torch

    from shopaug.encode import TextEncoder

    torch.set_num_threads(1)
    return TextEncoder(cache_dir=tmp_path_factory.mktemp("embeddings"))
