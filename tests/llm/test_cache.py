"""The response cache: hits are free and marked, failures are not stored, and a run killed with
SIGKILL and started again repeats no call that had finished."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel

from shopaug.llm import Completion, FakeGenerator, GenerationParams, Message, ResponseCache

ASK = [Message(role="user", content="three queries for a 250 ml beaker")]


class Answer(BaseModel):
    answer: str


def test_second_call_is_a_hit(tmp_path: Path) -> None:
    generator = FakeGenerator(cache_dir=tmp_path)
    first = generator.complete(ASK, prompt="item_queries@v1")
    again = FakeGenerator(cache_dir=tmp_path).complete(ASK, prompt="item_queries@v1")
    assert not first.cached and again.cached
    assert again.model_dump(exclude={"cached"}) == first.model_dump(exclude={"cached"})
    assert generator.calls == 1
    other_version = FakeGenerator(cache_dir=tmp_path)
    assert not other_version.complete(ASK, prompt="item_queries@v2").cached


def test_rejected_outputs_are_not_cached(tmp_path: Path) -> None:
    flaky = FakeGenerator(cache_dir=tmp_path, malformed_times=1)
    assert flaky.complete_json(ASK, Answer, retries=0).kind == "malformed"
    rerun = FakeGenerator(cache_dir=tmp_path)
    result = rerun.complete_json(ASK, Answer, retries=0)
    assert result.ok and not result.cached and rerun.calls == 1
    assert FakeGenerator(cache_dir=tmp_path).complete_json(ASK, Answer).cached


def test_rows_survive_new_connections(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("k", Completion(text="t", prompt_tokens=3, completion_tokens=1, backend="fake"))
    stored = ResponseCache(tmp_path).get("k")
    assert stored is not None and stored.cached and stored.text == "t"
    assert stored.prompt_tokens == 3 and stored.key == "k"
    assert ResponseCache(tmp_path).get("missing") is None
    with sqlite3.connect(tmp_path / "responses.sqlite") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from shopaug.llm import FakeGenerator, GenerationRequest, Message

    cache_dir, log, out = map(Path, sys.argv[1:4])

    def respond(messages, params):
        with log.open("a") as handle:
            handle.write(messages[-1].content + "\\n")
        time.sleep(0.15)
        return "answer to " + messages[-1].content

    generator = FakeGenerator(respond=respond, cache_dir=cache_dir)
    requests = [
        GenerationRequest(messages=(Message(role="user", content=f"item {i}"),))
        for i in range(8)
    ]
    out.write_text("\\n".join(r.text for r in generator.complete_many(requests)))
    """
)


def test_killed_run_resumes_without_repeating_finished_calls(tmp_path: Path) -> None:
    script, log, out = tmp_path / "run.py", tmp_path / "calls.log", tmp_path / "out.txt"
    script.write_text(RUN)
    command = [sys.executable, str(script), str(tmp_path / "cache"), str(log), str(out)]
    first = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while not (log.exists() and len(log.read_text().splitlines()) >= 3):
        assert first.poll() is None and time.monotonic() < deadline, "run ended too early"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    calls_before = log.read_text().splitlines()
    with sqlite3.connect(tmp_path / "cache" / "responses.sqlite") as con:
        finished = {
            text.removeprefix("answer to ") for (text,) in con.execute("SELECT text FROM responses")
        }
    assert finished and not out.exists()

    subprocess.run(command, check=True, timeout=60)
    calls_after = log.read_text().splitlines()[len(calls_before) :]
    items = [f"item {i}" for i in range(8)]
    assert calls_after == [item for item in items if item not in finished]
    assert out.read_text().splitlines() == [f"answer to {item}" for item in items]


def test_token_probabilities_are_cached_and_old_caches_gain_the_column(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    with sqlite3.connect(old / "responses.sqlite") as con:  # a cache of an earlier release
        con.execute(
            "CREATE TABLE responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
            "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
            "latency_s REAL NOT NULL, backend TEXT NOT NULL, model TEXT NOT NULL, "
            "prompt TEXT, finish_reason TEXT, refusal TEXT, created REAL NOT NULL)"
        )
        con.execute(
            "INSERT INTO responses VALUES ('k0', 'old text', 1, 1, 0.1, 'fake', 'm', NULL, "
            "'stop', NULL, 0)"
        )
    cache = ResponseCache(old)
    assert cache.get("k0").text == "old text" and cache.get("k0").logprobs is None
    params = GenerationParams(top_logprobs=3)
    first = FakeGenerator(cache_dir=old).complete(ASK, params)
    again = FakeGenerator(cache_dir=old).complete(ASK, params)
    assert again.cached and again.logprobs == first.logprobs
    assert "".join(t.token for t in again.logprobs) == again.text
    assert FakeGenerator(cache_dir=old).complete(ASK).logprobs is None


def test_many_threads_open_one_new_cache_without_a_lock_error(tmp_path: Path) -> None:
    """Opening a new database from several threads at once made SQLite refuse the WAL pragma
    ("database is locked", seen in CI); every opener must succeed and see the same table."""
    for attempt in range(5):
        folder = tmp_path / f"fresh{attempt}"
        with ThreadPoolExecutor(max_workers=8) as pool:
            caches = list(pool.map(ResponseCache, [folder] * 16))
        assert all(len(cache) == 0 for cache in caches)


def test_concurrent_requests_share_one_cache_object(tmp_path: Path) -> None:
    generator = FakeGenerator(cache_dir=tmp_path / "new")
    with ThreadPoolExecutor(max_workers=8) as pool:
        caches = list(pool.map(lambda _: generator.cache, range(32)))
    assert len({id(cache) for cache in caches}) == 1
