"""Fixtures of the serving tests: a tiny shop trained into a service run folder, the app in this
process, and a live service on a free loopback port (uvicorn in a subprocess, as ``shopaug
serve`` runs it; with several workers, ``shopaug serve`` itself)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shopaug.data import IngestSpec, ingest
from shopaug.data.demo_shop import DemoShopConfig, generate_demo_shop, write_demo_shop
from shopaug.serve.bundle import TrainConfig, train_bundle

API_KEY = "test-key"
TINY_SHOP = DemoShopConfig(n_items=60, n_users=40, seed=3)


@pytest.fixture(scope="session")
def shop_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ingested 60-item, 40-user demo shop."""
    root = tmp_path_factory.mktemp("shop")
    files = write_demo_shop(generate_demo_shop(TINY_SHOP), root / "source")
    ingest(IngestSpec(items=files["items"], interactions=files["interactions"]), root / "run")
    return root / "run"


@pytest.fixture(scope="session")
def markov_service_dir(shop_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Version 1 of a service run folder with a Markov chain and a search index (read-only:
    tests that write copy it with ``service_dir``)."""
    out = tmp_path_factory.mktemp("svc") / "markov"
    train_bundle(TrainConfig(data=shop_run, model="markov"), out)
    return out


def copy_service(source: Path, out: Path) -> Path:
    """A private copy of a service folder (its own log), with fast model-swap polling and
    small limits the tests can exceed."""
    shutil.copytree(source, out)
    settings = '{"reload_seconds": 0.2, "max_k": 50, "max_events": 100, "warm_search": false}'
    (out / "serve.json").write_text(settings)
    return out


@pytest.fixture
def service_dir(markov_service_dir: Path, tmp_path: Path) -> Path:
    return copy_service(markov_service_dir, tmp_path / "service")


@pytest.fixture
def app(service_dir: Path) -> Iterator[FastAPI]:
    """The app over a private service folder, in this process (no lifespan: no reload thread).
    ``create_app`` limits torch to one thread, as a worker should; this process gets its own
    setting back afterwards."""
    import torch

    from shopaug.serve.app import create_app
    from shopaug.serve.schemas import ServeSettings

    threads = torch.get_num_threads()
    settings = ServeSettings(api_key=API_KEY, max_k=50, max_events=100, warm_search=False)
    try:
        yield create_app(service_dir, settings)
    finally:
        torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveService:
    """A service subprocess serving ``run_dir`` (in its own process group); ``client`` talks to
    it. One worker runs uvicorn as ``shopaug serve`` does; several run ``shopaug serve`` itself
    (a master and its worker processes)."""

    run_dir: Path
    port: int
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.workers > 1:
            serve = [str(self.run_dir), "--port", str(self.port), "--workers", str(self.workers)]
            cli = "from shopaug.cli import app; app()"
            return [sys.executable, "-c", cli, "serve", *serve, "--log-level", "warning"]
        uvicorn = ["uvicorn", "shopaug.serve.app:app_from_env", "--factory", "--host", "127.0.0.1"]
        return [sys.executable, "-m", *uvicorn, "--port", str(self.port), "--log-level", "warning"]

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, "SHOPAUG_RUN_DIR": str(self.run_dir), "SHOPAUG_API_KEY": API_KEY}
        env["HF_HUB_OFFLINE"] = "1"
        self.process = subprocess.Popen(
            self.command(),
            env={**env, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError(f"service on port {self.port} did not start in {timeout}s")

    def kill(self) -> None:
        """SIGKILL of the whole service (master and workers): no shutdown handler runs, as in a
        crash of the machine or of a supervisor's process group."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """The worker processes of a several-worker service (children of the master that run
        multiprocessing's spawn entry point)."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(p) for p in children.read_text().split()]
        return [p for p in pids if b"spawn_main" in _cmdline(p)]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


@pytest.fixture
def live(service_dir: Path) -> Iterator[LiveService]:
    service = LiveService(service_dir, free_port())
    service.start()
    yield service
    service.stop()
