"""Where a client sits on the network, at the grains one party controls.

An IPv4 address is one host (or one NAT: a household, an office), and its /24 is one
operator's block. An IPv6 address is not: every device picks a new one inside its /64 every
day or so (privacy extensions), and a proxy that owns a /64 can send each request from
another of its 2⁶⁴ addresses. So the host of an IPv6 client is its /64, and its block the
/48 a site is given. Batch (features ``client_ip`` / ``client_prefix``) and the gateway
(per-IP windows, campaigns' network indicators) read addresses through these functions, so
both count and match the same things.

IPv4-mapped IPv6 addresses (``::ffff:198.51.100.7``) are the IPv4 address they hold, a port
(``198.51.100.7:5678``, ``[2001:db8::1]:443``, as load balancers log a peer) is not part of
the address; text that is no address is its own host and has no block.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

__all__ = ["DOTTED_QUAD", "HOST_BITS_V6", "LAST_OCTET", "PREFIX_BITS_V6", "grains", "host_of",
           "normalise_ip", "prefix_of"]

HOST_BITS_V6 = 64
PREFIX_BITS_V6 = 48


# A dotted IPv4 address as logs write it: its host is itself, its block the /24 (the same
# pattern runs in Arrow on batches and in Python here).
DOTTED_QUAD = r"^[0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}$"
LAST_OCTET = r"[.][0-9]+$"
_dotted = re.compile(DOTTED_QUAD).match


def normalise_ip(text: str) -> str | None:
    """An address in canonical form, from ``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80`` (as
    load balancers log a peer), ``::ffff:1.2.3.4`` (IPv4-mapped: ``1.2.3.4``); or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has several colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


@lru_cache(maxsize=65536)
def grains(text: str) -> tuple[str, str | None]:
    """(host, block) of an address in text, see the module's docstring."""
    if _dotted(text):
        return text, text[:text.rfind(".")] + ".0/24"
    canonical = normalise_ip(text)
    if canonical is None:
        return text, None
    if ":" not in canonical:
        return grains(canonical)
    address = ipaddress.IPv6Address(canonical)
    host = ipaddress.IPv6Network((address, HOST_BITS_V6), strict=False)
    block = ipaddress.IPv6Network((address, PREFIX_BITS_V6), strict=False)
    return str(host), str(block)


def host_of(ip: str | None) -> str | None:
    """The host an address stands for: an IPv4 address itself, an IPv6 address's /64
    (``2001:db8:1:2::/64``)."""
    return grains(ip)[0] if ip else None


def prefix_of(ip: str | None) -> str | None:
    """The block an address belongs to: an IPv4 /24 (``203.0.113.0/24``), an IPv6 /48
    (``2001:db8:1::/48``); None for text that is no address."""
    return grains(ip)[1] if ip else None
