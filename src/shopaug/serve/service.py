"""One worker's served state, and its swap to a newer model version.

:class:`Service` owns the served :class:`~shopaug.serve.state.ShopState` and replaces it when the
run folder's ``current`` pointer names a new version: the new state is built in a background
thread (bundle loaded, log replayed) while the old one keeps answering, then one reference
assignment swaps them, so no request is dropped or sees half a model.
"""

import logging
import threading
import time
from pathlib import Path
from typing import Any

import anyio

from shopaug.serve.bundle import Bundle, RunLayout
from shopaug.serve.feedback import FeedbackLog
from shopaug.serve.metrics import MODEL_VERSION
from shopaug.serve.schemas import ServeSettings
from shopaug.serve.state import ShopState

logger = logging.getLogger("shopaug.serve")


class Service:
    """The current state of one worker, and the swap to a newer model version."""

    def __init__(self, run_dir: Path, settings: ServeSettings) -> None:
        self.layout = RunLayout(run_dir)
        self.settings = settings
        self.log = FeedbackLog(self.layout.log_path)
        self.log.repair()
        self.state = self._load(self.layout.current())
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._encoding: anyio.CapacityLimiter | None = None
        MODEL_VERSION.set(self.state.version)

    @property
    def encoding(self) -> anyio.CapacityLimiter:
        """One item batch encoded at a time per worker: a worker's share of the CPU, and a
        queue instead of a pile-up of threads (created on the event loop, at first use)."""
        if self._encoding is None:
            self._encoding = anyio.CapacityLimiter(1)
        return self._encoding

    def _load(self, version: int) -> ShopState:
        bundle = Bundle.load(self.layout.version_dir(version))

        def encoder() -> Any:
            """The search engine's encoder when there is one: one model in memory, and one cache
            of item vectors that every worker reads (the search engine encodes the same items)."""
            if bundle.search is not None:
                return bundle.search.encoder
            from shopaug.encode.text_encoder import TextEncoder

            return TextEncoder(model=bundle.manifest.encoder)

        state = ShopState(bundle, self.log, encoder)
        if state.search is not None and self.settings.warm_search:
            # Both encoders: the query path (ONNX graph exported or loaded here, not on the
            # first /search) and the item path that POST /items uses.
            state.search.query_encoder.encode("warm up the query encoder")
            state.search.encoder.encode(["warm up the item encoder"])
        return state

    def reload(self) -> bool:
        """Serve the version ``current`` points to, if it is not the served one."""
        with self._reload_lock:
            version = self.layout.current()
            if version == self.state.version:
                return False
            started = time.perf_counter()
            fresh = self._load(version)
            self.state = fresh  # one reference assignment: requests in flight keep the old one
            MODEL_VERSION.set(version)
            logger.info("now serving version %d (%.1fs)", version, time.perf_counter() - started)
            return True

    def watch(self) -> None:
        """Poll the pointer until :meth:`stop`; a failed load keeps the served version."""
        while not self._stop.wait(self.settings.reload_seconds):
            try:
                self.reload()
            except Exception:
                logger.exception("could not load the new model version; still serving the old")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.watch, name="shopaug-reload", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
