"""The gateway's own work per API call, in process: no sockets, no other processes.

Usage:
    python -m benchmarks.gateway_cpu [--requests 20000] [--exchange-log] [--pause-us 0]
        [--profile N]

``benchmarks/gateway_latency.py`` measures what the gateway adds from outside, on loopback,
where the kernel, the scheduler and two other processes share the two cores and every figure
moves by ±10–20 % from run to run. This benchmark isolates the part the gateway's code
decides: it drives ``serve``'s own front end (``gateway.relay``) with the same requests as
the latency benchmark (``build_requests``) and the fake upstream's own answers, over fake
transports, and prints the event loop's CPU time per request (``time.thread_time``):

- ``hot``: requests back to back (caches warm: the code's own cost);
- ``paced``: ``--pause-us`` of sleep between requests (default 1000: the latency
  benchmark's 1,000 req/s), where each request starts on a core that idled meanwhile
  (caches cold): what a request costs at that rate on this machine.

Each is split into the request's way in (parse, identity, decision, the upstream request;
up to the write to the upstream), its way out (the upstream's answer to the write to the
client) and the bookkeeping after (metrics, the exchange log's hand-off, the next request).
``--exchange-log`` turns on the exchange log (its writer thread runs beside the loop, as in
``serve``); ``--profile N`` prints the N functions with the most own time (cProfile, hot).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path
from time import perf_counter, thread_time

import numpy as np

from benchmarks.fake_upstream import FakeUpstream
from benchmarks.gateway_latency import build_requests
from distillwatch.gateway.app import GatewayConfig, build_app
from distillwatch.gateway.decisions import load_policy
from distillwatch.gateway.relay import FrontServer, UpstreamLink, _Front, _UpstreamConnection

_PEER = ("127.0.0.1", 40000)


class _Transport:
    """A transport that keeps nothing: counts what is written."""

    def __init__(self) -> None:
        self.written = 0
        self.writes = 0
        self.at = 0.0  # thread CPU time of the last write

    def write(self, data: bytes) -> None:
        self.at = thread_time()
        self.written += len(data)
        self.writes += 1

    def get_extra_info(self, name: str, default=None):
        return _PEER if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


async def _answers(upstream: FakeUpstream, requests: list[bytes]) -> dict[bytes, bytes]:
    """The fake upstream's answer to each distinct (path, streamed) kind, as HTTP/1.1 bytes."""
    out: dict[bytes, bytes] = {}
    for raw in requests:
        kind = _kind(raw)
        if kind in out:
            continue
        path, body = kind.partition(b" ")[0], raw.partition(b"\r\n\r\n")[2]
        sent: list[dict] = []

        async def receive(body=body):
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message, sent=sent):
            sent.append(message)

        await upstream({"type": "http", "method": "POST", "path": path.decode(),
                        "headers": []}, receive, send)
        start, chunks = sent[0], [m.get("body", b"") for m in sent[1:]]
        headers = list(start["headers"])
        framed = any(name == b"content-length" for name, _ in headers)
        lines = [b"HTTP/1.1 %d OK\r\n" % start["status"]]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        if not framed:
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        if framed:
            lines += chunks
        else:
            lines += [b"%x\r\n%b\r\n" % (len(c), c) for c in chunks if c] + [b"0\r\n\r\n"]
        out[kind] = b"".join(lines)
    return out


def _kind(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.split(b" ", 2)[1] + (b" stream" if b'"stream":true' in body else b"")


async def run(args: argparse.Namespace) -> dict:
    requests, *_ = build_requests(args.requests, args.seed, False, [], 0.0, True)
    answers = await _answers(FakeUpstream(latency_ms=0), requests)
    with tempfile.TemporaryDirectory(prefix="dw-gateway-cpu-") as tmp:
        config = GatewayConfig(
            "http://127.0.0.1:9", policy=load_policy(None), trusted_proxies=("127.0.0.1/32",),
            log_dir=Path(tmp) / "exchanges" if args.exchange_log else None,
            admin_token="benchmark-token")
        app = build_app(config)
        server = FrontServer(app)
        server.loop = loop = asyncio.get_running_loop()
        async with app.router.lifespan_context(app):
            server.link = link = UpstreamLink(config.upstream)
            front = _Front(server)
            front.connection_made(_Transport())
            conn = _UpstreamConnection(link)
            conn.connection_made(_Transport())
            link.open.add(conn)
            kinds = [_kind(raw) for raw in requests]
            figures = {}
            for mode, pause in (("hot", 0.0), ("paced", args.pause_us / 1e6)):
                way_in, way_out, after_in, after_out = [], [], [], []
                profiler = cProfile.Profile() if args.profile and mode == "hot" else None
                process_start, thread_start = time.process_time(), thread_time()
                for raw, kind in zip(requests, kinds, strict=True):
                    if not link.idle:
                        conn.idle_since = loop.time()
                        link.idle.append(conn)
                    if pause:
                        time.sleep(pause)
                    if profiler:
                        profiler.enable()
                    t0 = thread_time()
                    front.data_received(raw)
                    t1 = thread_time()
                    written = front.transport.writes
                    conn.data_received(answers[kind])
                    t2 = thread_time()
                    if profiler:
                        profiler.disable()
                    assert front.transport.writes > written, "no answer reached the client"
                    way_in.append(conn.transport.at - t0)
                    after_in.append(t1 - conn.transport.at)
                    way_out.append(front.transport.at - t1)
                    after_out.append(t2 - front.transport.at)
                if config.log_dir is not None:
                    app.state.gateway.sink.drain(60)
                figures[mode + " other threads"] = (
                    (time.process_time() - process_start) - (thread_time() - thread_start)
                ) / len(requests) * 1e6
                figures[mode] = {name: np.array(values) * 1e6 for name, values in (
                    ("in", way_in), ("after in", after_in), ("out", way_out),
                    ("after out", after_out))}
                if profiler:
                    text = io.StringIO()
                    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(
                        args.profile)
                    figures["profile"] = text.getvalue()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pause-us", type=float, default=1000,
                        help="sleep between requests in the paced run (µs)")
    parser.add_argument("--exchange-log", action="store_true")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    started = perf_counter()
    try:  # the loop serve runs on
        import uvloop

        figures = uvloop.run(run(args))
    except ImportError:
        figures = asyncio.run(run(args))
    print("CPU µs per request (the event loop's thread): p50 / p90 / mean")
    print("| run | in (to the upstream write) | after it | out (to the client write) "
          "| after it | in + out | all |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("hot", "paced"):
        rows = figures[mode]
        rows["in + out"] = rows["in"] + rows["out"]
        rows["all"] = rows["in + out"] + rows["after in"] + rows["after out"]
        print(f"| {mode} | " + " | ".join(
            f"{np.percentile(values, 50):.1f} / {np.percentile(values, 90):.1f} / "
            f"{values.mean():.1f}" for values in rows.values()) + " |")
    for mode in ("hot", "paced"):
        print(f"{mode}: other threads (the exchange log's writer) "
              f"{figures[mode + ' other threads']:.1f} µs of CPU per request")
    if "profile" in figures:
        print(figures["profile"])
    print(f"({perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
