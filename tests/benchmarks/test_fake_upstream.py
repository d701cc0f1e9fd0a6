"""The benchmarks' fake upstream answers each API shape, streams, and errs in each API's shape."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]
LATENCY_MS = 30


@pytest.fixture(scope="module")
def upstream():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.fake_upstream", "--port",
                             str(port), "--latency-ms", str(LATENCY_MS), "--chunks", "4"],
                            cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def _events(text: str) -> list[tuple[str | None, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        event = data = None
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        out.append((event, data))
    return out


def test_each_api_answers_in_its_shape_after_the_latency(upstream):
    with httpx.Client(base_url=upstream) as client:
        started = time.perf_counter()
        chat = client.post("/v1/chat/completions", json={"model": "gpt-x", "messages": [
            {"role": "user", "content": "hi"}], "reasoning_effort": "high"})
        assert time.perf_counter() - started >= LATENCY_MS / 1000
        assert chat.status_code == 200 and "x-request-id" in chat.headers
        body = chat.json()
        assert body["object"] == "chat.completion" and body["model"] == "gpt-x"
        assert body["choices"][0]["finish_reason"] == "stop"
        assert body["choices"][0]["message"]["content"]
        assert body["choices"][0]["message"]["reasoning_content"]
        assert body["usage"]["total_tokens"] > 0

        resp = client.post("/v1/responses", json={"model": "gpt-x", "input": "hi"}).json()
        assert resp["object"] == "response" and resp["status"] == "completed"
        assert resp["output"][0]["content"][0]["type"] == "output_text"

        comp = client.post("/v1/completions", json={"model": "m", "prompt": "hi"}).json()
        assert comp["object"] == "text_completion" and comp["choices"][0]["text"]

        msg = client.post("/v1/messages", json={"model": "claude-x", "max_tokens": 10,
                                                "messages": [], "thinking": {
                                                    "type": "enabled", "budget_tokens": 1024}})
        assert "request-id" in msg.headers
        msg = msg.json()
        assert msg["type"] == "message" and msg["stop_reason"] == "end_turn"
        assert [c["type"] for c in msg["content"]] == ["thinking", "text"]


@pytest.mark.parametrize("path, first, last", [
    ("/v1/chat/completions", None, "[DONE]"),
    ("/v1/completions", None, "[DONE]"),
    ("/v1/responses", "response.created", "response.completed"),
    ("/v1/messages", "message_start", "message_stop"),
])
def test_each_api_streams_server_sent_events(upstream, path, first, last):
    with httpx.Client(base_url=upstream) as client, client.stream(
            "POST", path, json={"model": "m", "stream": True,
                                "stream_options": {"include_usage": True}}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = _events(text)
    assert events[0][0] == first
    if last == "[DONE]":
        assert events[-1][1] == "[DONE]"
        chunks = [json.loads(d) for _, d in events[:-1]]
        assert chunks[-1]["usage"]["total_tokens"] > 0          # include_usage honoured
        text_out = "".join(c["choices"][0].get("text") or
                           c["choices"][0].get("delta", {}).get("content") or ""
                           for c in chunks if c["choices"])
    else:
        assert events[-1][0] == last
        assert all(json.loads(d)["type"] == e for e, d in events)
        key = "text" if path == "/v1/messages" else "delta"
        text_out = "".join(json.loads(d)["delta"][key] if path == "/v1/messages"
                           else json.loads(d)[key] for e, d in events
                           if e in ("content_block_delta", "response.output_text.delta"))
    assert text_out.startswith("the model answers") and len(text_out) > 300


def test_errors_are_in_each_apis_shape(upstream):
    with httpx.Client(base_url=upstream) as client:
        bad = client.post("/v1/messages", content=b"{not json",
                          headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["type"] == "error"
        assert bad.json()["error"]["type"] == "invalid_request_error"
        overloaded = client.post("/v1/messages", json={}, headers={"x-fake-status": "529"})
        assert overloaded.status_code == 529
        assert overloaded.json()["error"]["type"] == "overloaded_error"
        failed = client.post("/v1/chat/completions", json={}, headers={
            "x-fake-status": "500", "x-fake-latency-ms": "0"})
        assert failed.status_code == 500 and failed.json()["error"]["type"] == "server_error"
        assert client.post("/v1/unknown", json={}).status_code == 404


def test_load_generator_times_every_request_against_it(upstream, tmp_path):
    from benchmarks.gateway_latency import _loadgen

    port = int(upstream.rsplit(":", 1)[1])
    spec = {"targets": {"direct": ["127.0.0.1", port]},
            "segments": [{"target": "direct", "rate": 200, "seconds": 1, "record": True,
                          "prewarm": 4}],
            "seed": 1, "stream_all": False, "flagged": [], "flagged_share": 0, "xff": True,
            "timeout": 5, "poisson": False, "requests_per_target": 201, "gap": 0}
    segment = asyncio.run(_loadgen(spec))["segments"][0]
    assert len(segment["status"]) == 200
    assert set(segment["status"]) == {200} and set(segment["outcome"]) == {1}
    streamed = [c for c, s in zip(segment["complete"], segment["stream"], strict=True) if s]
    assert streamed and all(streamed)                      # every stream reached its last event
    service = [d - s for d, s in zip(segment["done"], segment["sent"], strict=True)]
    assert min(service) >= LATENCY_MS / 1000 * 0.95
    sent = segment["sent"]
    assert 0.9 <= sent[-1] - sent[0] <= 1.2                 # open loop: 200 req/s for 1 s
