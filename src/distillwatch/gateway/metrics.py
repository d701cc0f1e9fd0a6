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

import itertools
from bisect import bisect_left
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

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


class _Tallies:
    """The request path's counters and histograms as plain numbers, exposed at scrape time.

    ``prometheus_client``'s metric objects take a lock on every update (they may be shared
    by threads) and cost a few µs a request in all; these are updated by the event loop's
    thread only, so a dict item or a list slot does, and the registry turns them into
    metric families when ``/metrics`` is read.
    """

    def __init__(self) -> None:
        # name -> (help, label names, {label values: count})
        self.counters: dict[str, tuple[str, tuple[str, ...], dict[tuple, float]]] = {}
        # name -> (help, label names, bounds, {label values: [counts per bucket..., sum]})
        self.histograms: dict[str, tuple[str, tuple[str, ...], tuple[float, ...],
                                         dict[tuple, list[float]]]] = {}

    def counter(self, name: str, text: str, labels: tuple[str, ...]) -> dict[tuple, float]:
        """A labelled counter's values (``values[labels] += 1`` counts)."""
        values: dict[tuple, float] = {}
        self.counters[name] = (text, labels, values)
        return values

    def histogram(self, name: str, text: str, labels: tuple[str, ...],
                  bounds: tuple[float, ...]) -> dict[tuple, list[float]]:
        """A labelled histogram's rows: per label values, a count per bucket (the last one
        +Inf), then the sum of the observations (see :func:`observe`)."""
        rows: dict[tuple, list[float]] = {}
        self.histograms[name] = (text, labels, bounds, rows)
        return rows

    def collect(self):
        for name, (text, labels, values) in self.counters.items():
            family = CounterMetricFamily(name, text, labels=labels)
            for key, value in list(values.items()):
                family.add_metric(key, value)
            yield family
        for name, (text, labels, bounds, rows) in self.histograms.items():
            family = HistogramMetricFamily(name, text, labels=labels)
            edges = [floatToGoString(bound) for bound in bounds] + ["+Inf"]
            for key, row in list(rows.items()):
                cumulative = list(itertools.accumulate(row[:-1]))
                family.add_metric(key, list(zip(edges, cumulative, strict=True)), row[-1])
            yield family


def observe(rows: dict[tuple, list[float]], bounds: tuple[float, ...], key: tuple,
            value: float) -> None:
    """Add one observation to a :meth:`_Tallies.histogram` row."""
    row = rows.get(key)
    if row is None:
        row = rows[key] = [0.0] * (len(bounds) + 2)
    row[bisect_left(bounds, value)] += 1
    row[-1] += value


class GatewayMetrics:
    """The gateway's metrics and cheap handles to update them on the request path."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tallies = _Tallies()
        self._requests = self.tallies.counter(
            "distillwatch_gateway_requests", "Requests answered", ("route", "status"))
        self._decisions = self.tallies.counter(
            "distillwatch_gateway_decisions", "Decision applied to each request",
            ("kind", "source"))
        self._upstream = self.tallies.histogram(
            "distillwatch_gateway_upstream_seconds",
            "Request handed to the HTTP client to its answer's headers (streams) or body (JSON)",
            ("route",), _LATENCY_BUCKETS)
        self._overhead = self.tallies.histogram(
            "distillwatch_gateway_overhead_seconds",
            "Time in the gateway's own code before and after the upstream call (not the HTTP "
            "server or client)", ("route",), _OVERHEAD_BUCKETS)
        self.registry.register(self.tallies)
        self.matcher_hits = Counter("distillwatch_gateway_matcher_hits",
                                    "Decisions set by the online matcher", ["kind"],
                                    registry=self.registry)
        self.redis_errors = Counter("distillwatch_gateway_redis_errors", "Failed Redis calls",
                                    registry=self.registry)
        self.live = _Live()
        self.registry.register(self.live)

    def watch(self, name: str, kind: str, text: str, read: Callable[[], float]) -> None:
        """Report ``read()`` as a counter or gauge ``name`` at every scrape."""
        self.live.sources[name] = (kind, text, read)

    def request(self, route: str, status: int) -> None:
        """Count one answered request."""
        key = (route, str(status))
        self._requests[key] = self._requests.get(key, 0.0) + 1.0

    def decision(self, kind: str, source: str) -> None:
        """Count the decision applied to one request."""
        key = (kind, source)
        self._decisions[key] = self._decisions.get(key, 0.0) + 1.0

    def timing(self, route: str, upstream_s: float | None, overhead_s: float) -> None:
        """Record one request's upstream time (None: not called) and gateway overhead."""
        key = (route,)
        if upstream_s is not None:
            observe(self._upstream, _LATENCY_BUCKETS, key, upstream_s)
        observe(self._overhead, _OVERHEAD_BUCKETS, key, overhead_s)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
