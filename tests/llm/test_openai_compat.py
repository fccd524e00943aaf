"""The OpenAI-compatible backend, over real sockets on loopback.

A scripted stdlib HTTP server plays the failures hosted endpoints produce (garbage bodies, 500,
429 with Retry-After, bodies without choices) and records what the client sent; llama-cpp-python's
own OpenAI-compatible server, started here with the packaged SmolLM2 model, checks a real
completion, a schema-constrained JSON completion, token log-probabilities, four requests in
flight at once, and a timeout.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("httpx")

from shopaug.llm import GenerationParams, GenerationRequest, Message, OpenAIGenerator, load_prompt
from shopaug.llm.openai_compat import retry_after_seconds

ASK = [Message(role="user", content="Name one piece of lab glassware.")]


def ok_body(text: str) -> bytes:
    body = {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2},
    }
    return json.dumps(body).encode()


class Scripted(ThreadingHTTPServer):
    """Answers POSTs from ``replies`` in order (the last one repeats) and records each request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replies: list[tuple[int, bytes, dict[str, str]]] = []
        self.requests: list[tuple[dict[str, str], dict]] = []
        self.delay_s = 0.0
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_reply(self, headers: dict[str, str], body: dict) -> tuple[int, bytes, dict]:
        with self.lock:
            self.requests.append((headers, body))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        time.sleep(self.delay_s)
        with self.lock:
            self.in_flight -= 1
        return reply


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length))
        status, payload, headers = self.server.next_reply(dict(self.headers), body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client(url: str, **params) -> OpenAIGenerator:
    return OpenAIGenerator(model="m", base_url=url, use_cache=False, backoff_s=0.01, **params)


def test_garbage_and_500_are_retried_until_success(scripted: Scripted) -> None:
    scripted.replies = [
        (200, b"<html>proxy error</html>", {}),
        (500, b'{"error": "overloaded"}', {}),
        (200, ok_body("beaker"), {}),
    ]
    completion = client(scripted.url).complete(ASK)
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == (
        "beaker",
        7,
        2,
    )
    assert len(scripted.requests) == 3


def test_malformed_bodies_end_as_recorded_failures(scripted: Scripted) -> None:
    scripted.replies = [(200, b'{"id": "x", "object": "chat.completion"}', {})]
    failure = client(scripted.url, max_retries=2).try_complete(ASK)
    assert (failure.ok, failure.kind, failure.attempts) == (False, "bad_response", 3)
    assert "no choices[0].message" in failure.reason
    scripted.replies = [(200, b"not json at all", {})]
    failure = client(scripted.url, max_retries=0).try_complete(ASK)
    assert failure.kind == "bad_response" and "not JSON" in failure.reason


def test_client_errors_are_not_retried(scripted: Scripted) -> None:
    scripted.replies = [(400, b'{"error": {"message": "bad model"}}', {})]
    failure = client(scripted.url).try_complete(ASK)
    assert (failure.kind, failure.attempts) == ("http", 1)
    assert "HTTP 400" in failure.reason and "bad model" in failure.reason
    assert len(scripted.requests) == 1


def test_retry_after_is_honoured(scripted: Scripted) -> None:
    scripted.replies = [(429, b"slow down", {"Retry-After": "0.4"}), (200, ok_body("flask"), {})]
    started = time.perf_counter()
    assert client(scripted.url).complete(ASK).text == "flask"
    assert time.perf_counter() - started >= 0.4
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_request_carries_params_schema_and_key(scripted: Scripted, monkeypatch) -> None:
    monkeypatch.setenv("SHOP_LLM_KEY", "sk-test")
    scripted.replies = [(200, ok_body('{"answer": "yes", "reason": "fits"}'), {})]
    template = load_prompt("cold_item_judgment")
    generator = client(scripted.url, api_key_env="SHOP_LLM_KEY", extra_body={"top_k": 20})
    values = {"history": "- Pipette tips", "title": "Pipette", "brand": "", "category": "Lab"}
    result = generator.run(template.request(values))
    assert result.ok and result.parsed == {"answer": "yes", "reason": "fits"}
    headers, body = scripted.requests[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": template.output_schema},
    }
    assert (body["seed"], body["max_tokens"], body["top_k"]) == (0, template.params.max_tokens, 20)
    assert body["messages"][0]["role"] == "system"


def test_token_probabilities_are_asked_for_and_read(scripted: Scripted) -> None:
    body = json.loads(ok_body('{"answer": "no"}'))
    body["choices"][0]["logprobs"] = {
        "content": [
            {"token": '{"answer": "', "logprob": -0.01, "top_logprobs": []},
            {
                "token": "no",
                "logprob": -0.4,
                "top_logprobs": [
                    {"token": "no", "logprob": -0.4},
                    {"token": "yes", "logprob": -1.1},
                ],
            },
            {"token": '"}', "logprob": -0.02, "top_logprobs": []},
        ]
    }
    scripted.replies = [(200, json.dumps(body).encode(), {})]
    completion = client(scripted.url).complete(ASK, GenerationParams(top_logprobs=2))
    _, sent = scripted.requests[0]
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)
    assert [t.token for t in completion.logprobs] == ['{"answer": "', "no", '"}']
    assert completion.logprobs[1].top == {"no": -0.4, "yes": -1.1}
    plain = client(scripted.url).complete(ASK, GenerationParams(max_tokens=3))
    _, sent = scripted.requests[1]
    assert "logprobs" not in sent and plain.logprobs is not None  # the scripted body has them


def test_concurrency_and_rate_limits(scripted: Scripted) -> None:
    scripted.replies = [(200, ok_body("tube"), {})]
    scripted.delay_s = 0.1
    generator = client(scripted.url, concurrency=2)
    requests = [
        GenerationRequest(messages=(Message(role="user", content=f"item {i}"),)) for i in range(6)
    ]
    assert all(r.ok for r in generator.complete_many(requests, concurrency=6))
    assert scripted.most_in_flight == 2

    scripted.delay_s = 0.0
    paced = client(scripted.url, requests_per_second=20)
    started = time.perf_counter()
    paced.complete_many(requests, concurrency=6)
    assert time.perf_counter() - started >= 5 / 20


# ----------------------------------------------------------------------------------------------
# llama-cpp-python's OpenAI-compatible server on loopback
# ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a llama_cpp.server serving SmolLM2, started for this module."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path)]
    command += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
    command += [
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
        "--n_threads_batch",
        "1",
        "--verbose",
        "False",
    ]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    try:
        while True:
            assert server.poll() is None, f"llama server exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "llama server did not start within 90 s"
            try:
                if httpx.get(f"{url}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def served(url: str, tmp_path: Path, **params) -> OpenAIGenerator:
    return OpenAIGenerator(
        model="smollm2", base_url=url, response_format="json_object", cache_dir=tmp_path, **params
    )


def test_real_server_completion(llama_server: str, tmp_path: Path) -> None:
    generator = served(llama_server, tmp_path)
    completion = generator.complete(ASK, GenerationParams(max_tokens=12))
    assert completion.text.strip() and 0 < completion.completion_tokens <= 12
    assert completion.prompt_tokens > 5 and completion.latency_s > 0
    assert generator.complete(ASK, GenerationParams(max_tokens=12)).cached


def test_real_server_json_completion(llama_server: str, tmp_path: Path) -> None:
    template = load_prompt("item_queries")
    item = {
        "title": "Borosilicate Glass Beaker 250 mL, Pack of 6",
        "brand": "Pyrex",
        "category": "Lab & Scientific Products > Beakers",
        "description": "Griffin low-form beakers with graduations.",
    }
    result = served(llama_server, tmp_path).run(template.request(item))
    assert result.ok, result
    assert 1 <= len(result.parsed["queries"]) <= 5
    assert all(isinstance(q, str) and q for q in result.parsed["queries"])


def test_real_server_timeout_is_a_recorded_failure(llama_server: str, tmp_path: Path) -> None:
    generator = served(llama_server, tmp_path, timeout_s=0.001, max_retries=2, backoff_s=0.01)
    failure = generator.try_complete(ASK, GenerationParams(max_tokens=4))
    assert (failure.ok, failure.kind, failure.attempts) == (False, "timeout", 3)
    assert generator.cache is not None and len(generator.cache) == 0


def test_real_server_logprobs_are_read(llama_server: str, tmp_path: Path) -> None:
    """The server's token log-probabilities arrive as :class:`TokenLogprob`s that spell the text."""
    params = GenerationParams(max_tokens=8, top_logprobs=3)
    completion = served(llama_server, tmp_path).complete(ASK, params)
    tokens = completion.logprobs
    assert tokens and len(tokens) == completion.completion_tokens
    assert "".join(token.token for token in tokens) == completion.text
    for token in tokens:
        assert token.logprob <= 1e-6 and 1 <= len(token.top) <= 3
        assert all(logprob <= 1e-6 for logprob in token.top.values())
        assert sum(math.exp(lp) for lp in token.top.values()) <= 1 + 1e-4
    again = served(llama_server, tmp_path).complete(ASK, params)
    assert again.cached and again.logprobs == tokens


def test_real_server_concurrent_requests_match_serial_ones(
    llama_server: str, tmp_path: Path
) -> None:
    """Four requests in flight at once come back in request order with the greedy answers one at
    a time gives (the client keeps request order; the server does not mix answers up)."""
    asks = ["a beaker", "a pipette", "a microscope slide", "a test tube rack"]
    requests = [
        GenerationRequest(
            messages=[Message(role="user", content=f"In three words, what is {thing} for?")],
            params=GenerationParams(max_tokens=10),
        )
        for thing in asks
    ]
    serial = served(llama_server, tmp_path / "serial", concurrency=1).complete_many(requests)
    parallel_generator = served(llama_server, tmp_path / "parallel", concurrency=4)
    parallel = parallel_generator.complete_many(requests, concurrency=4)
    assert all(result.ok for result in serial + parallel)
    assert [r.text for r in parallel] == [r.text for r in serial]
    assert not any(result.cached for result in parallel)
    assert parallel_generator.usage.requests == len(asks)
