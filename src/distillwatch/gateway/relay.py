"""serve's own HTTP/1.1 front end: the proxied API calls on asyncio protocols, the rest ASGI.

Why not uvicorn and aiohttp for everything: on the 2-core machine each costs ~0.1–0.3 ms of CPU
a request (the ASGI scope, message dicts and coroutines of the server; the request, response
and tracing objects of the client), which put the gateway's added latency at 1.5–4 ms at
1,000 req/s (``benchmarks/README.md``). The relay parses both sides with ``httptools`` (the
parser uvicorn uses) and does the work of one API call in plain callbacks, with no task, no
coroutine and no copy of the body beyond what the exchange log needs.

What takes the fast path: ``POST`` to the four API paths (``gateway.app.API_BY_PATH``). Every
other request (admin API, ``/metrics``, ``/healthz``, other ``/v1/...`` paths, other methods)
and the API calls whose answer is rewritten on the way (``monitor`` with
``withhold_reasoning``) go to the gateway's ASGI app through a small ASGI bridge, with the
decision made here carried in the scope (``app.ADMISSION``: it is not taken, nor counted
against rate limits, twice). Identity, client IP, the decision, refusal bodies, upstream
failures, the detector and the exchange log are the gateway's own (:class:`Gateway`): the two
paths differ only in how bytes are moved.

One API call on the fast path:

1. the request is read whole (``Expect: 100-continue`` answered; a chunked body de-chunked);
2. ``Gateway.who`` / ``Gateway.decide``; a refusal is answered from the canned answers;
3. the request goes upstream on a pooled keep-alive connection (:class:`UpstreamLink`):
   the client's request line and headers minus hop-by-hop ones, ``Host`` set to the
   upstream's, the body with its length;
4. the answer's status line and headers come back as sent (hop-by-hop ones dropped), then its
   body chunk by chunk as it arrives: with its ``Content-Length`` when the upstream gave one,
   re-framed as chunked otherwise (server-sent events arrive and leave event by event);
5. the exchange log gets the request and the answer's body once it is complete (or the reason
   it is not: ``client_disconnected``, ``upstream_interrupted``).

An idle keep-alive connection to the upstream may be closed by the upstream just as a request
is written on it; when such a reused connection ends before the first byte of an answer, the
request is sent again once on a new connection (what browsers and most HTTP clients do).
Backpressure: when the client reads more slowly than the upstream writes, reading from the
upstream pauses until the client catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from time import perf_counter
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httptools
import orjson

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.gateway.app import (
    _HOP_BY_HOP,
    ADMISSION,
    API_BY_PATH,
    GatewayApp,
    user_agent_of,
)
from distillwatch.gateway.decisions import REFUSING
from distillwatch.gateway.sink import Seen

logger = logging.getLogger(__name__)

_API_BY_RAW_PATH = {path.encode(): api for path, api in API_BY_PATH.items()}
_REQUEST_DROP = _HOP_BY_HOP | {b"host", b"content-length", b"expect"}
_NO_BODY_STATUS = frozenset({204, 304})
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_READ_CHUNK_LIMIT = 1 << 20  # the client's unsent answer bytes past which upstream reads pause


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


def _head(status: int, headers: Any) -> bytes:
    return _status_line(status) + b"".join(k + b": " + v + b"\r\n" for k, v in headers) + b"\r\n"


class UpstreamFailure(Exception):
    """An upstream call that failed before its answer began.

    Attributes:
        kind: ``unreachable`` (no connection, a broken one, none free in time: a 502) or
            ``timeout`` (no answer within the read timeout: a 504).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- the upstream side -----------------------------------------------------------------------


class _UpstreamConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to the upstream; answers go to ``self.user``."""

    def __init__(self, link: UpstreamLink) -> None:
        self.link = link
        self.loop = link.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.user: _Exchange | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.framed = False       # the answer has a Content-Length or is chunked
        self.answering = False    # its headers arrived
        self.received = 0         # bytes of the answer so far
        self.served = 0           # answers completed on this connection
        self.idle_since = 0.0
        self.last_data = 0.0      # loop time of the last byte (read timeout: FrontServer)
        self.closed = False

    # -- asyncio --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.last_data = self.loop.time()
        # What this data makes the client side write (status line, headers, body, end)
        # leaves in one write: one system call, one packet, where it is one answer.
        user = self.user
        front = user.front if user is not None else None
        if front is not None:
            front.held = []
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail("unreachable", f"malformed answer from the upstream: {error}")
        finally:
            if front is not None:
                front.flush()
                user.settle()  # the bookkeeping the answer's bytes did not wait for

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.link.forget(self)
        user, self.user = self.user, None
        if user is None:
            return
        if self.answering and not self.framed:
            user.upstream_done()  # an answer delimited by the end of the connection
            return
        reason = f"{type(exc).__name__}: {exc}" if exc else "the upstream closed the connection"
        user.upstream_failed("unreachable", reason, self)

    # -- httptools --
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.answering = True
        status = self.parser.get_status_code()
        self.framed = False
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length" or (lower == b"transfer-encoding"
                                              and b"chunked" in value.lower()):
                self.framed = True
        if status in _NO_BODY_STATUS or status < 200:
            self.framed = True
        if self.user is not None:
            self.user.upstream_headers(status, self.headers)

    def on_body(self, body: bytes) -> None:
        if self.user is not None:
            self.user.upstream_body(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 1xx: the real answer follows
            self.headers, self.answering = [], False
            return
        keep = self.parser.should_keep_alive()
        user, self.user = self.user, None
        self.served += 1
        self.headers, self.answering = [], False
        if user is not None:
            user.upstream_done()
        self.link.release(self, keep)

    # -- use --
    def send(self, user: _Exchange, data: bytes) -> None:
        """Write one request; its answer goes to ``user``."""
        self.user, self.received, self.headers, self.answering = user, 0, [], False
        self.last_data = self.loop.time()
        self.transport.write(data)

    def check_timeout(self, now: float) -> None:
        """Fail the call in progress if the upstream has been silent for the read timeout."""
        if self.user is not None and now - self.last_data >= self.link.read_timeout:
            self._fail("timeout", f"no answer from the upstream for {self.link.read_timeout} s")

    def _fail(self, kind: str, message: str) -> None:
        user, self.user = self.user, None
        self.abandon()
        if user is not None:
            user.upstream_failed(kind, message, self)

    def abandon(self) -> None:
        """Close the connection (its answer, if any, is not wanted)."""
        self.user = None
        if not self.closed:
            self.closed = True
            self.transport.abort()
            self.link.forget(self)


class UpstreamLink:
    """A bounded pool of keep-alive HTTP/1.1 connections to one upstream (``http``/``https``).

    Args:
        url: The upstream's base URL (``https://api.example.com`` or with a path prefix).
        max_connections: Open connections at most (busy and idle); a request that finds none
            free waits for one up to ``connect_timeout``.
        max_idle: Idle connections kept for reuse.
        keepalive_expiry: Seconds an idle connection is kept.
        connect_timeout: Seconds to connect (or to wait for a free connection).
        read_timeout: Seconds without a byte from the upstream before a call fails.
    """

    def __init__(self, url: str, *, max_connections: int = 1000, max_idle: int = 100,
                 keepalive_expiry: float = 30.0, connect_timeout: float = 10.0,
                 read_timeout: float = 600.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DistillwatchConfigError(
                f"--upstream {url!r} is not an http:// or https:// URL")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")
        self.base_path = parts.path.rstrip("/").encode()
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.max_connections, self.max_idle = max_connections, max_idle
        self.keepalive_expiry = keepalive_expiry
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.loop = asyncio.get_running_loop()
        self.idle: list[_UpstreamConnection] = []
        self.open: set[_UpstreamConnection] = set()
        self.connecting = 0
        self.waiters: deque[asyncio.Future] = deque()
        self.opened = 0

    def take_idle(self) -> _UpstreamConnection | None:
        """An idle connection still fresh, or None (the newest first: the warmest)."""
        idle, now = self.idle, self.loop.time()
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.abandon()
        return None

    async def acquire(self) -> _UpstreamConnection:
        """A connection to send on: an idle one, a new one, or the next one freed.

        Raises:
            UpstreamFailure: ``unreachable`` if none could be had within the connect timeout.
        """
        deadline = self.loop.time() + self.connect_timeout
        while True:
            conn = self.take_idle()
            if conn is not None:
                return conn
            if len(self.open) + self.connecting < self.max_connections:
                return await self._connect(deadline)
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                conn = await asyncio.wait_for(waiter, max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                raise UpstreamFailure("unreachable", f"no free upstream connection within "
                                      f"{self.connect_timeout} s") from None
            if conn is not None:
                return conn

    async def _connect(self, deadline: float) -> _UpstreamConnection:
        self.connecting += 1
        try:
            _, conn = await asyncio.wait_for(self.loop.create_connection(
                lambda: _UpstreamConnection(self), self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None),
                max(0.0, deadline - self.loop.time()))
        except TimeoutError:
            raise UpstreamFailure("unreachable", f"could not connect to {self.host}:"
                                  f"{self.port} within {self.connect_timeout} s") from None
        except (OSError, ssl.SSLError) as error:
            raise UpstreamFailure("unreachable", f"{type(error).__name__}: {error}") from None
        finally:
            self.connecting -= 1
            self._wake(None)
        self.open.add(conn)
        self.opened += 1
        return conn

    def release(self, conn: _UpstreamConnection, keep: bool) -> None:
        """An answer was read whole: reuse the connection (or close it)."""
        if conn.closed:
            return
        if not keep:
            conn.abandon()
            return
        if self._wake(conn):
            return
        if len(self.idle) >= self.max_idle:
            conn.abandon()
            return
        conn.idle_since = self.loop.time()
        self.idle.append(conn)

    def forget(self, conn: _UpstreamConnection) -> None:
        """A connection closed: its place may go to a request waiting for one."""
        if conn in self.open:
            self.open.discard(conn)
            self._wake(None)

    def _wake(self, conn: _UpstreamConnection | None) -> bool:
        # Hand ``conn`` (None: a free place to connect) to the first request still waiting.
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def stats(self) -> dict[str, int]:
        """Connections: open, idle, in use, opened since the start."""
        idle = sum(1 for conn in self.idle if not conn.closed)
        return {"open": len(self.open), "idle": idle, "in_use": len(self.open) - idle,
                "opened": self.opened}

    def close(self) -> None:
        """Close every connection."""
        for conn in list(self.open):
            conn.abandon()
        self.idle.clear()


# --- the client side -------------------------------------------------------------------------


class _Request:
    __slots__ = ("method", "target", "headers", "body", "keep_alive")

    def __init__(self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]],
                 body: bytes, keep_alive: bool) -> None:
        self.method, self.target, self.headers = method, target, headers
        self.body, self.keep_alive = body, keep_alive


class _Exchange:
    """One API call on the fast path, from the admitted request to the end of its answer."""

    __slots__ = ("front", "api", "started", "sent", "answered", "now", "account",
                 "key_id", "ip", "user_agent", "body", "data", "conn", "retried",
                 "status", "chunked", "encoding", "streamed", "chunks", "task", "done",
                 "headed", "ended")

    def __init__(self, front: _Front, api: str, started: float, now: float,
                 who: tuple[str | None, str | None, str | None], user_agent: str | None,
                 body: bytes, data: bytes) -> None:
        self.front, self.api, self.started, self.now = front, api, started, now
        self.account, self.key_id, self.ip = who
        self.user_agent, self.body, self.data = user_agent, body, data
        self.sent = self.answered = self.headed = 0.0  # headed: head's metrics not recorded
        self.ended = False  # the answer is whole; the connection's next request not begun
        self.conn: _UpstreamConnection | None = None
        self.retried = False
        self.status = 0
        self.chunked = False
        self.encoding: str | None = None
        self.streamed = False
        self.chunks: list[bytes] | None = [] if front.gateway.sink is not None else None
        self.task: asyncio.Task | None = None
        self.done = False

    # -- sending --
    def start(self) -> None:
        link = self.front.server.link
        conn = link.take_idle()
        if conn is not None:
            self._send(conn)
        else:
            self.task = link.loop.create_task(self._connect_and_send())

    async def _connect_and_send(self) -> None:
        try:
            conn = await self.front.server.link.acquire()
        except UpstreamFailure as error:
            self.task = None
            self._failed(error.kind, str(error))
            return
        self.task = None
        if self.done:  # the client left while we waited
            self.front.server.link.release(conn, True)
            return
        self._send(conn)

    def _send(self, conn: _UpstreamConnection) -> None:
        self.conn = conn
        self.sent = perf_counter()
        conn.send(self, self.data)

    # -- the answer (called by the upstream connection) --
    def upstream_headers(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        front = self.front
        gateway = front.gateway
        self.answered = perf_counter()
        gateway.upstream_state["ok"] = True
        self.status = status
        kept = []
        length = False
        for name, value in headers:
            lower = name.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == b"content-length":
                length = True
            elif lower == b"content-type":
                self.streamed = value.startswith(b"text/event-stream")
            elif lower == b"content-encoding":
                self.encoding = value.decode("latin-1")
            kept.append((name, value))
        if not length and status not in _NO_BODY_STATUS:
            self.chunked = True
            kept.append((b"transfer-encoding", b"chunked"))
        if not front.keep_alive:
            kept.append((b"connection", b"close"))
        front.write(_head(status, kept))
        self.headed = perf_counter()
        if front.held is None:
            self.settle()

    def upstream_body(self, chunk: bytes) -> None:
        if self.chunks is not None:
            self.chunks.append(chunk)
        if self.chunked:
            self.front.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            self.front.write(chunk)

    def upstream_done(self) -> None:
        if self.done:
            return
        self._log(None)  # before the answer's end leaves: a client that saw it may drain()
        if self.chunked:
            self.front.write(b"0\r\n\r\n")
        self.ended = True
        if self.front.held is None:
            self.settle()

    def settle(self) -> None:
        """What waits until the answer's bytes at hand have left (``_UpstreamConnection.
        data_received`` writes them in one go, then calls this): the head's metrics, and
        the next request of the connection once the answer is whole."""
        if self.headed:
            metrics = self.front.gateway.metrics
            metrics.request(self.api, self.status)
            metrics.timing(self.api, self.answered - self.sent,
                           (self.sent - self.started) + (self.headed - self.answered))
            self.headed = 0.0
        if self.ended:
            self.ended = False
            self.front.finished(self)

    def upstream_failed(self, kind: str, message: str, conn: _UpstreamConnection) -> None:
        if self.done:
            return
        if (kind == "unreachable" and not self.status and conn.served
                and not conn.received and not self.retried):
            # A kept-alive connection the upstream had closed: send once more on a new one.
            self.retried = True
            self.conn = None
            self.task = self.front.server.link.loop.create_task(self._connect_and_send())
            return
        if self.status:  # the answer had begun: it cannot be completed
            self._log("upstream_interrupted")
            self.front.abort(self)
            return
        self._failed(kind, message)

    def _failed(self, kind: str, message: str) -> None:
        if self.done:
            return
        front = self.front
        failed = perf_counter()
        answer = front.gateway.upstream_failure(
            self.api, self.api, kind, message, self.now, self.account, self.key_id,
            self.ip, self.user_agent, self.body)
        self.chunks = None  # logged by upstream_failure
        self.done = True
        front.answer(answer.status, answer.headers, answer.body)
        metrics = front.gateway.metrics
        metrics.request(self.api, answer.status)
        metrics.timing(self.api, failed - self.sent if self.sent else None,
                       (self.sent - self.started if self.sent else 0.0)
                       + (perf_counter() - failed))
        front.finished(self)

    # -- the end --
    def client_left(self) -> None:
        """The client closed its connection before the answer was whole."""
        if self.done:
            return
        if self.task is not None:
            self.task.cancel()
        if self.conn is not None:
            self.conn.abandon()
        self._log("client_disconnected")
        self.done = True

    def _log(self, error_type: str | None) -> None:
        self.done = True
        chunks, self.chunks = self.chunks, None
        if chunks is None:
            return
        self.front.gateway.sink.write(Seen(
            self.api, self.now, self.account, self.key_id, self.ip, self.user_agent,
            self.body, None, self.status or 502, b"".join(chunks), self.encoding,
            self.streamed, error_type))


class _Front(asyncio.Protocol):
    """One client connection: requests parsed by httptools, answered one at a time."""

    def __init__(self, server: FrontServer) -> None:
        self.server = server
        self.gateway = server.gateway
        self.loop = server.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] | None = None
        self.sockname: tuple[str, int] | None = None
        self.pending: deque[_Request] = deque()
        self.current: Any = None          # an _Exchange, a bridge task, or True (answering)
        self.keep_alive = True
        self.closed = False
        self.paused_reading = False
        self.writable: asyncio.Future | None = None  # set while the client's buffer is full
        self.last_active = 0.0  # loop time the last answer ended (idle close: FrontServer)
        self.held: list[bytes] | None = None  # writes held to leave together (flush)
        self._target = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    # -- asyncio --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        name = transport.get_extra_info("sockname")
        self.sockname = (name[0], name[1]) if isinstance(name, tuple) else None
        self.server.connections.add(self)
        self.last_active = self.loop.time()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(b"501 Not Implemented", b"protocol upgrades are not served")
        except httptools.HttpParserError as error:
            self._reject(b"400 Bad Request", f"malformed request: {error}".encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        current = self.current
        if isinstance(current, (_Exchange, _Bridge)):
            current.client_left()
        self.pending.clear()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        if self.writable is None or self.writable.done():
            self.writable = self.loop.create_future()
        if isinstance(self.current, _Exchange) and self.current.conn is not None:
            with contextlib.suppress(RuntimeError, AttributeError):
                self.current.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        if isinstance(self.current, _Exchange) and self.current.conn is not None:
            with contextlib.suppress(RuntimeError, AttributeError):
                self.current.conn.transport.resume_reading()

    # -- httptools --
    def on_message_begin(self) -> None:
        self._target, self._headers, self._body = b"", [], []

    def on_url(self, url: bytes) -> None:
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            if name == b"expect" and value.lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self.pending.append(_Request(self.parser.get_method(), self._target, self._headers,
                                     body, self.parser.should_keep_alive()))
        self._headers, self._body = [], []
        if self.current is None:
            self._next()
        elif len(self.pending) > 8 and not self.paused_reading:  # a client pipelining far
            self.paused_reading = True
            self.transport.pause_reading()

    # -- answering --
    def _next(self) -> None:
        while self.pending and self.current is None and not self.closed:
            request = self.pending.popleft()
            self.keep_alive = request.keep_alive
            path, _, _ = request.target.partition(b"?")
            api = _API_BY_RAW_PATH.get(path)
            if api is not None and request.method == b"POST":
                self._api_call(request, api)
            else:
                self._bridge(request, None)
        if self.paused_reading and len(self.pending) < 2 and not self.closed:
            self.paused_reading = False
            self.transport.resume_reading()
        if self.current is None:
            self.last_active = self.loop.time()

    def _api_call(self, request: _Request, api: str) -> None:
        started = perf_counter()
        gateway = self.gateway
        raw_headers = request.headers
        headers = dict(raw_headers)
        who = gateway.who(headers, raw_headers, self.peer)
        now = time.time()
        admission = gateway.admission(*who, now)
        kind = admission[0]
        body = request.body
        if kind != "allow" and kind != "monitor":
            gateway.admitted(admission, now)
            user_agent = user_agent_of(headers)
            if kind == "unavailable":
                self._refuse(api, "unavailable", started, None)
                return
            if kind in REFUSING:
                if gateway.sink is not None and gateway.policy.log_refused:
                    gateway.sink.write(Seen(api, now, *who, user_agent, body, None,
                                            429 if kind == "throttle" else 403, None,
                                            error_type=kind))
                self._refuse(api, kind, started, admission[1])
                return
        if kind == "monitor" and gateway.policy.withhold_reasoning:
            gateway.admitted(admission, now)
            self._bridge(request, (*who, now, kind, admission[1]))  # rewritten: ASGI
            return
        drop = _REQUEST_DROP
        connection = headers.get(b"connection")
        if connection is not None:
            drop = drop | {token.strip().lower() for token in connection.split(b",")}
        link = self.server.link
        data = b"".join((b"POST ", link.base_path, request.target, b" HTTP/1.1\r\nhost: ",
                         link.host_header, b"\r\n",
                         *[k + b": " + v + b"\r\n" for k, v in raw_headers if k not in drop],
                         b"content-length: %d\r\n\r\n" % len(body), body))
        exchange = _Exchange(self, api, started, now, who, None, body, data)
        self.current = exchange
        exchange.start()
        # What the request's way upstream need not wait for: its counting, the detector.
        gateway.admitted(admission, now)
        exchange.user_agent = user_agent = user_agent_of(headers)
        gateway.observe(api, *who, user_agent, body, now)

    def _refuse(self, api: str, kind: str, started: float, retry: int | None) -> None:
        gateway = self.gateway
        answer = gateway.answers.get(api, kind, retry)
        self.current = True
        self.answer(answer.status, answer.headers, answer.body)
        gateway.metrics.request(api, answer.status)
        gateway.metrics.timing(api, None, perf_counter() - started)
        self.finished(True)

    def _bridge(self, request: _Request, admission: tuple | None) -> None:
        bridge = _Bridge(self, request, admission)
        self.current = bridge
        bridge.task = self.loop.create_task(bridge.run())

    def _reject(self, status: bytes, message: bytes) -> None:
        if self.current is None and not self.closed:
            body = orjson.dumps({"error": {"message": message.decode("utf-8", "replace"),
                                           "type": "invalid_request_error"}})
            self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json"
                                 b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                                 % len(body) + body)
        self.keep_alive = False
        self._close()

    # -- used by exchanges and bridges --
    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if self.held is not None:
            self.held.append(data)
        else:
            self.transport.write(data)

    def flush(self) -> None:
        """Write what was held (see ``_UpstreamConnection.data_received``)."""
        held, self.held = self.held, None
        if held and not self.closed:
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    def _close(self, abort: bool = False) -> None:
        self.flush()
        if not self.closed:
            self.closed = True
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def answer(self, status: int, headers: Any, body: bytes) -> None:
        """A whole answer (its headers carry its Content-Length)."""
        if not self.keep_alive:
            headers = (*headers, (b"connection", b"close"))
        self.write(_head(status, headers) + body)

    def finished(self, current: Any) -> None:
        """The answer to the current request is complete."""
        if self.current is not current:
            return
        self.current = None
        if self.closed:
            return
        if not self.keep_alive:
            self._close()
            return
        self._next()

    def abort(self, current: Any) -> None:
        """The answer cannot be completed: the connection is cut (the client sees it)."""
        if self.current is current:
            self.current = None
        self._close(abort=True)

    def close_if_idle(self, now: float) -> None:
        """Close the connection if it has waited for a request for the keep-alive time."""
        if (self.current is None and not self.pending and not self.closed
                and now - self.last_active >= self.server.keepalive_s):
            self._close()


class _Bridge:
    """One request answered by the ASGI app (everything but the fast path)."""

    def __init__(self, front: _Front, request: _Request, admission: tuple | None) -> None:
        self.front, self.request = front, request
        self.task: asyncio.Task | None = None
        self.gone = front.loop.create_future()  # the client left, or the answer is complete
        self.started = False
        self.chunked = False
        self.complete = False
        self.head_only = request.method == b"HEAD"
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        path, _, query = request.target.partition(b"?")
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "scheme": "http", "method": request.method.decode("latin-1"),
            "path": unquote_to_bytes(path).decode("utf-8", "replace"), "raw_path": path,
            "query_string": query, "root_path": "", "headers": request.headers,
            "client": front.peer, "server": front.sockname}
        if admission is not None:
            self.scope[ADMISSION] = admission
        self._body_sent = False

    async def receive(self) -> dict:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": self.request.body, "more_body": False}
        await self.gone
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        front = self.front
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers") or ())
            return
        if kind != "http.response.body" or self.complete:
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if not self.started:
            self.started = True
            headers = self.headers
            if not any(k.lower() == b"content-length" for k, _ in headers) \
                    and self.status not in _NO_BODY_STATUS:
                if more:
                    self.chunked = True
                    headers.append((b"transfer-encoding", b"chunked"))
                else:
                    headers.append((b"content-length", b"%d" % len(body)))
            if not front.keep_alive:
                headers.append((b"connection", b"close"))
            front.write(_head(self.status, headers))
        if body and not self.head_only:
            front.write(b"%x\r\n%b\r\n" % (len(body), body) if self.chunked else body)
        if not more:
            self.complete = True
            if self.chunked and not self.head_only:
                front.write(b"0\r\n\r\n")
        elif front.writable is not None and not front.writable.done():
            await front.writable  # the client reads slowly: wait until it catches up

    async def run(self) -> None:
        front = self.front
        try:
            await self.front.server.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - one failing request must not end the server
            logger.exception("Error while answering %s %s", self.scope["method"],
                             self.scope["path"])
            if not self.started:
                body = b'{"error": {"message": "internal error", "type": "server_error"}}'
                front.answer(500, ((b"content-type", b"application/json"),
                                   (b"content-length", b"%d" % len(body))), body)
                self.started = self.complete = True
        if not self.gone.done():
            self.gone.set_result(None)
        if self.complete:
            front.finished(self)
        elif not self.started:
            front.answer(500, ((b"content-length", b"0"),), b"")
            front.finished(self)
        else:
            front.abort(self)

    def client_left(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)


# --- the server ------------------------------------------------------------------------------


class FrontServer:
    """Serves a gateway app: the fast path for API calls, the ASGI app for the rest.

    Args:
        app: The gateway app (:func:`distillwatch.gateway.app.build_app`).
        keepalive_s: Seconds an idle client connection is kept open.
        grace_s: On stop, seconds given to answers in progress before connections are cut.

    Example:
        >>> server = FrontServer(build_app(config))                 # doctest: +SKIP
        >>> asyncio.run(server.serve("127.0.0.1", 8080))            # doctest: +SKIP
    """

    def __init__(self, app: GatewayApp, *, keepalive_s: float = 75.0,
                 grace_s: float = 10.0) -> None:
        self.app = app
        self.gateway = app.state.gateway
        self.keepalive_s, self.grace_s = keepalive_s, grace_s
        self.connections: set[_Front] = set()
        self.link: UpstreamLink | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None

    async def serve(self, host: str = "127.0.0.1", port: int = 8080, *,
                    sock: socket.socket | None = None, stop: asyncio.Event | None = None,
                    on_ready: Callable[[FrontServer], None] | None = None,
                    handle_signals: bool = False) -> None:
        """Start the gateway, serve until ``stop`` is set (or SIGINT / SIGTERM with
        ``handle_signals``), then stop accepting, let answers in progress finish (up to
        ``grace_s``) and shut the gateway down."""
        self.loop = loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        policy = self.gateway.policy
        async with self.app.router.lifespan_context(self.app):
            self.link = UpstreamLink(
                self.gateway.upstream, max_connections=policy.max_connections,
                max_idle=policy.max_idle_connections,
                keepalive_expiry=policy.keepalive_expiry_s,
                connect_timeout=policy.connect_timeout_s, read_timeout=policy.read_timeout_s)
            self.gateway.front_link = self.link
            self.gateway.metrics.watch(
                "distillwatch_gateway_upstream_connections", "gauge",
                "Open connections to the upstream (the fast path's pool)",
                lambda: len(self.link.open) if self.link else 0)
            if sock is not None:
                server = await loop.create_server(lambda: _Front(self), sock=sock, backlog=4096)
            else:
                server = await loop.create_server(lambda: _Front(self), host, port,
                                                  backlog=4096, reuse_address=True)
            self.port = server.sockets[0].getsockname()[1]
            if on_ready is not None:
                on_ready(self)
            sweeper = loop.create_task(self._sweep())
            try:
                await stop.wait()
            finally:
                sweeper.cancel()
                server.close()
                await self._drain()
                self.link.close()
                with contextlib.suppress(Exception):
                    await server.wait_closed()

    async def _sweep(self) -> None:
        # One timer for every connection (not one per request): idle client connections are
        # closed, upstream calls silent for the read timeout fail (to within a quarter of it).
        link = self.link
        period = max(0.02, min(1.0, link.read_timeout / 4, (self.keepalive_s or 60) / 4))
        while True:
            await asyncio.sleep(period)
            now = self.loop.time()
            if self.keepalive_s:
                for front in list(self.connections):
                    front.close_if_idle(now)
            for conn in list(link.open):
                conn.check_timeout(now)

    async def _drain(self) -> None:
        for front in list(self.connections):
            if front.current is None:
                front._close()
        deadline = time.monotonic() + self.grace_s
        while any(front.current is not None for front in self.connections) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for front in list(self.connections):
            front.keep_alive = False
            front._close(abort=True)
