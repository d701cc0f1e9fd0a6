"""Latency the gateway adds: `distillwatch serve` against calling the upstream directly.

Usage:
    python -m benchmarks.gateway_latency [--rate 1000] [--duration 20]
        [--upstream-latency-ms 20] [--stream] [--scan DIR] [--redis-url URL] [--find-max]
        [--nice -10] [--pin gateway=0,upstream=1,loadgen=1] [--json FILE] [--profile FILE.txt]
        [--target gateway|standin|standin-httpx|standin-aiohttp] [--standin-busy-us N]

Starts three processes on loopback: the fake upstream (``benchmarks/fake_upstream.py``, fixed
latency), the gateway (``distillwatch serve --upstream …``) and an open-loop load generator,
each its own process (optionally pinned with ``taskset``). The generator sends at a fixed
arrival rate whatever the answers do (no coordinated omission: a slow answer never delays the
next request), over pooled keep-alive HTTP/1.1 connections (raw asyncio + httptools: ~0.1 to
0.25 ms of CPU a request on the 2-core machine, kernel loopback work included; the fake
upstream ~0.2 to 0.35 ms), the same request sequence to both paths: OpenAI chat
mostly, some Anthropic messages, Responses and Completions, ~15 % streamed (``--stream``: all
streamed). After a warm-up it alternates short segments, upstream directly then through the
gateway, so that the machine's background load falls on both alike.

It prints, per percentile (p50 / p90 / p99 / p99.9), the latency of each path and their
difference — the added latency — for whole answers, for the first byte and the end of streams,
and for whole answers timed from their scheduled send (which adds the generator's own lag);
the median and spread of the difference over the alternated segment pairs (robust to a stall
of the whole machine in one segment); errors by status, the rate achieved, the generator's own
lag (actual send − scheduled send), the CPU each process spent per request, peak RSS of the
gateway, and the overhead histogram the gateway exposes on ``/metrics``.

``--find-max`` steps the rate (100, 250, 500, 750, 1000, 1500, …) and reports the highest
rate held: p99 added latency ≤ ``--max-p99-ms`` (2 ms; both pooled over all pairs and as
the median of the pairs'), < 0.1 % errors and ≥ 97 % of the rate achieved.
``--scan DIR`` passes a scan output to the gateway (decisions, indicators, online detector)
and sends a small share of requests (``--flagged-share``) from accounts it flags: those are
counted as enforced (403/429), not as errors, and left out of the latency comparison.
``--target standin`` measures a do-nothing proxy written here (raw bytes over asyncio: the
floor of any Python hop on loopback) and ``--target standin-httpx`` a uvicorn + httpx
pass-through (the floor of the gateway's stack; ``standin-aiohttp`` the same with aiohttp's
client, if installed); they validate the harness and measure floors, none is the gateway.
``--standin-busy-us N`` makes a stand-in burn N µs of CPU a request, a known overhead that
the harness must find. ``--nice -10`` runs the three processes (and, with autogroup
scheduling, this session's group) ahead of other jobs on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
PERCENTILES = (50, 90, 99, 99.9)
FIND_MAX_RATES = (100, 250, 500, 750, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000)
# (api, path, share) of the default mix; streamed share per api below.
MIX = (("openai_chat", "/v1/chat/completions", 0.72),
       ("anthropic_messages", "/v1/messages", 0.18),
       ("openai_responses", "/v1/responses", 0.05),
       ("openai_completions", "/v1/completions", 0.05))
STREAM_SHARE = {"openai_chat": 0.15, "anthropic_messages": 0.2, "openai_responses": 0.1,
                "openai_completions": 0.0}
STREAM_END = {"openai_chat": b"data: [DONE]\n\n", "openai_completions": b"data: [DONE]\n\n",
              "openai_responses": b"event: response.completed\n",
              "anthropic_messages": b'"message_stop"}\n\n'}
# Uniform over this many accounts (and one IP each): at 6,000 req/s each sends ~18 a minute,
# far under the gateway's default rate limits (600 a minute per account).
ACCOUNTS = 20_000
USER_AGENTS = ("OpenAI/Python 1.109.1", "AsyncOpenAI/Python 1.109.1", "Anthropic/Python 0.69.0",
               "openai-node/5.23.0", "langchain-openai/0.3.33", "curl/8.5.0",
               "my-support-bot/2.3", "aider/0.86.1")
SYSTEM_PROMPTS = (
    "You are a helpful assistant for an online bookshop. Answer questions about orders, "
    "shipping and returns politely and briefly. ",
    "You are a senior software engineer reviewing code. Point out bugs, security problems and "
    "style issues, and propose a corrected version of each function you comment on. ",
    "You translate customer emails between English, German and French, keeping the tone. ",
    "You are a coding agent working in a repository. Use the tools to read files, run tests "
    "and edit code; explain each step before you take it and keep diffs small. ",
    "Summarise the following document for a busy executive in five bullet points. ",
    "You are a tutor. Explain the reasoning behind every step so that a student can follow. ",
)
_TEXT_WORDS = ("order shipping return invoice function variable error exception database "
              "query index table column value report quarter revenue growth customer support "
              "ticket please explain why how what when where test failing build deploy server "
              "client request response latency memory thread process file path config option "
              "user account payment refund delivery address language translate summary "
              "document")
WORDS = tuple(_TEXT_WORDS.split(" "))


# --------------------------------------------------------------------------- request mix

def _words(rng: random.Random, pool: list[str], n: int) -> str:
    start = rng.randrange(len(pool) - n)
    return " ".join(pool[start:start + n])


def _account(i: int) -> tuple[str, str, str]:
    """Account id, API key and client IP (198.18.0.0/15, the range set aside for benchmarks:
    only ever a header value, never an address anything is sent to)."""
    return (f"acct-bench-{i:05d}", f"sk-bench-{(i * 2654435761) % 2**32:08x}{i:06d}",
            f"198.{18 + (i >> 16) % 2}.{(i >> 8) & 255}.{i & 255}")


def build_requests(n: int, seed: int, stream_all: bool, flagged: list[str],
                   flagged_share: float, xff: bool, host: str = "127.0.0.1"
                   ) -> tuple[list[bytes], np.ndarray, np.ndarray, np.ndarray]:
    """``n`` HTTP/1.1 requests as bytes; arrays of their api index, streamed, flagged."""
    rng = random.Random(seed)
    pool = rng.choices(WORDS, k=100_000)
    apis = [m[0] for m in MIX]
    weights = [m[2] for m in MIX]
    out, api_idx, streamed, is_flagged = [], np.zeros(n, np.int8), np.zeros(n, bool), \
        np.zeros(n, bool)
    for i in range(n):
        k = rng.choices(range(len(MIX)), weights)[0]
        api, path = apis[k], MIX[k][1]
        stream = stream_all or rng.random() < STREAM_SHARE[api]
        if stream and api == "openai_completions" and not stream_all:
            stream = False
        if flagged and rng.random() < flagged_share:
            account, key, ip = rng.choice(flagged), f"sk-flagged-{rng.randrange(10**6)}", \
                f"198.19.255.{rng.randrange(1, 255)}"
            is_flagged[i] = True
        else:
            account, key, ip = _account(rng.randrange(ACCOUNTS))
        system = rng.choice(SYSTEM_PROMPTS) * rng.choice((1, 1, 2, 4))
        turns = rng.choice((1, 1, 1, 2, 3, 5))
        messages = []
        for t in range(turns):
            length = min(5000, int(rng.lognormvariate(3.5, 1.0)) + 1)
            messages.append({"role": "user", "content": _words(rng, pool, length)})
            if t < turns - 1:
                messages.append({"role": "assistant",
                                 "content": _words(rng, pool, rng.randint(20, 200))})
        if api == "openai_chat":
            body = {"model": rng.choice(("gpt-4.1", "gpt-4.1-mini", "o4-mini")),
                    "messages": [{"role": "system", "content": system}, *messages],
                    "temperature": rng.choice((0, 0.2, 0.7, 1.0)),
                    "max_tokens": rng.choice((256, 512, 1024, 4096))}
            if rng.random() < 0.15:
                body["tools"] = [{"type": "function", "function": {
                    "name": name, "description": f"{name} in the workspace",
                    "parameters": {"type": "object", "properties": {
                        "path": {"type": "string"}}, "required": ["path"]}}}
                    for name in ("read_file", "write_file", "run_tests")]
            if body["model"] == "o4-mini":
                body["reasoning_effort"] = rng.choice(("low", "medium", "high"))
            if stream:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
        elif api == "anthropic_messages":
            body = {"model": rng.choice(("claude-sonnet-4-5", "claude-haiku-4-5")),
                    "max_tokens": rng.choice((1024, 4096)), "system": system,
                    "messages": messages}
            if rng.random() < 0.2:
                body["thinking"] = {"type": "enabled", "budget_tokens": 2048}
            if stream:
                body["stream"] = True
        elif api == "openai_responses":
            body = {"model": "gpt-4.1", "instructions": system,
                    "input": messages[-1]["content"]}
            if stream:
                body["stream"] = True
        else:
            body = {"model": "gpt-3.5-turbo-instruct", "prompt": messages[-1]["content"],
                    "max_tokens": 256}
            if stream:
                body["stream"] = True
        payload = orjson.dumps(body)
        auth = (f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
                if api == "anthropic_messages" else f"Authorization: Bearer {key}\r\n")
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Accept: {'text/event-stream' if stream else 'application/json'}\r\n{auth}"
                f"X-Account-Id: {account}\r\nUser-Agent: {rng.choice(USER_AGENTS)}\r\n"
                + (f"X-Forwarded-For: {ip}\r\n" if xff else "")
                + f"Content-Length: {len(payload)}\r\n\r\n")
        out.append(head.encode() + payload)
        api_idx[i], streamed[i] = k, stream
    return out, api_idx, streamed, is_flagged


# --------------------------------------------------------------------------- load generator

class _Result:
    """Per-request arrays of one segment (times from time.perf_counter, seconds)."""

    def __init__(self, n: int) -> None:
        self.intended = np.zeros(n)
        self.sent = np.zeros(n)
        self.first = np.zeros(n)
        self.done = np.zeros(n)
        self.status = np.zeros(n, np.int16)
        self.outcome = np.zeros(n, np.int8)     # 0 pending, 1 answered, 2 transport error,
        #                                         3 timed out
        self.size = np.zeros(n, np.int32)
        self.complete = np.zeros(n, bool)       # stream carried its API's last event
        self.retried = 0
        self.connects = 0


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        import httptools

        self.pool = pool
        self.httptools = httptools
        self.parser = httptools.HttpResponseParser(self)
        self.transport = None
        self.lost = False
        self.slot = -1
        self.uses = 0
        self.nbytes = 0
        self.reused = False
        self.tail = b""

    # asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.slot >= 0:
            slot, self.slot = self.slot, -1
            self.pool.failed(self, slot, before_answer=self.nbytes == 0 and self.reused)
        else:
            self.pool.forget(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except self.httptools.HttpParserError:
            self.transport.close()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        if self.nbytes == 0:
            self.pool.result.first[self.slot] = time.perf_counter()
        self.nbytes += len(body)
        self.tail = (self.tail + body)[-4096:]

    def on_message_complete(self) -> None:
        now = time.perf_counter()
        slot, self.slot = self.slot, -1
        r = self.pool.result
        r.done[slot] = now
        if self.nbytes == 0:
            r.first[slot] = now
        r.status[slot] = self.parser.get_status_code()
        r.outcome[slot] = 1
        r.size[slot] = self.nbytes
        r.complete[slot] = self.pool.ends[slot] in self.tail
        self.pool.answered(self, self.parser.should_keep_alive())

    def send(self, slot: int, data: bytes) -> None:
        self.slot, self.nbytes, self.tail = slot, 0, b""
        self.reused = self.uses > 0
        self.uses += 1
        self.pool.busy.add(self)
        self.pool.result.sent[slot] = time.perf_counter()
        self.transport.write(data)


class _Pool:
    """Keep-alive connections to one target, FIFO reuse (every connection stays warm)."""

    def __init__(self, loop, host: str, port: int) -> None:
        self.loop, self.host, self.port = loop, host, port
        self.idle: deque[_Conn] = deque()
        self.busy: set[_Conn] = set()
        self.inflight = 0
        self.result: _Result | None = None
        self.ends: list[bytes] = []
        self.requests: list[bytes] = []
        self.drained: asyncio.Future | None = None

    async def connect(self) -> _Conn:
        _, conn = await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
        conn.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP,
                                                           socket.TCP_NODELAY, 1)
        return conn

    async def prewarm(self, n: int) -> None:
        live = [c for c in self.idle if not c.lost]
        self.idle = deque(live)
        new = await asyncio.gather(*(self.connect() for _ in range(max(0, n - len(live)))))
        self.idle.extend(new)

    def start(self, slot: int, retry: bool = False) -> None:
        self.inflight += not retry
        while self.idle:
            conn = self.idle.popleft()
            if not conn.lost:
                conn.send(slot, self.requests[slot])
                return
        self.loop.create_task(self._connect_and_send(slot))

    async def _connect_and_send(self, slot: int) -> None:
        result = self.result
        try:
            conn = await self.connect()
        except OSError:
            if self.result is result:
                self._finish_error(slot)
            return
        if self.result is not result:       # its segment timed out meanwhile
            conn.transport.close()
            return
        result.connects += 1
        conn.send(slot, self.requests[slot])

    def answered(self, conn: _Conn, keep_alive: bool) -> None:
        self.busy.discard(conn)
        if keep_alive:
            self.idle.append(conn)
        else:
            conn.transport.close()
        self._one_done()

    def failed(self, conn: _Conn, slot: int, before_answer: bool) -> None:
        self.busy.discard(conn)
        self.forget(conn)
        if before_answer:                   # a reused connection the server had just closed
            self.result.retried += 1
            self.start(slot, retry=True)
        else:
            self._finish_error(slot)

    def _finish_error(self, slot: int) -> None:
        self.result.outcome[slot] = 2
        self.result.done[slot] = time.perf_counter()
        self._one_done()

    def forget(self, conn: _Conn) -> None:
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)

    def _one_done(self) -> None:
        self.inflight -= 1
        if self.inflight == 0 and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)


async def _run_segment(loop, pool: _Pool, requests: list[bytes], ends: list[bytes],
                       rate: float, seconds: float, timeout: float, poisson: bool,
                       rng: random.Random) -> _Result:
    n = max(1, int(rate * seconds))
    result = _Result(n)
    pool.result, pool.requests, pool.ends = result, requests, ends
    gaps = (np.array([rng.expovariate(rate) for _ in range(n)]) if poisson
            else np.full(n, 1.0 / rate))
    t0 = time.perf_counter() + 0.005
    offsets = t0 + np.concatenate(([0.0], np.cumsum(gaps[:-1])))
    result.intended[:] = offsets
    i = 0
    done = loop.create_future()

    def tick() -> None:
        nonlocal i
        now = time.perf_counter()
        while i < n and offsets[i] <= now:
            pool.start(i)
            i += 1
        if i >= n:
            done.set_result(None)
            return
        # libuv timers have millisecond resolution: never ask for less (it would spin).
        loop.call_later(max(0.001, offsets[i] - time.perf_counter()), tick)

    loop.call_later(0.005, tick)
    await done
    if pool.inflight:
        pool.drained = loop.create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pool.drained), timeout)
        pool.drained = None
    pending = np.flatnonzero(result.outcome == 0)
    if len(pending):                        # timed out: drop their connections
        for conn in list(pool.busy):
            conn.slot = -1
            conn.transport.abort()
        pool.busy.clear()
        pool.inflight = 0
        result.outcome[pending] = 3
    return result


async def _loadgen(spec: dict) -> dict:
    loop = asyncio.get_running_loop()
    flagged = spec.get("flagged") or []
    per_target = spec["requests_per_target"]
    requests, api_idx, streamed, is_flagged = build_requests(
        per_target, spec["seed"], spec["stream_all"], flagged, spec["flagged_share"],
        spec["xff"])
    ends = [STREAM_END[MIX[k][0]] if s else b"" for k, s in zip(api_idx, streamed, strict=True)]
    pools = {name: _Pool(loop, host, port) for name, (host, port) in spec["targets"].items()}
    offsets = dict.fromkeys(pools, 0)
    rng = random.Random(spec["seed"] + 1)
    lags: list[float] = []
    monitor_stop = False

    def monitor(expected: float) -> None:       # event-loop lag of the generator itself
        lags.append(time.perf_counter() - expected)
        if not monitor_stop:
            loop.call_later(0.01, monitor, time.perf_counter() + 0.01)

    loop.call_later(0.01, monitor, time.perf_counter() + 0.01)
    segments = []
    for seg in spec["segments"]:
        if seg.get("wait_for_go"):
            print("WARM", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            continue
        pool = pools[seg["target"]]
        n = max(1, int(seg["rate"] * seg["seconds"]))
        start = offsets[seg["target"]] % per_target
        if start + n > per_target:
            start = 0
        offsets[seg["target"]] = start + n
        await pool.prewarm(seg["prewarm"])
        lag_from = len(lags)
        began = time.perf_counter()
        r = await _run_segment(loop, pool, requests[start:start + n], ends[start:start + n],
                               seg["rate"], seg["seconds"], spec["timeout"], spec["poisson"],
                               rng)
        segments.append({
            "target": seg["target"], "record": seg["record"], "rate": seg["rate"],
            "began": began, "ended": time.perf_counter(),
            "api": api_idx[start:start + n].tolist(), "stream": streamed[start:start + n]
            .tolist(), "flagged": is_flagged[start:start + n].tolist(),
            "intended": r.intended.tolist(), "sent": r.sent.tolist(), "first": r.first.tolist(),
            "done": r.done.tolist(), "status": r.status.tolist(), "outcome": r.outcome.tolist(),
            "size": r.size.tolist(), "complete": r.complete.tolist(), "retried": r.retried,
            "connects": r.connects, "loop_lag": lags[lag_from:]})
        await asyncio.sleep(spec.get("gap", 0.2))
    monitor_stop = True
    return {"segments": segments}


def loadgen_main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_loadgen(spec))
    Path(spec["out"]).write_bytes(orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY))


# --------------------------------------------------------------------------- stand-in proxies

def _busy(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


class _RawClientSide(asyncio.Protocol):
    """One client connection of the raw stand-in: whole requests forwarded as bytes."""

    def __init__(self, proxy: RawStandIn) -> None:
        import httptools

        self.proxy = proxy
        self.parser = httptools.HttpRequestParser(self)
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        request, self.buffer = bytes(self.buffer), bytearray()
        if self.proxy.busy:
            _busy(self.proxy.busy)
        self.proxy.forward(request, self)


class _RawUpstreamSide(asyncio.Protocol):
    def __init__(self, proxy: RawStandIn) -> None:
        import httptools

        self.proxy = proxy
        self.httptools = httptools
        self.parser = httptools.HttpResponseParser(self)
        self.client = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.client is not None:
            self.client.transport.write(data)     # relayed as it comes: streams stay streams
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.client = None
        self.proxy.idle.append(self)

    def connection_lost(self, exc) -> None:
        if self in self.proxy.idle:
            self.proxy.idle.remove(self)
        if self.client is not None:
            self.client.transport.close()


class RawStandIn:
    """A do-nothing proxy: bytes in, bytes out, pooled upstream connections. It measures the
    floor of any Python hop on loopback (two more socket round trips, one event loop); the
    harness must find its ``busy_us`` of added CPU a request on top of that floor."""

    def __init__(self, upstream: str, busy_us: float) -> None:
        host, port = upstream.split("//", 1)[1].rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.busy = busy_us / 1e6
        self.idle: deque[_RawUpstreamSide] = deque()
        self.loop = None

    def forward(self, request: bytes, client: _RawClientSide) -> None:
        while self.idle:
            side = self.idle.pop()
            if not side.transport.is_closing():
                side.client = client
                side.transport.write(request)
                return
        self.loop.create_task(self._connect(request, client))

    async def _connect(self, request: bytes, client: _RawClientSide) -> None:
        _, side = await self.loop.create_connection(lambda: _RawUpstreamSide(self), self.host,
                                                    self.port)
        side.client = client
        side.transport.write(request)

    async def serve(self, port: int) -> None:
        self.loop = asyncio.get_running_loop()
        server = await self.loop.create_server(lambda: _RawClientSide(self), "127.0.0.1", port,
                                               backlog=4096)
        await server.serve_forever()


class HttpxStandIn:
    """A pass-through ASGI proxy with httpx (pooled, streaming) under uvicorn: the floor of
    the gateway's own stack (ASGI server + httpx client), with no gateway logic."""

    def __init__(self, upstream: str, busy_us: float) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=upstream, timeout=30,
                                        limits=httpx.Limits(max_connections=1000,
                                                            max_keepalive_connections=1000))
        self.busy = busy_us / 1e6

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.busy:
            _busy(self.busy)
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"host", b"content-length")]
        request = self.client.build_request(scope["method"], scope["path"], content=body,
                                            headers=headers)
        response = await self.client.send(request, stream=True)
        try:
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [(k, v) for k, v in response.headers.raw
                                    if k.lower() not in (b"content-length", b"transfer-encoding",
                                                         b"connection", b"date", b"server")]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


class AiohttpStandIn:
    """The same pass-through with aiohttp's client instead of httpx (if aiohttp is installed):
    what the gateway's stack would cost with that client."""

    def __init__(self, upstream: str, busy_us: float) -> None:
        self.upstream = upstream
        self.busy = busy_us / 1e6
        self.session = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000), auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.busy:
            _busy(self.busy)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k not in (b"host", b"content-length")]
        async with self.session.request(scope["method"], self.upstream + scope["path"],
                                        data=body, headers=headers) as response:
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(k, v) for k, v in response.raw_headers
                                    if k.lower() not in (b"content-length", b"transfer-encoding",
                                                         b"connection", b"date", b"server")]})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def standin_main(kind: str, upstream: str, port: int, busy_us: float) -> None:
    """Validation only: no stand-in is the gateway."""
    if kind in ("standin-httpx", "standin-aiohttp"):
        from benchmarks.fake_upstream import serve

        app = (HttpxStandIn if kind == "standin-httpx" else AiohttpStandIn)(upstream, busy_us)
        serve(app, "127.0.0.1", port)
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(RawStandIn(upstream, busy_us).serve(port))


# --------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NICE: int | None = None


def _cmd(argv: list[str], cpus: str | None) -> list[str]:
    return ((["nice", "-n", str(NICE)] if NICE is not None else [])
            + (["taskset", "-c", cpus] if cpus else []) + argv)


def _wait_http(port: int, path: str, body: bytes, seconds: float, proc) -> None:
    deadline = time.monotonic() + seconds
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"X-Account-Id: warmup\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(request)
                if s.recv(12).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {seconds:.0f} s")


def _tree(pid: int) -> list[int]:
    """pid and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _proc_stat(pids: list[int]) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, high-water RSS MB) summed over pids."""
    cpu = rss = hwm = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss, hwm


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


class Sampler(threading.Thread):
    """Samples CPU and RSS of named process trees every 0.2 s."""

    def __init__(self, procs: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.samples: list[tuple[float, dict, tuple]] = []
        self.peak_rss = dict.fromkeys(procs, 0.0)
        self.stop = threading.Event()

    def sample(self) -> None:
        now = time.perf_counter()
        row = {}
        for name, pid in self.procs.items():
            cpu, rss, _ = _proc_stat(_tree(pid))
            row[name] = cpu
            self.peak_rss[name] = max(self.peak_rss[name], rss)
        self.samples.append((now, row, _machine_busy()))

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()


def _metrics(port: int, token: str | None) -> str | None:
    import urllib.request

    for path in ("/metrics", "/admin/metrics"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                text = response.read().decode()
                if "# TYPE" in text:
                    return text
        except OSError:
            continue
    return None


def _histograms(text: str | None) -> dict[str, dict[float, float]]:
    """Prometheus histogram buckets summed over labels: name -> {le: cumulative count}."""
    out: dict[str, dict[float, float]] = {}
    for line in (text or "").splitlines():
        if line.startswith("#") or "_bucket{" not in line:
            continue
        name, rest = line.split("_bucket{", 1)
        labels, value = rest.rsplit("}", 1)
        le = next((part.split("=", 1)[1].strip('"') for part in labels.split(",")
                   if part.strip().startswith("le=")), None)
        if le is None:
            continue
        bucket = out.setdefault(name, {})
        bound = math.inf if le == "+Inf" else float(le)
        bucket[bound] = bucket.get(bound, 0.0) + float(value.split()[0])
    return out


def _histogram_quantiles(before: dict, after: dict, name: str) -> dict | None:
    b, a = before.get(name, {}), after.get(name, {})
    bounds = sorted(a)
    counts = [a[x] - b.get(x, 0.0) for x in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    out = {"count": int(total)}
    for q in PERCENTILES:
        target = total * q / 100
        prev_bound, prev_count = 0.0, 0.0
        for bound, count in zip(bounds, counts, strict=True):
            if count >= target:
                if math.isinf(bound):
                    out[f"p{q:g}"] = f"> {prev_bound * 1000:g} ms"
                else:
                    frac = (target - prev_count) / max(count - prev_count, 1e-9)
                    value = prev_bound + frac * (bound - prev_bound)
                    out[f"p{q:g}"] = f"{value * 1000:.3f} ms (bucket ≤ {bound * 1000:g} ms)"
                break
            prev_bound, prev_count = bound, count
    return out


# --------------------------------------------------------------------------- one measurement

class Rig:
    """The fake upstream, the target proxy, and their lifetimes."""

    def __init__(self, args) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gw-latency-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.pins = dict(part.split("=") for part in args.pin.split(",")) if args.pin else {}
        self.token = None
        self.upstream_port = free_port()
        self.gateway_port = free_port()

    def start(self) -> None:
        a = self.args
        py = sys.executable
        up = subprocess.Popen(_cmd([py, "-m", "benchmarks.fake_upstream", "--port",
                                    str(self.upstream_port), "--latency-ms",
                                    str(a.upstream_latency_ms), "--chunks", str(a.chunks),
                                    "--chunk-interval-ms", str(a.chunk_interval_ms)],
                                   self.pins.get("upstream")), cwd=ROOT)
        self.procs["upstream"] = up
        _wait_http(self.upstream_port, "/v1/chat/completions", b"{}", 30, up)
        upstream = f"http://127.0.0.1:{self.upstream_port}"
        if a.target.startswith("standin"):
            argv = [py, "-m", "benchmarks.gateway_latency", "--_standin", a.target,
                    "--upstream", upstream, "--port", str(self.gateway_port),
                    "--standin-busy-us", str(a.standin_busy_us)]
        else:
            argv = self._gateway_argv(upstream)
        print("gateway command:", " ".join(argv), flush=True)
        log = open(self.tmp / "gateway.log", "wb")  # noqa: SIM115
        gw = subprocess.Popen(_cmd(argv, self.pins.get("gateway")), cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
        self.procs["gateway"] = gw
        try:
            _wait_http(self.gateway_port, "/v1/chat/completions", b"{}", a.start_timeout, gw)
        except RuntimeError:
            print((self.tmp / "gateway.log").read_text(errors="replace")[-3000:])
            raise

    def _gateway_argv(self, upstream: str) -> list[str]:
        a = self.args
        exe = shutil.which("distillwatch", path=str(Path(sys.executable).parent)) or \
            "distillwatch"
        options = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True,
                                 env={**os.environ, "COLUMNS": "200"}).stdout
        argv = [exe, "serve", "--upstream", upstream, "--host", "127.0.0.1", "--port",
                str(self.gateway_port)]
        if a.scan:
            argv += ["--scan", str(a.scan)]
        if a.redis_url:
            argv += ["--redis-url", a.redis_url]
        if "--admin-token-file" in options:
            self.token = "bench-admin-token-0001"
            (self.tmp / "admin-token").write_text(self.token + "\n")
            argv += ["--admin-token-file", str(self.tmp / "admin-token")]
        if "--log-dir" in options and not a.no_exchange_log:
            argv += ["--log-dir", str(a.log_dir or self.tmp / "exchanges")]
        if a.xff and "--trusted-proxy" in options:
            argv += ["--trusted-proxy", "127.0.0.1/32"]
        return argv + list(a.gateway_arg or [])

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _flagged_accounts(scan: Path | None) -> list[str]:
    if not scan or not (scan / "accounts.jsonl").exists():
        return []
    out = []
    for line in (scan / "accounts.jsonl").read_text().splitlines():
        row = orjson.loads(line)
        decision = row.get("decision") or row.get("action") or row.get("recommended_action")
        if isinstance(decision, dict):
            decision = decision.get("kind") or decision.get("action")
        if decision in ("throttle", "verify", "block", "suspend", "challenge"):
            out.append(row.get("account_id"))
    return [a for a in out if a]


def measure(rig: Rig, rate: float, duration: float, pairs: int, warmup: float) -> dict:
    """Warm-up, then ``pairs`` alternations of (direct, gateway), duration/pairs s each."""
    a = rig.args
    per_segment = duration / pairs
    expected = a.upstream_latency_ms / 1000 + a.chunks * a.chunk_interval_ms / 1000
    prewarm = int(rate * (expected + 0.005) * 1.5) + 8
    segments = [{"target": t, "rate": rate, "seconds": warmup, "record": False,
                 "prewarm": prewarm} for t in ("direct", "gateway")]
    segments.append({"wait_for_go": True})
    for _ in range(pairs):
        segments += [{"target": t, "rate": rate, "seconds": per_segment, "record": True,
                      "prewarm": prewarm} for t in ("direct", "gateway")]
    flagged = _flagged_accounts(a.scan)
    spec = {"targets": {"direct": ["127.0.0.1", rig.upstream_port],
                        "gateway": ["127.0.0.1", rig.gateway_port]},
            "segments": segments, "seed": a.seed, "stream_all": a.stream,
            "flagged": flagged, "flagged_share": a.flagged_share if flagged else 0.0,
            "xff": a.xff, "timeout": a.timeout, "poisson": a.poisson,
            "requests_per_target": max(min(int(rate * duration), 60000),
                                       int(rate * max(per_segment, warmup))) + 1,
            "out": str(rig.tmp / f"loadgen-{rate:g}.json")}
    spec_path = rig.tmp / f"spec-{rate:g}.json"
    spec_path.write_text(json.dumps(spec))
    gen = subprocess.Popen(_cmd([sys.executable, "-m", "benchmarks.gateway_latency",
                                 "--_loadgen", str(spec_path)], rig.pins.get("loadgen")),
                           cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = gen.stdout.readline()
    if line.strip() != "WARM":
        gen.wait()
        raise RuntimeError(f"load generator failed: {line!r}")
    metrics_before = _metrics(rig.gateway_port, rig.token) if a.target == "gateway" else None
    sampler = Sampler({"gateway": rig.procs["gateway"].pid,
                       "upstream": rig.procs["upstream"].pid, "loadgen": gen.pid})
    sampler.sample()
    sampler.start()
    gen.stdin.write("go\n")
    gen.stdin.flush()
    if gen.wait() != 0:
        raise RuntimeError("load generator failed")
    sampler.stop.set()
    sampler.join()
    sampler.sample()
    metrics_after = _metrics(rig.gateway_port, rig.token) if a.target == "gateway" else None
    data = orjson.loads(Path(spec["out"]).read_bytes())
    return summarise(data["segments"], sampler, metrics_before, metrics_after,
                     len(flagged), rate)


# --------------------------------------------------------------------------- figures

def _pct(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {**dict.fromkeys([f"p{q:g}" for q in PERCENTILES] + ["max", "mean"],
                                float("nan")), "n": 0}
    out = {f"p{q:g}": float(np.percentile(values, q)) for q in PERCENTILES}
    out["max"], out["mean"] = float(values.max()), float(values.mean())
    out["n"] = len(values)
    return out


def _cpu_between(sampler: Sampler, name: str, t0: float, t1: float) -> float:
    times = np.array([s[0] for s in sampler.samples])
    cpu = np.array([s[1][name] for s in sampler.samples])
    return float(np.interp(t1, times, cpu) - np.interp(t0, times, cpu))


def summarise(segments: list[dict], sampler: Sampler, before: str | None, after: str | None,
              n_flagged: int, rate: float) -> dict:
    rec = [s for s in segments if s["record"]]
    out: dict = {"rate": rate, "paths": {}, "added": {}, "pairs": []}
    per_path: dict[str, dict[str, list]] = {}
    for seg in rec:
        arr = {k: np.asarray(seg[k]) for k in ("intended", "sent", "first", "done", "status",
                                               "outcome", "stream", "flagged", "complete",
                                               "api")}
        ok = (arr["outcome"] == 1) & ~arr["flagged"]
        good = ok & (arr["status"] == 200) & (~arr["stream"] | arr["complete"])
        enforced = arr["flagged"] & (arr["outcome"] == 1) & np.isin(arr["status"], (403, 429))
        bucket = per_path.setdefault(seg["target"], {k: [] for k in (
            "whole", "ttfb", "stream_whole", "whole_sched", "lag", "loop_lag")})
        nonstream = good & ~arr["stream"]
        stream = good & arr["stream"]
        bucket["whole"].append((arr["done"] - arr["sent"])[nonstream])
        bucket["whole_sched"].append((arr["done"] - arr["intended"])[nonstream])
        bucket["ttfb"].append((arr["first"] - arr["sent"])[stream])
        bucket["stream_whole"].append((arr["done"] - arr["sent"])[stream])
        bucket["lag"].append((arr["sent"] - arr["intended"])[arr["outcome"] > 0])
        bucket["loop_lag"].append(np.asarray(seg["loop_lag"]))
        stats = bucket.setdefault("stats", {"requests": 0, "answered_200": 0, "errors": 0,
                                            "non_200": 0, "transport_errors": 0, "timeouts": 0,
                                            "truncated_streams": 0, "flagged_sent": 0,
                                            "enforced": 0, "retried": 0, "connects": 0,
                                            "seconds": 0.0, "cpu": {}})
        stats["requests"] += len(arr["outcome"])
        codes = stats.setdefault("status_counts", {})
        for code, count in zip(*np.unique(arr["status"][arr["outcome"] == 1],
                                          return_counts=True), strict=True):
            codes[str(code)] = codes.get(str(code), 0) + int(count)
        stats["answered_200"] += int(good.sum())
        stats["non_200"] += int((ok & (arr["status"] != 200)).sum())
        stats["transport_errors"] += int((arr["outcome"] == 2).sum())
        stats["timeouts"] += int((arr["outcome"] == 3).sum())
        stats["truncated_streams"] += int((ok & arr["stream"] & (arr["status"] == 200)
                                           & ~arr["complete"]).sum())
        stats["flagged_sent"] += int(arr["flagged"].sum())
        stats["enforced"] += int(enforced.sum())
        stats["retried"] += seg["retried"]
        stats["connects"] += seg["connects"]
        span = float(arr["sent"].max() - arr["sent"].min()) if len(arr["sent"]) > 1 else 0
        stats["seconds"] += span
        for name in ("gateway", "upstream", "loadgen"):
            stats["cpu"][name] = stats["cpu"].get(name, 0.0) + _cpu_between(
                sampler, name, seg["began"], seg["ended"])
        stats.setdefault("machine", [0.0, 0.0])
        times = np.array([s[0] for s in sampler.samples])
        for i in (0, 1):
            series = np.array([s[2][i] for s in sampler.samples])
            stats["machine"][i] += float(np.interp(seg["ended"], times, series)
                                         - np.interp(seg["began"], times, series))
    for path, bucket in per_path.items():
        stats = bucket.pop("stats")
        stats["errors"] = (stats["non_200"] + stats["transport_errors"] + stats["timeouts"]
                           + stats["truncated_streams"])
        stats["achieved_rate"] = stats["requests"] / max(stats["seconds"], 1e-9)
        n = stats["requests"]
        stats["cpu_us_per_request"] = {k: v / n * 1e6 for k, v in stats["cpu"].items()}
        busy, total = stats.pop("machine")
        ours = sum(stats["cpu"].values())
        stats["machine_busy_cores"] = busy / max(total, 1e-9) * os.cpu_count()
        stats["other_processes_cores"] = max(0.0, busy - ours) / max(total, 1e-9) * \
            os.cpu_count()
        out["paths"][path] = {"stats": stats, **{k: _pct(np.concatenate(v)) for k, v in
                                                 bucket.items()}}
    if "direct" in per_path and "gateway" in per_path:
        for kind in ("whole", "ttfb", "stream_whole", "whole_sched"):
            d, g = out["paths"]["direct"][kind], out["paths"]["gateway"][kind]
            out["added"][kind] = {k: g[k] - d[k] for k in d if k != "n"}
        direct = [s for s in rec if s["target"] == "direct"]
        gateway = [s for s in rec if s["target"] == "gateway"]
        for ds, gs in zip(direct, gateway, strict=False):
            pair = {}
            for seg, name in ((ds, "direct"), (gs, "gateway")):
                arr = {k: np.asarray(seg[k]) for k in ("intended", "sent", "done", "status",
                                                       "stream", "flagged", "outcome")}
                m = (arr["outcome"] == 1) & (arr["status"] == 200) & ~arr["flagged"]
                if (m & ~arr["stream"]).any():          # whole answers, else first bytes
                    values = (arr["done"] - arr["sent"])[m & ~arr["stream"]]
                else:
                    values = (np.asarray(seg["first"]) - arr["sent"])[m]
                for q in (50, 90, 99):
                    pair[f"{name}_p{q}"] = (float(np.percentile(values, q)) if m.any()
                                            else float("nan"))
                # the generator stalled (whole machine) if a send left > 5 ms late
                pair[f"{name}_stall_ms"] = float((arr["sent"] - arr["intended"]).max() * 1000)
            for q in (50, 90, 99):
                pair[f"p{q}"] = pair[f"gateway_p{q}"] - pair[f"direct_p{q}"]
            out["pairs"].append(pair)
        out["added_median_of_pairs"] = {f"p{q}": float(np.median([p[f"p{q}"] for p in
                                                                  out["pairs"]]))
                                        for q in (50, 90, 99)}
    out["peak_rss_mb"] = dict(sampler.peak_rss)
    gw_pid_tree = _tree(list(sampler.procs.values())[0])
    out["gateway_hwm_mb"] = _proc_stat(gw_pid_tree)[2]
    if sampler.procs and (before is None) != (after is None):
        out["gateway_metrics"] = {}             # one scrape failed (overloaded gateway)
    elif before is not None and after is not None:
        hb, ha = _histograms(before), _histograms(after)
        out["gateway_metrics"] = {name: q for name in ha
                                  if (q := _histogram_quantiles(hb, ha, name))}
    else:
        out["gateway_metrics"] = None
    out["exchange_log"] = _sink_counts(after)
    out["flagged_accounts"] = n_flagged
    return out


def _sink_counts(text: str | None) -> dict[str, float] | None:
    """The exchange log's counters at the end (written, dropped, queue depth), if served."""
    found = {}
    for line in (text or "").splitlines():
        for name in ("written", "dropped", "queue_depth"):
            if line.startswith(f"distillwatch_gateway_sink_{name}"):
                found[name] = float(line.split()[-1])
    return found or None


def _ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1000:.3f}"


def print_figures(result: dict, label: str) -> None:
    paths = result["paths"]
    print(f"\n### {label}: {result['rate']:g} req/s offered\n")
    print("| path | latency of | answers timed | 200 OK (all kinds) | errors | achieved req/s "
          "| p50 ms | p90 ms "
          "| p99 ms | p99.9 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    kinds = (("whole", "whole answer (not streamed)"), ("ttfb", "first byte of streams"),
             ("stream_whole", "whole stream"),
             ("whole_sched", "whole answer, from its scheduled send"))
    for kind, what in kinds:
        for path in ("direct", "gateway"):
            if path not in paths:
                continue
            p, s = paths[path][kind], paths[path]["stats"]
            if p["p50"] != p["p50"]:
                continue
            print(f"| {path} | {what} | {p['n']:,} | {s['answered_200']:,} | "
                  f"{s['errors']} | {s['achieved_rate']:,.0f} | {_ms(p['p50'])} | "
                  f"{_ms(p['p90'])} | {_ms(p['p99'])} | {_ms(p['p99.9'])} | {_ms(p['max'])} |")
        if kind in result["added"] and result["added"][kind]["p50"] == \
                result["added"][kind]["p50"]:
            d = result["added"][kind]
            print(f"| **added** | {what} | | | | | **{_ms(d['p50'])}** | {_ms(d['p90'])} | "
                  f"**{_ms(d['p99'])}** | {_ms(d['p99.9'])} | |")
    if result["pairs"]:
        m = result["added_median_of_pairs"]
        spread = {q: [p[f"p{q}"] * 1000 for p in result["pairs"]] for q in (50, 90, 99)}
        stalls = sum(max(p["direct_stall_ms"], p["gateway_stall_ms"]) > 5
                     for p in result["pairs"])
        print("\nadded latency (whole answers; first bytes with --stream), median over the "
              f"{len(result['pairs'])} alternated segment pairs (min to max): " + ", ".join(
                  f"p{q} {m[f'p{q}'] * 1000:.3f} ms ({min(v):.3f} to {max(v):.3f})"
                  for q, v in spread.items())
              + f"; pairs where the generator was held up > 5 ms: {stalls}")
    for path in ("direct", "gateway"):
        if path not in paths:
            continue
        s = paths[path]["stats"]
        lag, loop_lag = paths[path]["lag"], paths[path]["loop_lag"]
        cpu = s["cpu_us_per_request"]
        print(f"{path}: CPU per request: gateway {cpu['gateway']:.0f} µs, upstream "
              f"{cpu['upstream']:.0f} µs, load generator {cpu['loadgen']:.0f} µs; machine busy "
              f"{s['machine_busy_cores']:.2f} of {os.cpu_count()} cores (other processes "
              f"{s['other_processes_cores']:.2f}); generator send lag p50 {_ms(lag['p50'])} / "
              f"p99 {_ms(lag['p99'])} / max {_ms(lag['max'])} ms, its loop lag p99 "
              f"{_ms(loop_lag['p99'])} ms; non-200 {s['non_200']}, transport errors "
              f"{s['transport_errors']} (statuses {s['status_counts']}), timeouts "
              f"{s['timeouts']}, truncated streams "
              f"{s['truncated_streams']}, stale-connection retries {s['retried']}, new "
              f"connections {s['connects']}"
              + (f"; flagged-account requests {s['flagged_sent']}, enforced (403/429) "
                 f"{s['enforced']}" if s["flagged_sent"] else ""))
    rss = result["peak_rss_mb"]
    print(f"peak RSS (sampled every 0.2 s, process tree): gateway {rss['gateway']:,.0f} MB "
          f"(high-water mark {result['gateway_hwm_mb']:,.0f} MB), upstream "
          f"{rss['upstream']:,.0f} MB, load generator {rss['loadgen']:,.0f} MB")
    if result.get("exchange_log"):
        log = result["exchange_log"]
        print(f"exchange log at the end: {log.get('written', 0):,.0f} written, "
              f"{log.get('dropped', 0):,.0f} dropped, {log.get('queue_depth', 0):,.0f} queued")
    if result["gateway_metrics"]:
        print("gateway /metrics histograms over the measured segments (its own timing; "
              "quantiles interpolated within buckets):")
        for name, q in result["gateway_metrics"].items():
            print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in q.items()))
    elif result["gateway_metrics"] is not None:
        print("gateway /metrics: not read (a scrape failed or timed out), or no overhead / "
              "latency histogram in it")


def held(result: dict, limit_ms: float, by: str = "pooled") -> tuple[bool, str]:
    g = result["paths"]["gateway"]["stats"]
    main_kind = "whole" if result["added"]["whole"]["p99"] == result["added"]["whole"]["p99"] \
        else "ttfb"                                  # --stream: the first byte of streams
    pooled = result["added"][main_kind]["p99"] * 1000
    median = result["added_median_of_pairs"]["p99"] * 1000
    added = {"pooled": pooled, "median": median}.get(by, max(pooled, median))
    reasons = []
    if added > limit_ms:
        reasons.append(f"p99 added {added:.2f} ms")
    if g["errors"] > 0.001 * g["requests"]:
        reasons.append(f"{g['errors']} errors")
    if g["achieved_rate"] < 0.97 * result["rate"]:
        reasons.append(f"achieved {g['achieved_rate']:.0f} req/s")
    return not reasons, ", ".join(reasons) or f"p99 added {added:.2f} ms"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--_loadgen":
        loadgen_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000, help="requests/s offered")
    parser.add_argument("--duration", type=float, default=20,
                        help="measured seconds per path (split over --pairs segments)")
    parser.add_argument("--pairs", type=int, default=10,
                        help="alternated (direct, gateway) segment pairs")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per path")
    parser.add_argument("--upstream-latency-ms", type=float, default=20)
    parser.add_argument("--chunks", type=int, default=8, help="deltas per streamed answer")
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0)
    parser.add_argument("--stream", action="store_true", help="stream every request")
    parser.add_argument("--scan", type=Path, default=None, help="scan output for the gateway")
    parser.add_argument("--flagged-share", type=float, default=0.02,
                        help="with --scan: share of requests from accounts the scan flags")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="gateway exchange log (default: a temporary folder)")
    parser.add_argument("--no-exchange-log", action="store_true",
                        help="run the gateway without --log-dir (to measure what logging costs)")
    parser.add_argument("--gateway-arg", action="append",
                        help="extra argument for distillwatch serve (repeatable)")
    parser.add_argument("--no-xff", dest="xff", action="store_false",
                        help="send no X-Forwarded-For (default: one per account, with the "
                             "gateway trusting 127.0.0.1)")
    parser.add_argument("--find-max", action="store_true")
    parser.add_argument("--max-p99-ms", type=float, default=2.0)
    parser.add_argument("--held-by", default="both", choices=["both", "pooled", "median"],
                        help="--find-max: judge the p99 added latency pooled over the pairs, "
                             "the median of the pairs' (robust to other jobs' stalls), or "
                             "both (the larger; a stall on the direct path cannot pass a rate)")
    parser.add_argument("--rates", type=float, nargs="+", default=list(FIND_MAX_RATES),
                        help="--find-max: rates to step through")
    parser.add_argument("--pin", default=None,
                        help="taskset CPUs, e.g. gateway=0,upstream=1,loadgen=1")
    parser.add_argument("--nice", type=int, default=None,
                        help="run the three processes at this niceness (negative needs root): "
                             "shields them from other jobs on a shared machine")
    parser.add_argument("--target", default="gateway",
                        choices=["gateway", "standin", "standin-httpx", "standin-aiohttp"],
                        help="standin: a raw-bytes asyncio proxy; standin-httpx / "
                             "standin-aiohttp: a uvicorn pass-through with that client "
                             "(harness validation and floors, not the gateway)")
    parser.add_argument("--standin-busy-us", type=float, default=0)
    parser.add_argument("--poisson", action="store_true", help="Poisson arrivals")
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the gateway with py-spy (warm-up included): FILE.svg a "
                             "flame graph, FILE.txt collapsed stacks, FILE.json speedscope")
    parser.add_argument("--_standin", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._standin:
        standin_main(args._standin, args.upstream, args.port, args.standin_busy_us)
        return

    global NICE
    NICE = args.nice
    if args.nice is not None and Path("/proc/self/autogroup").exists():
        # With autogroup scheduling, niceness only ranks processes of one session: give this
        # session's group (the orchestrator and the processes it starts) the same weight.
        with contextlib.suppress(OSError):
            Path("/proc/self/autogroup").write_text(str(args.nice))
    rig = Rig(args)
    label = {"standin": "raw stand-in proxy", "standin-httpx": "uvicorn + httpx stand-in proxy",
             "standin-aiohttp": "uvicorn + aiohttp stand-in proxy",
             "gateway": "distillwatch serve"}[args.target] + (
        f", upstream {args.upstream_latency_ms:g} ms" + (", all streamed" if args.stream else "")
        + (f", --scan {args.scan}" if args.scan else "")
        + (f", --redis-url {args.redis_url}" if args.redis_url else "")
        + (", no exchange log" if args.no_exchange_log else "")
        + (f", pinned {args.pin}" if args.pin else ", not pinned")
        + (f", nice {args.nice}" if args.nice is not None else ""))
    results = []
    try:
        rig.start()
        profiler = None
        if args.profile:
            profiler = subprocess.Popen([
                shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy",
                "record", "--pid", str(rig.procs["gateway"].pid), "--rate", "200",
                "--output", str(args.profile), "--format",
                {".json": "speedscope", ".txt": "raw"}.get(args.profile.suffix, "flamegraph"),
                "--nonblocking"])
        if args.find_max:
            best = None
            for rate in args.rates:
                result = measure(rig, rate, args.duration, args.pairs, args.warmup)
                results.append(result)
                print_figures(result, label)
                ok, why = held(result, args.max_p99_ms, args.held_by)
                print(f"-> {rate:g} req/s {'held' if ok else 'NOT held'} ({why})", flush=True)
                if not ok:
                    break
                best = rate
            print(f"\nhighest rate held with p99 added latency ≤ {args.max_p99_ms:g} ms: "
                  f"{best:g} req/s" if best else "\nno rate held")
        else:
            result = measure(rig, args.rate, args.duration, args.pairs, args.warmup)
            results.append(result)
            print_figures(result, label)
        if profiler:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
    finally:
        rig.stop()
    if args.json:
        args.json.write_bytes(orjson.dumps({"label": label, "args": {
            k: str(v) for k, v in vars(args).items()}, "results": results},
            option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
