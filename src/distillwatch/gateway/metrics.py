"""Prometheus metrics of the gateway (``GET /metrics``), one registry per app.

| metric | labels | what |
|---|---|---|
| ``distillwatch_gateway_requests_total`` | route, status | requests answered |
| ``distillwatch_gateway_decisions_total`` | kind, source | decision applied to each request (``allow``/``default`` when none) |
| ``distillwatch_gateway_matcher_hits_total`` | kind | decisions set by the online matcher (detector) |
| ``distillwatch_gateway_upstream_seconds`` | route | request handed to the HTTP client → its answer's headers (streams) or whole body (JSON answers): the upstream's time, plus the client's own work and any wait for the event loop meanwhile |
| ``distillwatch_gateway_overhead_seconds`` | route | the gateway's own code: handler start → request handed to the HTTP client, plus answer back → answer handed to the server (a JSON answer's whole body; a stream's response start, not the relay of its chunks) |

What ``overhead_seconds`` does not see: uvicorn parsing the request and writing the answer,
the HTTP client serialising the request and parsing the answer's headers (in
``upstream_seconds``), and time a request waited for the event loop before its handler ran.
On a loaded machine those are most of the latency the gateway adds; the benchmark
(``benchmarks/gateway_latency.py``) measures it from outside, against calling the upstream
directly.
| ``distillwatch_gateway_redis_errors_total`` | | failed Redis calls |
| ``distillwatch_gateway_sink_queue_depth`` | | exchanges waiting to be logged |
| ``distillwatch_gateway_sink_dropped_total`` | | exchanges dropped (queue full) |
| ``distillwatch_gateway_sink_written_total`` | | exchanges logged |
| ``distillwatch_gateway_detector_dropped_total`` | | observations the detector dropped, if it counts them |
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                    60)
_OVERHEAD_BUCKETS = (0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.002, 0.005,
                     0.01, 0.05)


class _Live:
    """Reads values from the running components at scrape time (no work on the hot path)."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, str, Callable[[], float]]] = {}

    def collect(self):
        for name, (kind, text, read) in self.sources.items():
            try:
                value = float(read())
            except Exception:  # noqa: BLE001 - a scrape must not fail on one component
                continue
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                name, text, value=value)
            yield family


class GatewayMetrics:
    """The gateway's metrics and cheap handles to update them on the request path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("distillwatch_gateway_requests", "Requests answered",
                                ["route", "status"], registry=self.registry)
        self.decisions = Counter("distillwatch_gateway_decisions",
                                 "Decision applied to each request", ["kind", "source"],
                                 registry=self.registry)
        self.matcher_hits = Counter("distillwatch_gateway_matcher_hits",
                                    "Decisions set by the online matcher", ["kind"],
                                    registry=self.registry)
        self.upstream = Histogram("distillwatch_gateway_upstream_seconds",
                                  "Request handed to the HTTP client to its answer's headers "
                                  "(streams) or body (JSON)", ["route"],
                                  buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.overhead = Histogram("distillwatch_gateway_overhead_seconds",
                                  "Time in the gateway's own code before and after the "
                                  "upstream call (not the HTTP server or client)", ["route"],
                                  buckets=_OVERHEAD_BUCKETS, registry=self.registry)
        self.redis_errors = Counter("distillwatch_gateway_redis_errors", "Failed Redis calls",
                                    registry=self.registry)
        self.live = _Live()
        self.registry.register(self.live)
        self._requests: dict[tuple[str, int], object] = {}
        self._decisions: dict[tuple[str, str], object] = {}
        self._timings: dict[str, tuple[object, object]] = {}

    def watch(self, name: str, kind: str, text: str, read: Callable[[], float]) -> None:
        """Report ``read()`` as a counter or gauge ``name`` at every scrape."""
        self.live.sources[name] = (kind, text, read)

    def request(self, route: str, status: int) -> None:
        """Count one answered request."""
        child = self._requests.get((route, status))
        if child is None:
            child = self._requests[(route, status)] = self.requests.labels(route, str(status))
        child.inc()

    def decision(self, kind: str, source: str) -> None:
        """Count the decision applied to one request."""
        child = self._decisions.get((kind, source))
        if child is None:
            child = self._decisions[(kind, source)] = self.decisions.labels(kind, source)
        child.inc()

    def timing(self, route: str, upstream_s: float | None, overhead_s: float) -> None:
        """Record one request's upstream time (None: not called) and gateway overhead."""
        children = self._timings.get(route)
        if children is None:
            children = self._timings[route] = (self.upstream.labels(route),
                                               self.overhead.labels(route))
        if upstream_s is not None:
            children[0].observe(upstream_s)
        children[1].observe(overhead_s)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
