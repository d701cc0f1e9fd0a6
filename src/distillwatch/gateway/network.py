"""Network plumbing: the real client IP through trusted proxies; the upstream connections.

``X-Forwarded-For`` is written by every proxy a request passes, each appending the address it
received the request from; anything left of the first proxy the provider runs is whatever the
client chose to send. So the header is walked from the right, starting at the TCP peer: while
the address at hand is a trusted proxy, step one hop to the left. The first untrusted address
met is the client. A request whose peer is not trusted keeps its peer address, whatever
``X-Forwarded-For`` it carries (a spoofed header from an untrusted peer is ignored).

Examples (trusted: ``10.0.0.0/8``)::

    peer 10.0.0.5, XFF "203.0.113.7"              -> 203.0.113.7
    peer 10.0.0.5, XFF "6.6.6.6, 203.0.113.7"     -> 203.0.113.7  (6.6.6.6 was sent by the client)
    peer 198.51.100.9, XFF "1.2.3.4"              -> 198.51.100.9 (untrusted peer: header ignored)
    peer 10.0.0.5, XFF "203.0.113.7, 10.0.0.9"    -> 203.0.113.7  (two trusted hops)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.fingerprint.addresses import normalise_ip

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_SIZE = 65_536  # addresses whose trust is remembered (one small entry each)


def parse_networks(cidrs: Iterable[str]) -> tuple[_Network, ...]:
    """CIDRs (or bare addresses) as networks.

    Raises:
        DistillwatchConfigError: Naming the first that is not an address or CIDR.
    """
    out = []
    for text in cidrs:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise DistillwatchConfigError(
                f"--trusted-proxy {text!r} is not an IP address or CIDR (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(out)


class ClientAddress:
    """Resolves the client IP of requests through trusted proxies.

    Args:
        trusted: CIDRs of the proxies in front of the gateway (load balancers, the provider's
            own reverse proxies). Empty: the TCP peer is the client, headers are ignored.

    Example:
        >>> ClientAddress(["10.0.0.0/8"]).resolve("10.0.0.5", "6.6.6.6, 203.0.113.7")
        '203.0.113.7'
    """

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.networks = parse_networks(trusted)
        # Trusted IPv4 networks as (address, mask) integers, for addresses read by the C
        # fast path (a dotted quad), which needs no ipaddress object.
        self._v4 = tuple((int(net.network_address), int(net.netmask))
                         for net in self.networks if net.version == 4)
        # Hop text as it appears (peer or X-Forwarded-For entry) -> (canonical form or None,
        # trusted): one parse per address seen, which repeats across requests.
        self._seen: dict[str, tuple[str | None, bool]] = {}

    def _lookup(self, text: str) -> tuple[str | None, bool]:
        found = self._seen.get(text)
        if found is None:
            found = self._parse(text)
            if len(self._seen) >= _CACHE_SIZE:
                self._seen.clear()
            self._seen[text] = found
        return found

    def _parse(self, text: str) -> tuple[str | None, bool]:
        bare = text.strip()
        try:  # a plain dotted quad (what most hops are): parsed in C
            packed = socket.inet_pton(socket.AF_INET, bare)
        except OSError:
            canonical = normalise_ip(bare)
            return canonical, canonical is not None and self._in_networks(canonical)
        value = int.from_bytes(packed, "big")
        return bare, any(value & mask == network for network, mask in self._v4)

    def _in_networks(self, canonical: str) -> bool:
        parsed = ipaddress.ip_address(canonical)
        return any(parsed in network for network in self.networks
                   if network.version == parsed.version)

    def is_trusted(self, address: str) -> bool:
        """True if ``address`` lies in a trusted network."""
        return self._lookup(address)[1]

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client IP of a request from ``peer`` carrying ``X-Forwarded-For``.

        Args:
            peer: The TCP peer address (None when the server does not know it).
            forwarded_for: The ``X-Forwarded-For`` value (several headers joined by commas).

        Returns:
            The first untrusted address walking right to left from the peer; the leftmost
            hop if all are trusted; the last trusted hop if the next one is not an address.
        """
        if peer is None or not self.networks:
            return peer
        canonical, trusted = self._lookup(peer)
        address = canonical or peer
        if not forwarded_for or not trusted:
            return address
        for hop in reversed(forwarded_for.split(",")):
            canonical, trusted = self._lookup(hop)
            if canonical is None:
                return address
            address = canonical
            if not trusted:
                return address
        return address


# --- the upstream connections -----------------------------------------------------------------


# What a failed upstream call raises: aiohttp's errors, and its timeouts (which are also
# ``TimeoutError``s).
UPSTREAM_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
# Sent only if the client sent them (aiohttp would otherwise add its own).
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
_MAX_HEADER = 16_384


def failure_kind(error: BaseException) -> str:
    """``timeout`` (the upstream did not answer within the read timeout: a 504) or
    ``unreachable`` (no connection, a broken one, or none free in time: a 502)."""
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return "unreachable"  # connecting, or waiting for a free connection, took too long
    if isinstance(error, TimeoutError):
        return "timeout"
    return "unreachable"


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, keeping at most ``max_idle`` idle connections and counting the
    connections it opened."""

    def __init__(self, max_connections: int, max_idle: int, keepalive_expiry: float) -> None:
        super().__init__(limit=max_connections, limit_per_host=0,
                         keepalive_timeout=keepalive_expiry, ttl_dns_cache=10)
        self.max_idle = max_idle
        self.opened = 0

    async def _create_connection(self, req, traces, timeout):  # noqa: ANN001, ANN202
        protocol = await super()._create_connection(req, traces, timeout)
        self.opened += 1
        return protocol

    def _release(self, key, protocol, *, should_close: bool = False) -> None:  # noqa: ANN001
        if not should_close:
            idle = self._conns.get(key)
            should_close = idle is not None and len(idle) >= self.max_idle
        super()._release(key, protocol, should_close=should_close)

    def stats(self) -> dict[str, int]:
        idle = sum(1 for conns in self._conns.values() for protocol, _ in conns
                   if protocol.is_connected())
        in_use = len(self._acquired)
        return {"open": idle + in_use, "idle": idle, "in_use": in_use, "opened": self.opened}


class UpstreamPool:
    """The HTTP/1.1 client of one upstream: an ``aiohttp.ClientSession`` on a bounded pool
    of keep-alive connections, set up to pass bytes through unchanged.

    No cookie jar (one client serves every user: an upstream's ``Set-Cookie`` must never be
    sent on someone else's request), no decompression (the answer's bytes pass as sent), no
    headers of its own beyond ``Host`` and the body's length, no redirects followed, no
    proxy from the environment. Requests are never retried, except aiohttp's single retry of
    an idempotent request (GET, HEAD, ...) on a kept-alive connection the upstream had
    closed. Reuse takes the connection idle longest (all stay warm); one idle past
    ``keepalive_expiry`` is closed instead of used.

    Args:
        max_connections: Open connections at most; further requests wait (``connect_timeout``).
        max_idle: Idle connections kept for reuse; more are closed.
        keepalive_expiry: Seconds an idle connection is kept (below the upstream's own
            keep-alive timeout, so a connection it is closing is not reused).
        connect_timeout: Seconds to get a connection: a free one from the pool, or a new one.
        read_timeout: Seconds between two reads of the answer (its headers included).

    Example:
        >>> pool = UpstreamPool(256, 64, 4.0)            # doctest: +SKIP
        >>> await pool.start()                           # doctest: +SKIP
        >>> answer = await pool.request("GET", "http://127.0.0.1:8000/v1/models", [], None)
        ... # doctest: +SKIP
    """

    def __init__(self, max_connections: int = 256, max_idle: int = 64,
                 keepalive_expiry: float = 4.0, connect_timeout: float = 5.0,
                 read_timeout: float = 600.0) -> None:
        self._limits = (max_connections, max_idle, keepalive_expiry)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout,
                                              sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._connector: _Connector | None = None
        self.session: aiohttp.ClientSession | None = None

    @property
    def opened(self) -> int:
        """Connections opened so far."""
        return self._connector.opened if self._connector is not None else 0

    async def start(self) -> None:
        """Create the session (inside the running event loop)."""
        self._connector = _Connector(*self._limits)
        self.session = aiohttp.ClientSession(
            connector=self._connector, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=self._timeout, auto_decompress=False, trust_env=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS, raise_for_status=False,
            # An answer's headers as large as httpx (h11) took: 16 KiB, not aiohttp's 8 KiB.
            max_line_size=_MAX_HEADER, max_field_size=_MAX_HEADER, max_headers=512)

    def request(self, method: str, url: Any, headers: Any, data: Any
                ) -> Any:
        """Send a request; an awaitable of the ``aiohttp.ClientResponse`` (its headers read,
        its body still to stream). ``url``: a ``yarl.URL`` (``encoded=True`` keeps the path
        and query as given) or a string."""
        return self.session.request(method, url, headers=headers, data=data,
                                    allow_redirects=False)

    def stats(self) -> dict[str, int]:
        """Connections open, idle and carrying a request; connections opened so far."""
        if self._connector is None:
            return {"open": 0, "idle": 0, "in_use": 0, "opened": 0}
        return self._connector.stats()

    async def aclose(self) -> None:
        """Close every connection."""
        if self.session is not None:
            await self.session.close()
