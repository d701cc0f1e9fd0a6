"""Decisions by subject and sliding-window counters: in-process, or shared through Redis.

Two implementations of one interface (and of the detector's ``Counters`` protocol,
``add_many`` / ``set_decision`` / ``get_decision``):

- :class:`LocalState`: everything in this process (one replica).
- :class:`RedisState`: decisions and counters shared by every replica through Redis. The
  request path never waits on Redis: decisions are read from a local mirror that pub/sub
  keeps current (and a version check every ``redis_refresh_s`` repairs, should a message be
  lost), and request counts are added to the shared counters in the background every
  ``redis_flush_s``. Every Redis call has a short timeout. When Redis is unreachable the
  mirror keeps the last decisions read; under ``fail_open`` requests are served from it (rate
  limits counted in this replica only), under fail-closed :attr:`RedisState.available` turns
  False and the gateway answers 503. The replica reconnects by itself when Redis is back,
  first writing the detector decisions it made meanwhile.

Layers of decisions: ``scan`` (loaded by each replica from the scan folder, never stored in
Redis), ``detector`` and ``admin`` (shared). The hot path is :meth:`LocalState.decision_for`.

Sliding windows are bucketed: a window of ``W`` seconds is ``B`` buckets (policy
``limits.buckets``) and the oldest bucket counts in proportion to the part of it still inside
the window, so a sum is exact to one bucket's share of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from distillwatch.fingerprint.addresses import host_of
from distillwatch.gateway.decisions import (
    REFUSING,
    SUBJECT_KINDS,
    Decision,
    GatewayPolicy,
    RateLimit,
    resolve,
    stronger,
)

logger = logging.getLogger(__name__)
# Longest wait for Redis connections to close at shutdown.
CLOSE_TIMEOUT_S = 2.0

LAYERS = ("admin", "detector", "scan")
# One addition to a sliding window: (name, subject, window_s, now, amount).
Addition = tuple[str, str, float, float, float]


class StateUnavailable(Exception):  # noqa: N818 - reads better at the raise site
    """The shared state store cannot be reached (Redis down); nothing was stored."""


class _Span:
    """The windows of one length, all in one flat ``array('d')``: each window a run of
    ``[head, last add, bucket sums…]`` (a ring of ``buckets + 1`` sums; ``head`` -1: none
    yet) at an offset that ``slots`` gives by (name, subject).

    One array and one dict of offsets, not an object holding a list per window: tens of
    thousands of windows (one per account, key and IP of a day's traffic) are then nothing
    for the garbage collector to walk, where they used to make every full collection pause
    the event loop for tens of milliseconds. Windows are kept in the order of their last
    add, so those gone idle are forgotten from the front, a few at each add, instead of in
    one sweep of all; their room is reused.
    """

    __slots__ = ("free", "size", "slots", "store", "stride", "width", "zeros")

    def __init__(self, window_s: float, buckets: int) -> None:
        self.width = window_s / buckets
        self.size = buckets + 1
        self.stride = self.size + 2
        self.store = array("d")
        self.slots: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.free: list[int] = []
        self.zeros = array("d", [0.0]) * self.size

    def advance(self, base: int, now: float) -> int:
        store = self.store
        index = int(now // self.width)
        head = store[base]
        if head < 0:
            store[base] = index
            return index
        head = int(head)
        gap = index - head
        if gap <= 0:
            return head  # a late event counts in the newest bucket
        size = self.size
        if gap >= size:
            store[base + 2:base + 2 + size] = self.zeros
        else:
            first = base + 2
            for step in range(1, gap + 1):
                store[first + (head + step) % size] = 0.0
        store[base] = index
        return index

    def total(self, base: int, now: float) -> float:
        return self._sum(base, self.advance(base, now), now)

    def _sum(self, base: int, index: int, now: float) -> float:
        """The window's sum at ``now``, its newest bucket ``index``: the oldest bucket
        counts for the part of it still inside the window."""
        fraction = min(max(now / self.width - index, 0.0), 1.0)
        store, first = self.store, base + 2
        return (sum(store[first:first + self.size])
                - store[first + (index + 1) % self.size] * fraction)

    def bump(self, key: tuple[str, str], now: float, amount: float) -> int:
        """Add ``amount`` at ``now`` to ``key``'s window; its offset."""
        slots, store = self.slots, self.store
        base = slots.get(key)
        if base is None:
            if self.free:
                base = self.free.pop()
                store[base:base + 2] = array("d", (-1.0, -1.0))
                store[base + 2:base + 2 + self.size] = self.zeros
            else:
                base = len(store)
                store.extend((-1.0, -1.0))
                store.extend(self.zeros)
            slots[key] = base
        else:
            slots.move_to_end(key)
        index = self.advance(base, now)
        store[base + 2 + index % self.size] += amount
        store[base + 1] = index
        self.forget_idle(index)
        return base

    def forget_idle(self, index: int) -> None:
        """Forget up to two windows idle for a whole window and two buckets more before
        bucket ``index`` (an event up to two buckets late still finds its window as it
        was)."""
        slots, store, limit = self.slots, self.store, index - self.size - 2
        for _ in range(2):
            oldest = next(iter(slots))
            if store[slots[oldest] + 1] > limit:
                break
            self.free.append(slots.pop(oldest))

    def idle(self, base: int, now: float) -> bool:
        self.advance(base, now)
        return not any(self.store[base + 2:base + 2 + self.size])

    def forget(self, key: tuple[str, str]) -> None:
        self.free.append(self.slots.pop(key))


class SlidingCounters:
    """In-process sliding-window sums keyed by (name, subject, window).

    Args:
        buckets: Buckets per window.
    """

    def __init__(self, buckets: int = 10) -> None:
        self.buckets = buckets
        self._spans: dict[float, _Span] = {}

    def add(self, name: str, subject: str, window_s: float, now: float,
            amount: float = 1.0) -> float:
        """Add ``amount`` at ``now``; the new sum over the last ``window_s`` seconds."""
        return self.add_many(((name, subject, window_s, now, amount),))[0]

    def add_many(self, additions: Iterable[Addition]) -> list[float]:
        """:meth:`add` of each ``(name, subject, window_s, now, amount)``, in order; the new
        sums. The detector adds a batch's windows through this: one call, not one each."""
        spans, sums = self._spans, []
        for name, subject, window_s, now, amount in additions:
            span = spans.get(window_s) or self._span(window_s)
            base = span.bump((name, subject), now, amount)
            sums.append(span._sum(base, int(span.store[base]), now))  # bump advanced it
        return sums

    def count(self, name: str, subject: str, window_s: float, now: float,
              amount: float = 1.0) -> None:
        """:meth:`add` without working out the new sum (the request path's counting)."""
        self._span(window_s).bump((name, subject), now, amount)

    def _span(self, window_s: float) -> _Span:
        span = self._spans.get(window_s)
        if span is None:
            span = self._spans[window_s] = _Span(window_s, self.buckets)
        return span

    def total(self, name: str, subject: str, window_s: float, now: float) -> float:
        """The sum over the last ``window_s`` seconds."""
        span = self._spans.get(window_s)
        if span is None:
            return 0.0
        base = span.slots.get((name, subject))
        return 0.0 if base is None else span.total(base, now)

    def prune(self, now: float) -> None:
        """Forget every window with nothing left in it (:meth:`add` forgets idle ones as it
        goes; this sweeps them all)."""
        for span in self._spans.values():
            for key in [key for key, base in span.slots.items() if span.idle(base, now)]:
                span.forget(key)

    def __len__(self) -> int:
        return sum(len(span.slots) for span in self._spans.values())


def limit_subjects(account: str | None, key_id: str | None,
                   ip: str | None) -> tuple[str | None, str | None, str | None]:
    """The three subjects of a request (None where unknown); an IPv6 client is its /64."""
    return (f"account:{account}" if account else None, f"key:{key_id}" if key_id else None,
            f"ip:{host_of(ip)}" if ip else None)


class LocalState:
    """Decisions and counters of one process.

    Args:
        policy: Rate limits (``limits``) and bucket count come from it.
        clock: Epoch seconds (tests pass their own).

    Example:
        >>> state = LocalState(GatewayPolicy())
        >>> state.set_scan({"account:acct-1": Decision("block", source="scan")})
        >>> state.decision_for("acct-1", None, None, 0.0).kind
        'block'
    """

    shared = False

    def __init__(self, policy: GatewayPolicy, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.clock = clock
        self.counters = SlidingCounters(policy.limit_buckets)
        self.layers: dict[str, dict[str, Decision]] = {layer: {} for layer in LAYERS}
        self._limits: tuple[tuple[int, RateLimit], ...] = tuple(
            (position, rule) for position, kind in enumerate(SUBJECT_KINDS)
            for rule in policy.limits.get(kind, ()))

    # -- lifecycle (nothing to do in-process) --
    async def start(self) -> None:
        """Connect and load (no-op here)."""

    async def close(self) -> None:
        """Disconnect (no-op here)."""

    @property
    def available(self) -> bool:
        """False when requests must be refused (fail-closed with the store gone)."""
        return True

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` reports about the state."""
        return {"backend": "local", "ok": True,
                "decisions": {layer: len(found) for layer, found in self.layers.items()}}

    # -- the hot path --
    def decision_for(self, account: str | None, key_id: str | None, ip: str | None,
                     now: float) -> Decision | None:
        """The decision for a request, counting it against the rate limits if it may pass.

        Admin decisions override everything (an admin ``allow`` exempts from rate limits);
        otherwise the strongest of scan, detector and rate-limit decisions applies. A request
        refused by a decision is not counted.
        """
        decision, counted = self.check(account, key_id, ip, now)
        if counted is not None:
            self.count(counted, now)
        return decision

    def check(self, account: str | None, key_id: str | None, ip: str | None, now: float
              ) -> tuple[Decision | None, tuple[str | None, ...] | None]:
        """:meth:`decision_for` without the counting: the decision, and the subjects to
        count against the rate limits (:meth:`count`) when the request goes on (None:
        nothing to count). The relay counts once the request is on its way upstream."""
        subjects = limit_subjects(account, key_id, ip)
        admin = self.layers["admin"]
        if admin:
            chosen = resolve((admin.get(s) for s in subjects if s), (), now)
            if chosen is not None:
                return chosen, None
        chosen = None
        for layer in (self.layers["scan"], self.layers["detector"]):
            if layer:
                for name in subjects:
                    if name:
                        found = layer.get(name)
                        if found is not None and not found.expired(now):
                            chosen = stronger(chosen, found)
        if chosen is not None and chosen.kind in REFUSING:
            return chosen, None
        if self._limits:
            limited = self._over_limit(subjects, now)
            if limited is not None:
                return stronger(chosen, limited), None
            return chosen, subjects
        return chosen, None

    def count(self, subjects: tuple[str | None, ...], now: float) -> None:
        """Count a request that went on against its subjects' rate limits."""
        for position, rule in self._limits:
            name = subjects[position]
            if name is not None:
                self._count(name, rule.window_s, now)

    def _limit_total(self, name: str, window_s: float, now: float) -> float:
        return self.counters.total("requests", name, window_s, now)

    def _count(self, name: str, window_s: float, now: float) -> None:
        self.counters.count("requests", name, window_s, now)

    def _over_limit(self, subjects: tuple[str | None, ...], now: float) -> Decision | None:
        for position, rule in self._limits:
            name = subjects[position]
            if name is not None and \
                    self._limit_total(name, rule.window_s, now) + 1 > rule.max_requests:
                retry = max(1.0, rule.window_s / self.policy.limit_buckets)
                return Decision("throttle", source="limit", expires_at=now + retry,
                                reason=f"{name.partition(':')[0]} over {rule.max_requests} "
                                       f"requests in {rule.window_s:g}s")
        return None

    # -- the Counters protocol (the detector) --
    async def add(self, name: str, subject: str, window_s: float, now: float,
                  amount: float = 1.0) -> float:
        """Add to a sliding window; the new sum over the last ``window_s`` seconds."""
        return (await self.add_many(((name, subject, window_s, now, amount),)))[0]

    async def add_many(self, additions: Sequence[Addition]) -> list[float]:
        """Add to many sliding windows at once; their new sums, in order.

        In process it never suspends (the detector's batches cost no task per window).
        """
        return self.counters.add_many(additions)

    async def set_decision(self, subject: str, decision: Decision) -> None:
        """Set the detector's decision for a subject."""
        self.layers["detector"][subject] = decision

    async def get_decision(self, subject: str) -> Decision | None:
        """The decision that applies to one subject (admin > strongest of scan / detector)."""
        now = self.clock()
        return resolve((self.layers["admin"].get(subject),),
                       (self.layers["scan"].get(subject), self.layers["detector"].get(subject)),
                       now)

    # -- scan and admin layers --
    def set_scan(self, decisions: dict[str, Decision]) -> None:
        """Replace the scan layer whole (an atomic swap of one dict)."""
        self.layers["scan"] = decisions

    async def set_override(self, subject: str, decision: Decision) -> None:
        """Set an admin decision."""
        self.layers["admin"][subject] = decision

    async def clear_override(self, subject: str) -> bool:
        """Remove an admin decision; True if there was one."""
        return self.layers["admin"].pop(subject, None) is not None

    async def clear_decision(self, subject: str) -> bool:
        """Remove the detector's decision for a subject; True if there was one."""
        return self.layers["detector"].pop(subject, None) is not None

    def list_decisions(self, layer: str, now: float | None = None) -> dict[str, Decision]:
        """The live (unexpired) decisions of one layer."""
        now = self.clock() if now is None else now
        return {s: d for s, d in self.layers[layer].items() if not d.expired(now)}


# --- Redis -----------------------------------------------------------------------------------

# Sets or deletes one decision, bumps the version and announces the change, atomically.
_WRITE_SCRIPT = """
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], cjson.encode({v = v, layer = ARGV[4], subject = ARGV[1],
                                              decision = ARGV[2]}))
return v
"""


class RedisState(LocalState):
    """Decisions and counters shared between replicas through Redis (see the module).

    Args:
        url: ``redis://host:port/db``.
        policy: Timeouts (``redis_timeout_s``), refresh / flush periods, ``fail_open``,
            limits.
        prefix: Prefix of every key and of the pub/sub channel (one per deployment).
        on_error: Called with the exception on every failed Redis call (metrics).
        clock: Epoch seconds.
    """

    shared = True

    def __init__(self, url: str, policy: GatewayPolicy, prefix: str = "distillwatch",
                 on_error: Callable[[BaseException], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(policy, clock)
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.prefix = prefix
        self.timeout = policy.redis_timeout_s
        self._client = aioredis.from_url(
            url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0, max_connections=64)
        self._errors = aioredis.RedisError, OSError, asyncio.TimeoutError
        self._on_error = on_error
        self._keys = {layer: f"{prefix}:decisions:{layer}" for layer in ("admin", "detector")}
        self._version_key = f"{prefix}:version"
        self._channel = f"{prefix}:events"
        self._script = self._client.register_script(_WRITE_SCRIPT)
        self.healthy = False
        self.version: int | None = None
        self.last_error: str | None = None
        self.errors = 0
        self._pending_counts: dict[tuple[str, float], float] = {}
        self._shared_totals: dict[tuple[str, float], tuple[float, float]] = {}
        self._pending_decisions: dict[str, Decision | None] = {}
        self._tasks: list[asyncio.Task] = []

    # -- lifecycle --
    async def start(self) -> None:
        """Load the shared decisions (if Redis answers) and start the background loops."""
        await self._resync()
        self._tasks = [asyncio.create_task(loop(), name=f"distillwatch-redis-{loop.__name__}")
                       for loop in (self._listen, self._refresh_loop, self._flush_loop)]

    async def close(self) -> None:
        """Stop the loops, push the last counts, disconnect."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # A pub/sub read cancelled mid-way can leave its connection's close waiting:
            # shutting down must not wait on it (SIGTERM must stop the gateway).
            await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT_S)
        with contextlib.suppress(*self._errors):
            await self._flush_counts()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.aclose(), CLOSE_TIMEOUT_S)

    @property
    def available(self) -> bool:
        """False under fail-closed while Redis is unreachable."""
        return self.healthy or self.policy.fail_open

    def health(self) -> dict[str, Any]:
        """Redis reachability, the mirror's version, errors so far."""
        return {"backend": "redis", "ok": self.healthy, "fail_open": self.policy.fail_open,
                "version": self.version, "errors": self.errors, "last_error": self.last_error,
                "pending_decisions": len(self._pending_decisions),
                "decisions": {layer: len(found) for layer, found in self.layers.items()}}

    def _failed(self, error: BaseException) -> None:
        if self.healthy:
            logger.warning("Redis %s unreachable (%s): %s", self.url, type(error).__name__,
                           "serving from the local cache" if self.policy.fail_open
                           else "refusing requests (fail-closed)")
        self.healthy = False
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"
        # Counts not yet shared stay in this replica's own windows; pushing them later, all
        # into the bucket of that moment, would overstate the shared windows.
        self._shared_totals.clear()
        self._pending_counts.clear()
        if self._on_error is not None:
            self._on_error(error)

    async def _call(self, awaitable):
        async with asyncio.timeout(self.timeout * 2):
            return await awaitable

    # -- mirror of the shared decisions --
    async def _resync(self) -> None:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.get(self._version_key)
                pipe.hgetall(self._keys["admin"])
                pipe.hgetall(self._keys["detector"])
                version, admin, detector = await self._call(pipe.execute())
        except self._errors as error:
            self._failed(error)
            return
        now = self.clock()
        mirrors = {}
        expired: list[tuple[str, bytes]] = []
        for layer, raw in (("admin", admin), ("detector", detector)):
            decoded = {}
            for name, value in raw.items():
                decision = Decision.from_json(value)
                if decision.expired(now):
                    expired.append((layer, name))
                else:
                    decoded[name.decode()] = decision
            mirrors[layer] = decoded
        for subject, decision in self._pending_decisions.items():  # not yet written: ours win
            if decision is None:
                mirrors["detector"].pop(subject, None)
            else:
                mirrors["detector"][subject] = decision
        self.layers["admin"], self.layers["detector"] = mirrors["admin"], mirrors["detector"]
        self.version = int(version or 0)
        if not self.healthy:
            logger.info("Redis %s reachable: %d admin, %d detector decisions", self.url,
                        len(mirrors["admin"]), len(mirrors["detector"]))
        self.healthy = True
        if expired:
            with contextlib.suppress(*self._errors):
                async with self._client.pipeline(transaction=False) as pipe:
                    for layer, name in expired:
                        pipe.hdel(self._keys[layer], name)
                    await self._call(pipe.execute())

    def _apply(self, message: bytes) -> None:
        event = orjson.loads(message)
        version, layer, name = int(event["v"]), event["layer"], event["subject"]
        if self.version is None or version <= self.version:
            return  # already in the mirror (a resync read it), or a resync is due anyway
        gap = version > self.version + 1
        if event["decision"]:
            self.layers[layer][name] = Decision.from_json(event["decision"])
        else:
            self.layers[layer].pop(name, None)
        if not gap:
            self.version = version
        # On a gap the version is left behind, so the next refresh resyncs whole.

    async def _listen(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await self._call(pubsub.subscribe(self._channel))
                # Changes announced before the subscription took hold are caught here.
                await self._resync()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
            except asyncio.CancelledError:
                raise
            except self._errors as error:
                self._failed(error)
            except (orjson.JSONDecodeError, KeyError, ValueError) as error:
                logger.warning("Ignoring a malformed decision event on %s: %s", self._channel,
                               error)
                continue
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(pubsub.aclose()), CLOSE_TIMEOUT_S)
            await asyncio.sleep(self.policy.redis_refresh_s)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.policy.redis_refresh_s)
            try:
                version = await self._call(self._client.get(self._version_key))
            except self._errors as error:
                self._failed(error)
                continue
            if not self.healthy or self._pending_decisions:
                await self._write_pending()
            if self.version is None or int(version or 0) != self.version or not self.healthy:
                await self._resync()

    async def _write(self, layer: str, subject: str, decision: Decision | None) -> int:
        return await self._call(self._script(
            keys=[self._keys[layer], self._version_key],
            args=[subject, decision.to_json() if decision else b"", self._channel, layer]))

    async def _write_pending(self) -> None:
        while self._pending_decisions:
            subject, decision = next(iter(self._pending_decisions.items()))
            try:
                await self._write("detector", subject, decision)
            except self._errors as error:
                self._failed(error)
                return
            if self._pending_decisions.get(subject, ...) is decision:
                del self._pending_decisions[subject]

    # -- shared counters --
    def _bucket_keys(self, name: str, subject: str, window_s: float, now: float
                     ) -> tuple[list[str], float]:
        width = window_s / self.policy.limit_buckets
        index = int(now // width)
        base = f"{self.prefix}:cnt:{name}:{window_s:g}:{subject}:"
        return ([base + str(index - step) for step in range(self.policy.limit_buckets + 1)],
                now / width - index)

    @staticmethod
    def _weighted(values: Iterable[bytes | None], fraction: float) -> float:
        values = [float(v) if v is not None else 0.0 for v in values]
        return sum(values) - values[-1] * fraction

    def _ttl(self, window_s: float) -> int:
        return math.ceil(window_s * (1 + 2 / self.policy.limit_buckets)) + 1

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.policy.redis_flush_s)
            if self._pending_counts and self.healthy:
                try:
                    await self._flush_counts()
                except self._errors as error:
                    self._failed(error)

    async def _flush_counts(self) -> None:
        pending, self._pending_counts = self._pending_counts, {}
        if not pending:
            return
        now = self.clock()
        order = []
        async with self._client.pipeline(transaction=False) as pipe:
            for (name, window_s), amount in pending.items():
                keys, fraction = self._bucket_keys("requests", name, window_s, now)
                pipe.incrbyfloat(keys[0], amount)
                pipe.expire(keys[0], self._ttl(window_s))
                pipe.mget(keys)
                order.append(((name, window_s), fraction))
            results = await self._call(pipe.execute())
        for position, (key, fraction) in enumerate(order):
            self._shared_totals[key] = (self._weighted(results[position * 3 + 2], fraction),
                                        now)

    def _limit_total(self, name: str, window_s: float, now: float) -> float:
        local = self.counters.total("requests", name, window_s, now)
        if not self.healthy:
            return local
        key = (name, window_s)
        shared = self._shared_totals.get(key)
        if shared is None or now - shared[1] > max(1.0, 4 * self.policy.redis_flush_s):
            return local
        return max(local, shared[0] + self._pending_counts.get(key, 0.0))

    def _count(self, name: str, window_s: float, now: float) -> None:
        self.counters.count("requests", name, window_s, now)
        if self.healthy:
            key = (name, window_s)
            self._pending_counts[key] = self._pending_counts.get(key, 0.0) + 1.0

    # -- the Counters protocol --
    async def add_many(self, additions: Sequence[Addition]) -> list[float]:
        """Add to many shared sliding windows in one round trip; their new sums, in order
        (this replica's own sums when Redis is down)."""
        local = self.counters.add_many(additions)
        if not self.healthy or not additions:
            return local
        fractions = []
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for name, subject, window_s, now, amount in additions:
                    keys, fraction = self._bucket_keys(name, subject, window_s, now)
                    pipe.incrbyfloat(keys[0], amount)
                    pipe.expire(keys[0], self._ttl(window_s))
                    pipe.mget(keys)
                    fractions.append(fraction)
                results = await self._call(pipe.execute())
        except self._errors as error:
            self._failed(error)
            return local
        return [self._weighted(results[position * 3 + 2], fraction)
                for position, fraction in enumerate(fractions)]

    async def set_decision(self, subject: str, decision: Decision) -> None:
        """Set the detector's decision: enforced here at once, shared as soon as Redis is up."""
        self.layers["detector"][subject] = decision
        self._pending_decisions[subject] = decision
        if self.healthy:
            await self._write_pending()

    async def clear_decision(self, subject: str) -> bool:
        """Remove the detector's decision for a subject, here and in Redis."""
        had = self.layers["detector"].pop(subject, None) is not None
        self._pending_decisions[subject] = None
        if self.healthy:
            await self._write_pending()
        return had

    async def set_override(self, subject: str, decision: Decision) -> None:
        """Set an admin decision in Redis (every replica enforces it within milliseconds).

        Raises:
            StateUnavailable: If Redis cannot be reached (nothing is stored).
        """
        try:
            version = await self._write("admin", subject, decision)
        except self._errors as error:
            self._failed(error)
            raise StateUnavailable(f"Redis {self.url} unreachable: {error}") from error
        self.layers["admin"][subject] = decision
        if self.version is not None and version == self.version + 1:
            self.version = version

    async def clear_override(self, subject: str) -> bool:
        """Remove an admin decision everywhere; True if this replica knew of one.

        Raises:
            StateUnavailable: If Redis cannot be reached.
        """
        had = subject in self.layers["admin"]
        try:
            version = await self._write("admin", subject, None)
        except self._errors as error:
            self._failed(error)
            raise StateUnavailable(f"Redis {self.url} unreachable: {error}") from error
        self.layers["admin"].pop(subject, None)
        if self.version is not None and version == self.version + 1:
            self.version = version
        return had
