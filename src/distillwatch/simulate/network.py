"""Where simulated requests come from: countries, autonomous systems and IP addresses.

A small catalogue of autonomous systems by kind (residential, mobile, hosting, business,
education, vpn, tor) and country. Each AS owns a few /16 prefixes derived from its number (and
an IPv6 /32), so the same AS always yields addresses in the same ranges and /24 or IP-set
sharing between accounts arises only where the simulated behaviour creates it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

# ISO country, UTC offset in hours (a representative zone), and relative share of ordinary users.
COUNTRIES: dict[str, tuple[float, float]] = {
    "US": (-6.0, 22.0), "CA": (-5.0, 3.0), "BR": (-3.0, 4.0), "MX": (-6.0, 2.0),
    "GB": (0.0, 6.0), "DE": (1.0, 5.0), "FR": (1.0, 4.0), "ES": (1.0, 3.0), "IT": (1.0, 2.0),
    "NL": (1.0, 2.0), "PL": (1.0, 2.0), "UA": (2.0, 1.0), "TR": (3.0, 1.5), "NG": (1.0, 1.5),
    "KE": (3.0, 1.0), "IN": (5.5, 9.0), "SG": (8.0, 1.5), "VN": (7.0, 2.0), "ID": (7.0, 2.0),
    "CN": (8.0, 1.0), "HK": (8.0, 1.0), "KR": (9.0, 3.0), "JP": (9.0, 4.0), "AU": (10.0, 2.5),
}

API_CLIENT_AGENTS = (
    "OpenAI/Python 1.82.0", "OpenAI/Python 1.99.1", "OpenAI/JS 5.12.0",
    "anthropic-sdk-python/0.64.0", "python-requests/2.32.3", "curl/8.5.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/139.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/138.0 Safari/537.36",
    "LangChain/0.3.27 python-httpx/0.28.1", "llama-index/0.12 python-httpx/0.28.1",
)

# asn -> (kind, country or "*" for global networks, display name)
_NAMED_ASNS: dict[int, tuple[str, str, str]] = {
    16509: ("hosting", "*", "AMAZON-02"), 15169: ("hosting", "*", "GOOGLE"),
    8075: ("hosting", "*", "MICROSOFT"), 14061: ("hosting", "*", "DIGITALOCEAN"),
    24940: ("hosting", "DE", "HETZNER"), 16276: ("hosting", "FR", "OVH"),
    20473: ("hosting", "*", "VULTR"), 63949: ("hosting", "*", "AKAMAI-LINODE"),
    45102: ("hosting", "CN", "ALIBABA"), 132203: ("hosting", "HK", "TENCENT"),
    9009: ("vpn", "*", "M247"), 212238: ("vpn", "*", "DATACAMP"), 60068: ("vpn", "*", "CDN77"),
    208323: ("tor", "*", "TOR-EXIT-A"), 4224: ("tor", "*", "TOR-EXIT-B"),
}
_KINDS_PER_COUNTRY = {"residential": 4, "mobile": 2, "business": 2, "education": 2}


@dataclass(frozen=True)
class AutonomousSystem:
    asn: int
    kind: str
    country: str
    name: str

    def prefixes(self) -> tuple[tuple[int, int], ...]:
        """The /16 prefixes (first two octets) this AS announces, derived from its number."""
        digest = hashlib.sha256(f"as{self.asn}".encode()).digest()
        out = []
        for i in range(0, 12, 2):
            first = 11 + digest[i] % 212  # 11..222: skips 0/8, 10/8 and multicast
            if first in (100, 127, 169, 172, 192, 198, 203):
                first += 1
            out.append((first, digest[i + 1]))
        return tuple(out)

    def address(self, rng: random.Random, subnet: int | None = None) -> str:
        """A random host address in this AS, optionally inside one fixed /24 (0..255)."""
        first, second = rng.choice(self.prefixes())
        third = rng.randrange(256) if subnet is None else subnet
        return f"{first}.{second}.{third}.{rng.randrange(1, 255)}"


    def prefix6(self) -> str:
        """The IPv6 /32 this AS announces (first two hextets), derived from its number."""
        digest = hashlib.sha256(f"as6-{self.asn}".encode()).digest()
        return f"2a{digest[0] % 16:02x}:{int.from_bytes(digest[1:3], 'big'):x}"

    def address6(self, rng: random.Random, site: int, subnet: int) -> str:
        """A random address (interface id) in the /64 ``subnet`` of the /48 ``site``."""
        interface = ":".join(f"{rng.randrange(1 << 16):x}" for _ in range(4))
        return f"{self.prefix6()}:{site:x}:{subnet:x}:{interface}"


class NetworkCatalogue:
    """Every autonomous system of the world, looked up by kind and country."""

    def __init__(self) -> None:
        systems: list[AutonomousSystem] = [
            AutonomousSystem(asn, kind, country, name)
            for asn, (kind, country, name) in _NAMED_ASNS.items()
        ]
        for c_index, country in enumerate(sorted(COUNTRIES)):
            for kind, count in _KINDS_PER_COUNTRY.items():
                for i in range(count):
                    asn = 200_000 + c_index * 100 + list(_KINDS_PER_COUNTRY).index(kind) * 10 + i
                    systems.append(AutonomousSystem(asn, kind, country, f"{country}-{kind}-{i}"))
        self.systems = tuple(systems)
        self._by_kind: dict[tuple[str, str], list[AutonomousSystem]] = {}
        for system in systems:
            self._by_kind.setdefault((system.kind, system.country), []).append(system)
            self._by_kind.setdefault((system.kind, "*"), []).append(system)

    def pick(self, rng: random.Random, kind: str, country: str = "*") -> AutonomousSystem:
        """An AS of ``kind`` in ``country`` (any country with ``"*"``)."""
        options = self._by_kind.get((kind, country)) or self._by_kind[(kind, "*")]
        return rng.choice(options)


def country_offset(country: str) -> float:
    return COUNTRIES[country][0]


def pick_country(rng: random.Random, among: tuple[str, ...] | None = None) -> str:
    names = among or tuple(COUNTRIES)
    return rng.choices(names, weights=[COUNTRIES[c][1] for c in names])[0]


def client(
    address: str,
    system: AutonomousSystem,
    user_agent: str,
    kind: str | None = None,
    country: str | None = None,
) -> dict:
    """The Exchange ``client`` object for one request.

    Args:
        address: The source IP.
        system: The AS announcing it.
        user_agent: The client's user agent.
        kind: Overrides the AS kind, e.g. ``"proxy"`` where IP intelligence flags the exit.
        country: Where a global network's address is located (default: the AS's own country).
    """
    located = country or (system.country if system.country != "*" else "US")
    return {
        "ip": address,
        "asn": system.asn,
        "asn_kind": kind or system.kind,
        "country": located,
        "user_agent": user_agent,
    }
