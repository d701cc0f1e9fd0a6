"""The Exchange log: reassembled streams, keyed key ids, rotation, and a SIGKILL mid-write."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.gateway.decisions import policy_from_dict
from distillwatch.gateway.identity import key_id
from distillwatch.gateway.sink import ExchangeSink, Seen, build_exchange
from distillwatch.ingest.validate import check_exchange

from .conftest import (
    KEY,
    VENV_BIN,
    anthropic_body,
    anthropic_events,
    chat_body,
    chat_events,
    completions_body,
    completions_events,
    gz_lines,
    responses_body,
    responses_events,
    wait_for,
)


def _seen(api, body, response, streamed, status=200) -> Seen:
    return Seen(api, 1770000000.5, "acct-1", "kid-abc", "198.51.100.7", "SDK/1", orjson.dumps(body),
                None, status, response, None, streamed)


@pytest.mark.parametrize("api, body, events, text", [
    ("openai_chat", chat_body(stream=True, reasoning_effort="low"), chat_events,
     "Hello world!"),
    ("openai_completions", completions_body(stream=True), completions_events,
     "Once upon a time"),
    ("openai_responses", responses_body(stream=True), responses_events, "Paris."),
    ("anthropic_messages", anthropic_body(stream=True, thinking={"type": "enabled"}),
     anthropic_events, "Hi there."),
])
def test_streams_are_reassembled_into_valid_exchanges(api, body, events, text):
    exchange, problem = build_exchange(_seen(api, body, b"".join(events(body)), True), "dw-1")
    assert problem is None and check_exchange(exchange) is None
    assert exchange["response"]["text"] == text
    assert exchange["operation"] == {"openai_chat": "chat", "openai_completions": "completions",
                                     "openai_responses": "responses",
                                     "anthropic_messages": "messages"}[api]
    assert exchange["usage"]["output_tokens"] in (2, 3, 6)
    assert exchange["timestamp"] == "2026-02-02T02:40:00.500Z"
    assert exchange["client"] == {"ip": "198.51.100.7", "user_agent": "SDK/1"}
    if api == "openai_chat":
        assert exchange["usage"]["reasoning_tokens"] == 5
    if api == "anthropic_messages":
        assert exchange["response"]["finish_reason"] == "end_turn"
        assert exchange["request"]["reasoning"] == {"enabled": True, "budget_tokens": None}


def test_an_anthropic_error_answer_is_still_a_messages_exchange():
    body = {k: v for k, v in anthropic_body().items() if k != "system"}  # looks like chat
    error = orjson.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                     "message": "busy"}})
    exchange, _ = build_exchange(_seen("anthropic_messages", body, error, False, 529), "dw-2")
    assert exchange["operation"] == "messages" and exchange["source_format"] == \
        "anthropic_messages"
    assert exchange["response"]["status"] == 529
    assert exchange["response"]["error_type"] == "overloaded_error"


def test_the_gateway_logs_streams_with_key_ids_never_keys(make_gateway, tmp_path):
    gateway = make_gateway(log_dir=tmp_path / "logs")
    secret = "sk-very-secret-key-123"
    for path, body in (("/v1/chat/completions", chat_body), ("/v1/messages", anthropic_body)):
        for stream in (False, True):
            assert gateway.client.post(path, json=body(stream=stream), headers={
                "authorization": f"Bearer {secret}", "x-account-id": "acct-log",
                "user-agent": "Agent/2"}).status_code == 200
    assert gateway.gateway.sink.drain()
    files = sorted((tmp_path / "logs").glob("exchanges-*.jsonl.gz"))
    raw = b""
    for path in files:
        with gzip.open(path) as handle:
            raw += handle.read()
    assert secret.encode() not in raw
    exchanges = [orjson.loads(line) for line in raw.splitlines()]
    assert [e["response"]["text"] for e in exchanges] == ["Hello world!"] * 2 + ["Hi there."] * 2
    assert [e["gateway"]["streamed"] for e in exchanges] == [False, True, False, True]
    assert {e["api_key_id"] for e in exchanges} == {key_id(KEY, secret)}
    assert {e["client"]["user_agent"] for e in exchanges} == {"Agent/2"}
    assert len({e["exchange_id"] for e in exchanges}) == 4
    assert all(check_exchange(e) is None for e in exchanges)


def test_files_rotate_by_size_and_stay_readable(tmp_path):
    sink = ExchangeSink(tmp_path, rotate_bytes=2000, level=1)
    sink.start()
    for index in range(40):
        body = chat_body(messages=[{"role": "user", "content": f"question {index} " * 40}])
        sink.write(_seen("openai_chat", body, orjson.dumps({"choices": []}), False))
    assert sink.drain()
    sink.close()
    files = sorted(tmp_path.glob("exchanges-*.jsonl.gz"))
    assert len(files) > 3 and files == sink.files
    assert len(gz_lines(tmp_path, "exchanges-*.jsonl.gz")) == 40


def test_a_full_queue_drops_and_counts_and_close_writes_what_waits(tmp_path):
    # A long linger: the writer, once woken, waits; the queue holds what arrives meanwhile.
    sink = ExchangeSink(tmp_path, queue_size=3, level=1, linger_s=5.0)
    sink.start()
    body = chat_body()
    accepted = [sink.write(_seen("openai_chat", body, orjson.dumps({"choices": []}), False))
                for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert sink.dropped == 2 and sink.depth == 3
    started = time.monotonic()
    sink.close()  # no lingering at close: what waited is written at once
    assert time.monotonic() - started < 2.0
    assert sink.written == 3 and sink.depth == 0
    assert len(gz_lines(tmp_path, "exchanges-*.jsonl.gz")) == 3
    assert not sink.write(_seen("openai_chat", body, None, False))  # closed: refused, counted
    assert sink.dropped == 3


def test_drain_does_not_wait_for_the_linger(tmp_path):
    sink = ExchangeSink(tmp_path, level=1, linger_s=5.0)
    sink.start()
    sink.write(_seen("openai_chat", chat_body(), orjson.dumps({"choices": []}), False))
    started = time.monotonic()
    assert sink.drain()
    assert time.monotonic() - started < 2.0 and sink.written == 1
    sink.close()


_WRITER = textwrap.dedent("""
    import base64, os, sys, orjson
    from pathlib import Path
    from distillwatch.gateway.sink import ExchangeSink, Seen
    sink = ExchangeSink(Path(sys.argv[1]), rotate_bytes=200_000, level=6)
    sink.start()
    for index in range(100_000):
        # ~19 KB that gzip cannot shrink much: each member spans several pages.
        payload = base64.b64encode(os.urandom(14_000)).decode()
        body = {"model": "m", "messages": [{"role": "user", "content": f"{index} {payload}"}]}
        sink.write(Seen("openai_chat", 1770000000.0 + index, f"acct-{index}", None, None,
                        None, orjson.dumps(body), body, 200, orjson.dumps(
                            {"choices": [{"message": {"content": f"answer {index}"}}]})))
        sink.drain()
        print(index, flush=True)
""")


def test_sigkill_while_writing_leaves_every_file_readable_by_ingest(tmp_path):
    logs = tmp_path / "logs"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(logs)],
                              stdout=subprocess.PIPE, text=True)
    confirmed = -1
    deadline = time.monotonic() + 30
    while confirmed < 150 and time.monotonic() < deadline:
        confirmed = int(writer.stdout.readline())
    time.sleep(0.05)  # let it write on, and be killed mid-stride
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    for line in writer.stdout:  # anything it confirmed before dying counts too
        confirmed = int(line)
    assert confirmed >= 150
    files = sorted(logs.glob("exchanges-*.jsonl.gz"))
    assert len(files) >= 2  # rotation happened along the way
    store = tmp_path / "store.duckdb"
    result = subprocess.run([str(VENV_BIN / "distillwatch"), "ingest", str(logs), "--store",
                             str(store)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    rejects = (tmp_path / "rejected.jsonl").read_text() if (
        tmp_path / "rejected.jsonl").exists() else ""
    assert rejects.strip() == "", rejects[:500]
    import duckdb

    assert " 0 rejected" in result.stdout, result.stdout
    with duckdb.connect(str(store), read_only=True) as connection:
        accounts = {row[0] for row in connection.sql("SELECT account_id FROM features")
                    .fetchall()}
    stored = sorted(int(a.split("-")[1]) for a in accounts)
    # Every exchange confirmed written is there; at most the one in flight beyond it.
    assert stored == list(range(len(stored)))
    assert confirmed + 1 <= len(stored) <= confirmed + 2


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_the_writer_thread_runs_below_the_request_path(tmp_path):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    sink = ExchangeSink(tmp_path, writer_nice=5)
    sink.start()
    try:
        wait_for(lambda: sink.writer_priority is not None)
        stat = (Path("/proc/self/task") / str(sink._thread.native_id) / "stat").read_text()
        nice = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of proc(5)
        assert nice == sink.writer_priority == min(19, base + 5)
        assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the caller's own is untouched
    finally:
        sink.close()
    with pytest.raises(DistillwatchConfigError, match="writer_nice' must be 0 to 19"):
        policy_from_dict({"sink": {"writer_nice": 20}})
    assert policy_from_dict({"sink": {"writer_nice": 0}}).writer_nice == 0
