"""The gateway service: a Starlette app that proxies LLM API calls and enforces decisions.

Built by :func:`build_app` from a :class:`GatewayConfig`; served by uvicorn (``distillwatch
serve``). Per request (``/v1/...``):

1. identity (account header or key map, key id) and client IP (trusted proxies);
2. ``state.decision_for`` (a local lookup; Redis is never waited on here): ``throttle`` →
   429, ``verify`` / ``block`` → 403, in the API's error shape; fail-closed without Redis → 503;
3. the request goes upstream byte for byte (hop-by-hop headers dropped) through one pooled
   ``aiohttp`` client (:class:`~distillwatch.gateway.network.UpstreamPool`); the answer comes
   back with its status and headers, streamed chunk by chunk when it is a server-sent event
   stream (``monitor`` with ``withhold_reasoning`` blanks reasoning text on the way);
4. the detector (if any) is handed the request as sent, the sink the raw exchange: both only
   enqueue.

``/v1/...`` is served by a raw ASGI handler (:meth:`Gateway.proxy`, dispatched by
:class:`GatewayApp` ahead of Starlette's routing); Starlette serves the rest.

Admin routes (``/admin/...``, ``/metrics``) need ``Authorization: Bearer <token>``; without a
token file they are not served. ``/healthz`` needs no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any
from urllib.parse import quote_from_bytes

import orjson
from multidict import CIMultiDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from yarl import URL

from distillwatch.exceptions import DistillwatchConfigError, DistillwatchError
from distillwatch.fingerprint.addresses import HOST_BITS_V6, host_of, normalise_ip
from distillwatch.gateway.decisions import (
    DECISION_KINDS,
    REFUSING,
    Decision,
    GatewayPolicy,
    ScanDecisions,
    load_scan,
    parse_subject,
    resolve,
    scan_files,
)
from distillwatch.gateway.errors import (
    WITHHELD_HEADER,
    Canned,
    CannedAnswers,
    SseWithholder,
    withhold_json,
)
from distillwatch.gateway.identity import DEFAULT_ACCOUNT_HEADER, Identity
from distillwatch.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from distillwatch.gateway.network import (
    UPSTREAM_ERRORS,
    ClientAddress,
    UpstreamPool,
    failure_kind,
)
from distillwatch.gateway.sink import ExchangeSink, Seen, decode_body
from distillwatch.gateway.state import Addition, LocalState, RedisState, StateUnavailable

logger = logging.getLogger(__name__)
# A request's admission (:meth:`Gateway.admission`): decision kind, seconds to retry after
# (a rate limit's throttle), the decision's source, the subjects to count against the rate
# limits once it goes on (None: not counted).
Admission = tuple[str, "int | None", str, "tuple[str | None, ...] | None"]

API_BY_PATH = {"/v1/chat/completions": "openai_chat", "/v1/responses": "openai_responses",
               "/v1/completions": "openai_completions", "/v1/messages": "anthropic_messages"}
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate",
                         b"proxy-authorization", b"te", b"trailer", b"trailers",
                         b"transfer-encoding", b"upgrade"})
_REQUEST_DROP = _HOP_BY_HOP | {b"host", b"content-length"}
_REQUEST_DROP_STREAMED = _HOP_BY_HOP | {b"host"}
_RESPONSE_DROP = _HOP_BY_HOP | {b"content-length"}
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
_METHOD_SET = frozenset(_METHODS)
DEFAULT_KEY = b"distillwatch-unkeyed"
# Scope key under which serve's own front end hands a request it has admitted already
# (account, key id, IP, time, decision, retry-after) to the ASGI path.
ADMISSION = "distillwatch.admission"


# --- the detector seam -----------------------------------------------------------------------


class DetectorLink:
    """What the app needs of an online detector: ``observe`` (never blocks), ``run`` (the
    background loop), ``reload`` (async, after the scan folder changed) and ``summary``
    (for ``/admin/indicators``).

    Wraps :class:`distillwatch.gateway.detector.OnlineDetector`; tests hand the app their own
    object with these methods instead.
    """

    def __init__(self, detector: Any, observed: type, config: GatewayConfig,
                 indicators_type: Any) -> None:
        self.detector = detector
        self._observed = observed
        self._config = config
        self._indicators_type = indicators_type

    def observe(self, api: str, account: str | None, key_id: str | None, ip: str | None,
                user_agent: str | None, body: dict | bytes, ts: float) -> None:
        self.detector.observe(self._observed(account, key_id, ip, user_agent, api, body, ts))

    async def run(self) -> None:
        await self.detector.run()

    async def reload(self) -> None:
        """Re-read the indicators (in a thread), then swap them in (on the loop)."""
        config = self._config
        indicators = await asyncio.to_thread(
            self._indicators_type.build, scan_dir=config.scan_dir, stix=config.stix,
            accounts=config.accounts, key=config.key)
        self.detector.reload(indicators)

    def summary(self) -> dict:
        summary = self.detector.indicators.summary()
        stats = getattr(self.detector, "stats", None)
        if stats is not None:
            summary = {**summary, "detector_stats": dict(stats)}
        return summary

    def dropped(self) -> float:
        return float(getattr(self.detector, "stats", {}).get("dropped", 0))


def default_detector(config: GatewayConfig, counters: Any) -> DetectorLink | None:
    """The online detector of ``distillwatch.gateway.detector``, if it can be built.

    None when the module is not importable, or when there is nothing to match (no scan, no
    STIX bundle, no account file).
    """
    if config.scan_dir is None and not config.stix and not config.accounts:
        return None
    try:
        from distillwatch.gateway import detector as module
        from distillwatch.gateway.indicators import Indicators
    except ImportError as error:
        logger.warning("Online detector unavailable (%s): enforcing scan and admin decisions "
                       "only", error)
        return None
    indicators = Indicators.build(scan_dir=config.scan_dir, stix=config.stix,
                                  accounts=config.accounts, key=config.key)
    settings = module.DetectorSettings.from_path_or_dict(config.detector_settings)
    detector = module.OnlineDetector(indicators, counters, key=config.key, settings=settings)
    return DetectorLink(detector, module.Observed, config, Indicators)


@dataclass
class GatewayConfig:
    """Everything :func:`build_app` needs (the CLI fills it from its options).

    Attributes:
        upstream: Base URL the ``/v1/...`` paths are appended to, e.g. ``http://10.0.0.2:8000``.
        policy: The gateway policy.
        scan_dir: A scan output folder whose decisions (and indicators) are enforced.
        accounts: Account files for the detector (payment fingerprints, verified, ...).
        stix: Partner STIX bundles for the detector.
        detector_settings: The detector's YAML settings (None: built-in).
        redis_url: Share state through this Redis (None: in-process).
        redis_prefix: Prefix of the Redis keys (one per deployment).
        admin_token: Bearer token of the admin API (None: admin API and /metrics disabled).
        trusted_proxies: CIDRs whose ``X-Forwarded-For`` is believed.
        log_dir: Where the Exchange log goes (None: no log).
        account_header: Header carrying the account id.
        key_map: Key id → account, for requests without the header.
        key: The fingerprint key (key ids, detector fingerprints).
        detector: Builds the online detector from the config and the counters (default
            :func:`default_detector`: the real one when indicators are given); None: none.
    """

    upstream: str
    policy: GatewayPolicy = field(default_factory=GatewayPolicy)
    scan_dir: Path | None = None
    accounts: tuple[Path, ...] = ()
    stix: tuple[Path, ...] = ()
    detector_settings: Path | None = None
    redis_url: str | None = None
    redis_prefix: str = "distillwatch"
    admin_token: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    log_dir: Path | None = None
    account_header: str = DEFAULT_ACCOUNT_HEADER
    key_map: dict[str, str] = field(default_factory=dict)
    key: bytes = DEFAULT_KEY
    detector: Callable[[GatewayConfig, Any], Any] | None = default_detector

    def __post_init__(self) -> None:
        try:
            url = URL(self.upstream)
        except (ValueError, TypeError):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            raise DistillwatchConfigError(
                f"--upstream {self.upstream!r} must be an http(s) URL, e.g. "
                "http://127.0.0.1:8000 (the /v1/... paths are appended to it)")


class _CountingCounters:
    """The state as the detector sees it: every decision it sets is counted as a matcher hit."""

    def __init__(self, state: LocalState, metrics: GatewayMetrics) -> None:
        self._state, self._metrics = state, metrics

    async def add_many(self, additions: Sequence[Addition]) -> list[float]:
        return await self._state.add_many(additions)

    async def set_decision(self, subject: str, decision: Decision) -> None:
        self._metrics.matcher_hits.labels(decision.kind).inc()
        await self._state.set_decision(subject, decision)

    async def get_decision(self, subject: str) -> Decision | None:
        return await self._state.get_decision(subject)


# --- responses -------------------------------------------------------------------------------


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client left first."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


class ClientDisconnected(Exception):
    """The client left while its request body was streamed upstream."""


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives (pass-through paths: uploads are not held whole)."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected("the client left before its request body was sent")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _client_left(error: BaseException) -> bool:
    """True if ``error`` came of :func:`_stream_body` finding the client gone."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, ClientDisconnected):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _target_text(raw: bytes) -> str:
    # The request target as sent; bytes outside ASCII (which aiohttp would write as UTF-8)
    # percent-encoded, as an HTTP client must.
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return quote_from_bytes(raw, safe="!#$%&'()*+,/:;=?@[]~")


def _header_text(value: bytes) -> str:
    # aiohttp writes header values as UTF-8: a value that is UTF-8 passes byte for byte;
    # anything else (rare, obsolete) as Latin-1 read into UTF-8.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def user_agent_of(headers: dict[bytes, bytes]) -> str | None:
    """A request's ``User-Agent`` (lower-case header names) as text, or None."""
    value = headers.get(b"user-agent")
    return value.decode("utf-8", "replace") if value else None


def _json(data: Any, status: int = 200) -> Response:
    body = orjson.dumps(data)
    response = Response(body, status_code=status)
    response.raw_headers = [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]
    return response


# --- the gateway -----------------------------------------------------------------------------


class Gateway:
    """The components behind the app (state, identity, sink, detector, upstream client).

    Args:
        config: What to build.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.policy = policy = config.policy
        self.metrics = GatewayMetrics()
        self.identity = Identity(config.key, config.account_header, config.key_map)
        self.addresses = ClientAddress(config.trusted_proxies)
        if config.redis_url:
            self.state: LocalState = RedisState(
                config.redis_url, policy, config.redis_prefix,
                on_error=lambda _error: self.metrics.redis_errors.inc())
        else:
            self.state = LocalState(policy)
        self.answers = CannedAnswers(policy.retry_after_s, policy.verification_url)
        self.sink = (ExchangeSink(config.log_dir, rotate_bytes=int(policy.rotate_mb * (1 << 20)),
                                  rotate_s=policy.rotate_s, queue_size=policy.queue_size,
                                  level=policy.compress_level,
                                  writer_nice=policy.writer_nice)
                     if config.log_dir else None)
        self.upstream = config.upstream.rstrip("/")
        self._urls: dict[tuple[bytes, bytes | None], URL] = {}  # (raw path, query) → URL
        self.pool: UpstreamPool | None = None   # the ASGI path's upstream client
        self.front_link: Any = None             # serve's front end's (relay.UpstreamLink)
        self.detector: Any = None
        self.scan: ScanDecisions | None = None
        self._scan_signature: tuple | None = None
        self._tasks: list[asyncio.Task] = []
        self.upstream_state: dict[str, Any] = {"ok": None, "last_error": None,
                                               "last_error_at": None}
        self._upstream_logged_at = 0.0
        if config.scan_dir is not None:
            self._load_scan()  # at build time: a broken scan folder stops the start
        if config.detector is not None:
            self.detector = config.detector(config, _CountingCounters(self.state, self.metrics))
        self.metrics.watch("distillwatch_gateway_sink_queue_depth", "gauge",
                           "Exchanges waiting to be logged",
                           lambda: self.sink.depth if self.sink else 0)
        self.metrics.watch("distillwatch_gateway_sink_dropped_total", "counter",
                           "Exchanges dropped because the log queue was full",
                           lambda: self.sink.dropped if self.sink else 0)
        self.metrics.watch("distillwatch_gateway_sink_written_total", "counter",
                           "Exchanges logged", lambda: self.sink.written if self.sink else 0)
        self.metrics.watch("distillwatch_gateway_detector_dropped_total", "counter",
                           "Observations the detector dropped (queue full)",
                           lambda: self.detector.dropped() if self.detector and hasattr(
                               self.detector, "dropped") else 0)

    # -- lifecycle --
    def _load_scan(self) -> None:
        self.scan = load_scan(self.config.scan_dir)
        self.state.set_scan(self.scan.decisions)
        self._scan_signature = self._signature()

    def _signature(self) -> tuple:
        out = []
        for path in scan_files(self.config.scan_dir):
            try:
                stat = path.stat()
                out.append((stat.st_mtime_ns, stat.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    async def startup(self) -> None:
        """Open the upstream pool, connect the state, start the sink, detector and reloader."""
        policy = self.policy
        # One pooled client for every user: no cookie jar (an upstream's Set-Cookie is never
        # sent on someone else's request), no headers or decompression of its own.
        pool = UpstreamPool(policy.max_connections, policy.max_idle_connections,
                            policy.keepalive_expiry_s, connect_timeout=policy.connect_timeout_s,
                            read_timeout=policy.read_timeout_s)
        await pool.start()
        self.pool = pool
        await self.state.start()
        if self.sink is not None:
            self.sink.start()
        if self.detector is not None:
            self._tasks.append(asyncio.create_task(self.detector.run(),
                                                   name="distillwatch-detector"))
        if self.config.scan_dir is not None:
            self._tasks.append(asyncio.create_task(self._watch_scan(),
                                                   name="distillwatch-scan-reload"))

    async def shutdown(self) -> None:
        """Stop the background tasks, flush the log, close connections."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.pool is not None:
            await self.pool.aclose()
        await self.state.close()
        if self.sink is not None:
            await asyncio.to_thread(self.sink.close)

    async def _watch_scan(self) -> None:
        # A changed file is re-read once its size and time have held for one poll: a scan
        # still writing accounts.jsonl is not read half-written.
        seen = self._scan_signature
        while True:
            await asyncio.sleep(self.policy.scan_reload_s)
            current = self._signature()
            if current == self._scan_signature:
                seen = current
                continue
            if current != seen:
                seen = current
                continue
            try:
                scan = await asyncio.to_thread(load_scan, self.config.scan_dir)
            except DistillwatchError as error:
                logger.error("Scan folder changed but cannot be read; the previous decisions "
                             "stay in force: %s", error)
                self._scan_signature = current
                continue
            self.scan = scan
            self.state.set_scan(scan.decisions)
            self._scan_signature = current
            logger.info("Reloaded %s: %d decisions %s", self.config.scan_dir,
                        len(scan.decisions), scan.counts)
            if self.detector is not None and hasattr(self.detector, "reload"):
                try:
                    await self.detector.reload()
                except DistillwatchError as error:
                    logger.error("Detector indicators not reloaded: %s", error)
            if gc.get_freeze_count():  # serving frozen (build_app): freeze the new scan too,
                gc.unfreeze()            # once the old one is collected (one full collection)
                _freeze_heap()

    # -- the proxy --
    # A raw ASGI handler (no Starlette request or response objects on this path): it reads
    # the scope as uvicorn gives it and sends the answer as ASGI messages.
    def who(self, headers: dict[bytes, bytes], raw_headers: Any,
            peer: tuple[str, int] | None) -> tuple[str | None, str | None, str | None]:
        """Account, key id and client IP of a request: its headers (lower-case names; as a
        dict and as the raw list, for a repeated ``X-Forwarded-For``) and TCP peer."""
        account, key_id = self.identity.resolve(headers)
        ip = peer[0] if peer else None
        if self.addresses.networks:
            forwarded = b",".join(v for k, v in raw_headers if k == b"x-forwarded-for")
            ip = self.addresses.resolve(ip, forwarded.decode("latin-1") if forwarded else None)
        return account, key_id, ip

    def decide(self, account: str | None, key_id: str | None, ip: str | None, now: float
               ) -> tuple[str, int | None]:
        """The decision in force for a request (counted in the metrics, and against the rate
        limits if the request may pass) and, for a rate limit's throttle, the seconds until
        it lifts; ``unavailable`` under fail-closed while the shared state is unreachable."""
        admission = self.admission(account, key_id, ip, now)
        self.admitted(admission, now)
        return admission[0], admission[1]

    def admission(self, account: str | None, key_id: str | None, ip: str | None, now: float
                  ) -> Admission:
        """:meth:`decide` without its bookkeeping, which :meth:`admitted` does: the relay
        sends the request upstream in between, so that counting it is not in its way."""
        if not self.state.available:
            return ("unavailable", None, "state", None)
        decision, counted = self.state.check(account, key_id, ip, now)
        if decision is None:
            return ("allow", None, "default", counted)
        retry = None
        if decision.kind == "throttle" and decision.source == "limit" and decision.expires_at:
            retry = max(1, math.ceil(decision.expires_at - now))
        return (decision.kind, retry, decision.source, counted)

    def admitted(self, admission: Admission, now: float) -> None:
        """Count a request's decision in the metrics, and the request against the rate
        limits if it went on (:meth:`admission`)."""
        self.metrics.decision(admission[0], admission[2])
        if admission[3] is not None:
            self.state.count(admission[3], now)

    def observe(self, api: str, account: str | None, key_id: str | None, ip: str | None,
                user_agent: str | None, body: bytes, now: float) -> None:
        """Hand a request that passes to the online detector (if any), its body as sent: the
        fingerprinting worker parses it (nothing to parse on the request path, nothing large
        to pickle for the worker, no parsed bodies for the garbage collector to walk while
        they wait). The exchange log's writer parses what it logs."""
        if self.detector is not None:
            self.detector.observe(api, account, key_id, ip, user_agent, body, now)

    async def _send_refusal(self, send: Send, api: str | None, kind: str, route: str,
                            started: float, retry_after: int | None = None) -> None:
        answer = self.answers.get(api, kind, retry_after)
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})
        self.metrics.request(route, answer.status)
        self.metrics.timing(route, None, perf_counter() - started)

    def _upstream_url(self, target: tuple[bytes, bytes | None]) -> URL:
        # The path and query as the client sent them (encoded=True: yarl re-quotes nothing).
        raw_path, query = target
        url = URL(self.upstream + _target_text(raw_path)
                  + ("?" + _target_text(query) if query else ""), encoded=True)
        if len(self._urls) >= 1024:
            self._urls.clear()
        self._urls[target] = url
        return url

    async def proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward one ``/v1/...`` request (an ASGI ``http`` scope), or refuse it.

        Timing (``distillwatch_gateway_overhead_seconds``): from this handler's start to the
        request handed to the upstream client, plus from the upstream's response headers
        back to the answer handed to the server (a whole JSON answer: its body read and
        written included; a stream: its response start, not the relay of its chunks). Not
        in it: uvicorn's parsing of the request and writing of the answer, the HTTP client's
        own work between request handed over and response headers parsed (that is in
        ``distillwatch_gateway_upstream_seconds``, with the upstream's time), and any wait
        for the event loop before this handler ran.
        """
        started = perf_counter()
        path = scope["path"]
        api = API_BY_PATH.get(path)
        route = api or "other"
        raw_headers = scope["headers"]
        headers = dict(raw_headers)
        metrics = self.metrics
        admitted = scope.get(ADMISSION)
        if admitted is None:
            account, key_id, ip = self.who(headers, raw_headers, scope.get("client"))
            now = time.time()
            kind, retry = self.decide(account, key_id, ip, now)
        else:  # decided already by the front end (serve's own server), not counted twice
            account, key_id, ip, now, kind, retry = admitted
        if kind == "unavailable":
            await self._send_refusal(send, api, "unavailable", route, started)
            return
        user_agent = user_agent_of(headers)
        sink = self.sink
        if kind in REFUSING:
            if sink is not None and api is not None and self.policy.log_refused:
                body = await _read_body(receive)
                if body is None:
                    return  # the client left
                status = 429 if kind == "throttle" else 403
                sink.write(Seen(api, now, account, key_id, ip, user_agent, body, None,
                                status, None, error_type=kind))
            await self._send_refusal(send, api, kind, route, started, retry)
            return
        withhold = kind == "monitor" and self.policy.withhold_reasoning and api is not None
        method = scope["method"]
        if api is not None:
            body = await _read_body(receive)
            if body is None:
                return  # the client left before its request was whole: nobody to answer
            drop = _REQUEST_DROP
            content: Any = body
            self.observe(api, account, key_id, ip, user_agent, body, now)
        else:
            body = b""
            streamed_body = b"content-length" in headers or b"transfer-encoding" in headers
            if method in _BODYLESS and not streamed_body:
                content, drop = None, _REQUEST_DROP
            else:
                content, drop = _stream_body(receive), _REQUEST_DROP_STREAMED
        if b"connection" in headers:
            drop = drop | {token.strip().lower() for token in headers[b"connection"].split(b",")}
        out_headers = [(k.decode("latin-1"), _header_text(v)) for k, v in raw_headers
                       if k not in drop]
        if withhold:  # the answer is parsed on the way: ask for it uncompressed
            out_headers = [(k, v) for k, v in out_headers if k != "accept-encoding"]
            out_headers.append(("accept-encoding", "identity"))
        target = (scope.get("raw_path") or path.encode("utf-8"), scope.get("query_string"))
        url = self._urls.get(target)
        if url is None:
            url = self._upstream_url(target)
        sent = perf_counter()
        try:
            upstream = await self.pool.request(method, url, CIMultiDict(out_headers), content)
        except UPSTREAM_ERRORS as error:
            if _client_left(error):
                return  # the client left while its body was streamed: not the upstream's fault
            await self._upstream_failed(send, api, route, started, sent, error, now, account,
                                        key_id, ip, user_agent, body)
            return
        answered = perf_counter()
        self.upstream_state["ok"] = True
        status = upstream.status
        response_headers = [(k.lower(), v) for k, v in upstream.raw_headers]
        upstream_headers = upstream.headers
        content_type = upstream_headers.get("content-type", "")
        streamed = content_type.startswith("text/event-stream")
        logging_on = sink is not None and api is not None
        encoding = upstream_headers.get("content-encoding")
        if api is None or streamed:
            # A stream compressed despite the identity asked for cannot be filtered on the
            # way: it passes as sent (and is not marked withheld).
            withholder = (SseWithholder(api) if withhold and streamed
                          and encoding in (None, "identity") else None)
            kept = [(k, v) for k, v in response_headers if k not in _HOP_BY_HOP
                    and not (withholder is not None and k == b"content-length")]
            if withholder is not None:
                kept.append(WITHHELD_HEADER)
            seen = (Seen(api, now, account, key_id, ip, user_agent, body, None, status, None,
                         encoding, True)
                    if logging_on else None)
            await self._relay(receive, send, upstream, status, kept, seen, withholder, route,
                              answered - sent, sent - started, answered)
            return
        try:
            raw = await upstream.read()
        except UPSTREAM_ERRORS as error:
            upstream.close()
            await self._upstream_failed(send, api, route, started, sent, error, now, account,
                                        key_id, ip, user_agent, body)
            return
        except BaseException:
            upstream.close()
            raise
        read = perf_counter()
        kept = [(k, v) for k, v in response_headers if k not in _RESPONSE_DROP]
        if logging_on:
            sink.write(Seen(api, now, account, key_id, ip, user_agent, body, None, status,
                            raw, encoding, False))
        if withhold:
            raw, kept = self._withhold_json(api, status, raw, kept, encoding)
        kept.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": kept})
        await send({"type": "http.response.body", "body": raw})
        metrics.request(route, status)
        metrics.timing(route, read - sent, (sent - started) + (perf_counter() - read))

    def _withhold_json(self, api: str, status: int, raw: bytes,
                       headers: list[tuple[bytes, bytes]], encoding: str | None
                       ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        headers = [*headers, WITHHELD_HEADER]
        if not 200 <= status < 300:
            return raw, headers
        decoded = decode_body(raw, encoding)
        if decoded is None:
            return raw, headers
        try:
            document = orjson.loads(decoded)
        except orjson.JSONDecodeError:
            return raw, headers
        if not isinstance(document, dict) or not withhold_json(api, document):
            return raw, headers
        headers = [(k, v) for k, v in headers if k != b"content-encoding"]
        return orjson.dumps(document), headers

    def upstream_failure(self, api: str | None, route: str, kind: str, error: str, now: float,
                         account: str | None, key_id: str | None, ip: str | None,
                         user_agent: str | None, body: bytes) -> Canned:
        """Record an upstream call that failed (``kind``: ``timeout`` or ``unreachable``;
        ``error``: what happened, for the log and /healthz): one warning when failures start
        and then at most every 10 s, the upstream's health, the exchange log. Returns the
        answer for the client (502 / 504 in the API's error shape)."""
        if self.upstream_state["ok"] is not False or now - self._upstream_logged_at >= 10:
            logger.warning("Upstream %s for %s: %s", kind, route, error)
            self._upstream_logged_at = now
        self.upstream_state.update(ok=False, last_error=error, last_error_at=now)
        if self.sink is not None and api is not None:
            status = 504 if kind == "timeout" else 502
            self.sink.write(Seen(api, now, account, key_id, ip, user_agent, body, None, status,
                                 None, error_type=f"upstream_{kind}"))
        return self.answers.get(api, kind)

    async def _upstream_failed(self, send: Send, api: str | None, route: str, started: float,
                               sent: float, error: BaseException, now: float,
                               account: str | None, key_id: str | None, ip: str | None,
                               user_agent: str | None, body: bytes) -> None:
        failed = perf_counter()
        answer = self.upstream_failure(api, route, failure_kind(error),
                                       f"{type(error).__name__}: {error}", now, account,
                                       key_id, ip, user_agent, body)
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": answer.headers})
        await send({"type": "http.response.body", "body": answer.body})
        self.metrics.request(route, answer.status)
        self.metrics.timing(route, failed - sent, (sent - started) + (perf_counter() - failed))

    async def _relay(self, receive: Receive, send: Send, upstream: Any, status: int,
                     headers: list[tuple[bytes, bytes]], seen: Seen | None,
                     withholder: SseWithholder | None, route: str, upstream_s: float,
                     before_s: float, answered: float) -> None:
        """Stream the answer chunk by chunk; a client that leaves ends it (and closes the
        upstream response) at once, even while the upstream is silent."""
        chunks: list[bytes] | None = [] if seen is not None else None
        error_type = None
        task = asyncio.current_task()
        state = {"gone": False, "done": False}

        async def watch() -> None:
            # uvicorn says http.disconnect when the client leaves (or the answer is complete).
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not state["done"]:
                        state["gone"] = True
                        task.cancel()
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            self.metrics.request(route, status)
            self.metrics.timing(route, upstream_s, before_s + (perf_counter() - answered))
            async for chunk in upstream.content.iter_any():
                if chunks is not None:
                    chunks.append(chunk)
                if withholder is not None:
                    chunk = withholder.feed(chunk)
                    if not chunk:
                        continue
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if withholder is not None:
                tail = withholder.close()
                if tail:
                    await send({"type": "http.response.body", "body": tail, "more_body": True})
            state["done"] = True
            await send({"type": "http.response.body", "body": b""})
        except UPSTREAM_ERRORS:
            error_type = "upstream_interrupted"
            raise
        except asyncio.CancelledError:
            error_type = "client_disconnected"
            if not state["gone"]:
                raise
            task.uncancel()  # our own cancel: the client left, the relay ends quietly
        finally:
            state["done"] = True
            watcher.cancel()
            if error_type is None:
                upstream.release()  # read to its end: the connection goes back to the pool
            else:
                upstream.close()
            if seen is not None:
                seen.response_body = b"".join(chunks)
                seen.error_type = error_type
                self.sink.write(seen)

    # -- admin --
    def _authorised(self, request: Request) -> bool:
        token = self.config.admin_token
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode())

    @staticmethod
    def _unauthorised() -> Response:
        response = _json({"error": "admin token required: Authorization: Bearer <token>"},
                         401)
        response.raw_headers.append((b"www-authenticate", b'Bearer realm="distillwatch"'))
        return response

    @staticmethod
    def _subject(text: str) -> str:
        kind, value = parse_subject(text)
        if kind == "ip":
            # An IPv6 client is its /64 (fingerprint.addresses); the /64 may be given as such.
            address = normalise_ip(value.removesuffix(f"/{HOST_BITS_V6}"))
            if address is None or (value.endswith(f"/{HOST_BITS_V6}") and ":" not in address):
                raise DistillwatchConfigError(
                    f"{value!r} is not an IP address (or an IPv6 /{HOST_BITS_V6})")
            value = host_of(address)
        elif kind == "key" and not value.startswith("kid-"):
            raise DistillwatchConfigError(
                "Give a key id (kid-…, from `distillwatch serve --hash-keys`), never a key")
        return f"{kind}:{value}"

    async def admin_list(self, request: Request) -> Response:
        """GET /admin/decisions[?layer=admin|detector|scan&kind=...&limit=N]."""
        if not self._authorised(request):
            return self._unauthorised()
        layer = request.query_params.get("layer")
        kind = request.query_params.get("kind")
        try:
            limit = int(request.query_params.get("limit", "1000"))
        except ValueError:
            return _json({"error": "limit must be an integer"}, 400)
        layers = [layer] if layer else ["admin", "detector", "scan"]
        if any(name not in self.state.layers for name in layers):
            return _json({"error": "layer must be admin, detector or scan"}, 400)
        if kind is not None and kind not in DECISION_KINDS:
            return _json({"error": f"kind must be one of {', '.join(DECISION_KINDS)}"}, 400)
        now = time.time()
        out, counts, matched = [], {}, 0
        for name in layers:
            live = self.state.list_decisions(name, now)
            counts[name] = len(live)
            for subject, decision in live.items():
                if kind is not None and decision.kind != kind:
                    continue
                matched += 1
                if len(out) < limit:
                    out.append({"subject": subject, "layer": name, **decision.to_dict()})
        return _json({"decisions": out, "counts": counts, "truncated": matched > len(out)})

    async def admin_get(self, request: Request) -> Response:
        """GET /admin/decisions/{subject}: the decision in force and each layer's."""
        if not self._authorised(request):
            return self._unauthorised()
        try:
            subject = self._subject(request.path_params["subject"])
        except DistillwatchConfigError as error:
            return _json({"error": str(error)}, 400)
        now = time.time()
        layers = {name: self.state.layers[name].get(subject) for name in self.state.layers}
        layers = {name: (d.to_dict() if d and not d.expired(now) else None)
                  for name, d in layers.items()}
        effective = resolve((self.state.layers["admin"].get(subject),),
                            (self.state.layers["scan"].get(subject),
                             self.state.layers["detector"].get(subject)), now)
        return _json({"subject": subject,
                      "effective": effective.to_dict() if effective else None, **layers})

    async def admin_put(self, request: Request) -> Response:
        """PUT /admin/decisions/{subject} with {"kind", "reason", "ttl", "campaign_id"}."""
        if not self._authorised(request):
            return self._unauthorised()
        try:
            subject = self._subject(request.path_params["subject"])
            data = orjson.loads(await request.body())
            if not isinstance(data, dict):
                raise DistillwatchConfigError("The body must be a JSON object")
            unknown = set(data) - {"kind", "reason", "ttl", "campaign_id"}
            if unknown:
                raise DistillwatchConfigError(
                    f"Unknown field(s) {', '.join(sorted(unknown))}; give kind, reason, ttl "
                    "(seconds), campaign_id")
            ttl = data.get("ttl")
            if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                                    or ttl <= 0):
                raise DistillwatchConfigError("ttl must be a number of seconds > 0")
            reason = data.get("reason") or ""
            if not isinstance(reason, str):
                raise DistillwatchConfigError("reason must be a string")
            decision = Decision(str(data.get("kind")), reason=reason, source="admin",
                                campaign_id=data.get("campaign_id"),
                                expires_at=time.time() + ttl if ttl else None)
        except orjson.JSONDecodeError:
            return _json({"error": "The body must be JSON, e.g. {\"kind\": \"block\", "
                                   "\"reason\": \"...\", \"ttl\": 86400}"}, 400)
        except DistillwatchConfigError as error:
            return _json({"error": str(error)}, 400)
        try:
            await self.state.set_override(subject, decision)
        except StateUnavailable as error:
            return _json({"error": str(error)}, 503)
        logger.info("Admin decision %s for %s (%s)", decision.kind, subject, reason)
        return _json({"subject": subject, "decision": decision.to_dict()})

    async def admin_delete(self, request: Request) -> Response:
        """DELETE /admin/decisions/{subject}[?layer=detector]: clear an admin (or detector)
        decision."""
        if not self._authorised(request):
            return self._unauthorised()
        layer = request.query_params.get("layer", "admin")
        if layer not in ("admin", "detector"):
            return _json({"error": "layer must be admin or detector (scan decisions change "
                                   "with the scan)"}, 400)
        try:
            subject = self._subject(request.path_params["subject"])
        except DistillwatchConfigError as error:
            return _json({"error": str(error)}, 400)
        try:
            had = await (self.state.clear_override(subject) if layer == "admin"
                         else self.state.clear_decision(subject))
        except StateUnavailable as error:
            return _json({"error": str(error)}, 503)
        if not had:
            return _json({"subject": subject, "deleted": False,
                          "error": f"no {layer} decision for {subject}"}, 404)
        return _json({"subject": subject, "deleted": True, "layer": layer})

    async def admin_indicators(self, request: Request) -> Response:
        """GET /admin/indicators: what the detector matches against, and the scan in force."""
        if not self._authorised(request):
            return self._unauthorised()
        scan = None
        if self.scan is not None:
            scan = {"dir": str(self.config.scan_dir), "accounts": self.scan.accounts,
                    "decisions": self.scan.counts,
                    "campaigns": [{"campaign_id": c.get("campaign_id"),
                                   "confidence": c.get("confidence"),
                                   "account_count": c.get("account_count"),
                                   "indicators": c.get("indicators")}
                                  for c in self.scan.campaigns]}
        detector = None
        if self.detector is not None and hasattr(self.detector, "summary"):
            detector = await asyncio.to_thread(self.detector.summary)
        return _json({"detector": detector, "scan": scan})

    async def healthz(self, request: Request) -> Response:
        """GET /healthz (no token): upstream, state, sink, detector."""
        state = self.state.health()
        body = {"status": "ok" if state["ok"] else ("degraded" if self.state.available
                                                    else "unavailable"),
                "upstream": {"url": self.upstream, **self.upstream_state,
                             "connections": self.pool.stats() if self.pool else None,
                             "front_end_connections": (self.front_link.stats()
                                                       if self.front_link else None)},
                "state": state,
                "sink": ({"dir": str(self.sink.folder), "queued": self.sink.depth,
                          "written": self.sink.written, "dropped": self.sink.dropped,
                          "rejected": self.sink.rejected} if self.sink else None),
                "detector": self.detector is not None,
                "admin": bool(self.config.admin_token)}
        return _json(body, 200 if self.state.available else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        """GET /metrics (admin token): Prometheus exposition."""
        if not self._authorised(request):
            return self._unauthorised()
        body = self.metrics.render()
        response = Response(body, status_code=200)
        response.raw_headers = [(b"content-type", CONTENT_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]
        return response


def _freeze_heap() -> None:
    """Leave what startup built (modules, the scan, the indicators: tens of thousands of
    objects) out of the garbage collector's full collections: each would otherwise walk it
    all and hold the event loop for 30 to 200 ms. What the gateway allocates while serving
    is short-lived, or kept GC-free (the rate-limit windows are flat arrays)."""
    gc.collect()
    gc.freeze()


class _Endpoint:
    """A raw ASGI handler as a Starlette route endpoint (Starlette wraps plain functions and
    methods in request objects)."""

    def __init__(self, handler: Callable) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(scope, receive, send)


class GatewayApp(Starlette):
    """The gateway's ASGI app: ``/v1/...`` goes straight to :meth:`Gateway.proxy` (no
    routing, middleware or request objects on the path every proxied call takes); everything
    else (admin, health, metrics, lifespan, 404 / 405) is Starlette's."""

    def __init__(self, gateway: Gateway, **options: Any) -> None:
        super().__init__(**options)
        self.state.gateway = gateway
        self._proxy = gateway.proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"].startswith("/v1/")
                and scope["method"] in _METHOD_SET):
            await self._proxy(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def build_app(config: GatewayConfig, gateway: Gateway | None = None) -> GatewayApp:
    """The ASGI app of the gateway (a Starlette app).

    Args:
        config: What to serve.
        gateway: Prebuilt components (tests); default: ``Gateway(config)``.

    Raises:
        DistillwatchError: On a scan folder or configuration that cannot be used.

    Example:
        >>> app = build_app(GatewayConfig("http://127.0.0.1:8000"))  # doctest: +SKIP
        >>> uvicorn.run(app, loop="uvloop", http="httptools")         # doctest: +SKIP
    """
    gateway = gateway or Gateway(config)
    # The /v1 route is matched by GatewayApp before Starlette sees the request; it stays here
    # so that Starlette answers what GatewayApp passes on (a method not served: 405) as before.
    routes = [Route("/v1/{path:path}", _Endpoint(gateway.proxy), methods=_METHODS),
              Route("/healthz", gateway.healthz, methods=["GET"])]
    if config.admin_token:
        routes += [
            Route("/admin/decisions", gateway.admin_list, methods=["GET"]),
            Route("/admin/decisions/{subject:path}", gateway.admin_get, methods=["GET"]),
            Route("/admin/decisions/{subject:path}", gateway.admin_put, methods=["PUT"]),
            Route("/admin/decisions/{subject:path}", gateway.admin_delete, methods=["DELETE"]),
            Route("/admin/indicators", gateway.admin_indicators, methods=["GET"]),
            Route("/metrics", gateway.metrics_endpoint, methods=["GET"]),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        await gateway.startup()
        _freeze_heap()
        try:
            yield
        finally:
            gc.unfreeze()
            await gateway.shutdown()

    return GatewayApp(gateway, routes=routes, lifespan=lifespan)
