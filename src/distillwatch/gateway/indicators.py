"""Campaign indicators the online detector matches, indexed for O(1) lookups.

:class:`Indicators` gathers what is known about campaigns before a request arrives:

- a scan's output folder (``campaigns.json``: each campaign's ``indicators``; ``accounts.jsonl``:
  which accounts are already known members and which the scan allowed);
- partners' STIX 2.1 bundles (``share.stix.read_indicators``);
- the provider's account file (the Account schema), so that a brand-new account's payment
  fingerprint, organisation, verification, e-mail domain and sign-up channel are known at its
  first request.

Each indicator value is indexed by kind: scaffold key (as the signed 64-bit keyed hash the
fingerprint computes, shown as ``sk-<16 hex>``) → campaigns, IPv4 /24 or exact address →
campaigns, ASN → campaigns, payment fingerprint → campaigns.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.fingerprint.addresses import HOST_BITS_V6, PREFIX_BITS_V6, grains, host_of

logger = logging.getLogger(__name__)

_MASK = 0xFFFFFFFFFFFFFFFF


def scaffold_key(value: str) -> int | None:
    """The signed 64-bit scaffold key of an ``sk-<16 hex>`` fingerprint, or None.

    The inverse of ``score.build.scaffold_fingerprint`` (``sk-`` + the key's low 64 bits).
    """
    if not isinstance(value, str) or not value.startswith("sk-") or len(value) != 19:
        return None
    try:
        unsigned = int(value[3:], 16)
    except ValueError:
        return None
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def key_fingerprint(key: int) -> str:
    """``sk-<16 hex>`` of a signed scaffold key (as ``score.build.scaffold_fingerprint``)."""
    return f"sk-{key & _MASK:016x}"


def fingerprint_key_id(key: bytes) -> str:
    """The id of a fingerprint key, as ``distillwatch scan`` writes it into STIX bundles."""
    return "k-" + hashlib.blake2b(key, digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What the account file says about one account (only what matching needs)."""

    organization_id: str | None = None
    verified: bool | None = None
    payment_fingerprint: str | None = None
    email_domain: str | None = None
    signup_channel: str | None = None
    created_at: float | None = None  # epoch seconds


@dataclass(frozen=True, slots=True)
class ScanAccount:
    """What the scan said about an account it saw."""

    decision: str
    campaign_id: str | None


@dataclass(frozen=True)
class CampaignIndicators:
    """One campaign's indicators, as ``campaigns.json`` shows them.

    Attributes:
        campaign_id: The scan's id, or ``stix:<bundle>[/<campaign>]`` for a partner bundle.
        source: ``scan`` or ``stix:<file name>``.
        templates: ``sk-…`` scaffold fingerprints.
        ip_prefixes: Networks (``203.0.113.0/24``, ``2001:db8:1::/48``) or single addresses
            (an IPv6 address stands for its /64).
        asns: Autonomous system numbers.
        payment_fingerprints: ``pf-…`` payment fingerprints.
        per_account_day: Exchanges per member account per active day (0 if unknown).
        account_count: Member accounts the scan attributed (0 for a partner bundle).
    """

    campaign_id: str
    source: str
    templates: tuple[str, ...] = ()
    ip_prefixes: tuple[str, ...] = ()
    asns: tuple[int, ...] = ()
    payment_fingerprints: tuple[str, ...] = ()
    per_account_day: float = 0.0
    account_count: int = 0


def _per_account_day(raw: Mapping[str, Any]) -> float:
    """Exchanges per account per day of the campaign's span (an estimate of its pace)."""
    try:
        first = datetime.fromisoformat(str(raw["first_seen"]))
        last = datetime.fromisoformat(str(raw["last_seen"]))
        days = max(1.0, (last - first).total_seconds() / 86400.0)
        accounts = max(1, int(raw.get("account_count") or len(raw.get("accounts") or ())))
        return float(raw.get("exchange_count") or 0) / accounts / days
    except (KeyError, TypeError, ValueError):
        return 0.0


def _list(raw: Mapping[str, Any], key: str, kind: type, where: str) -> tuple:
    values = raw.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, kind) and not isinstance(v, bool)
                                               for v in values):
        raise DistillwatchInputError(f"'indicators.{key}' must be a list of {kind.__name__}",
                                     where)
    return tuple(values)


@dataclass
class Indicators:
    """Campaign indicators and account facts, indexed for the online detector.

    Build with :meth:`build` (or :meth:`from_scan`); every lookup is a dict access.

    Attributes:
        campaigns: By campaign id.
        accounts: The account file's facts by account id.
        scan_accounts: The scan's decision and campaign by account id.
        fingerprint_key_ids: Key ids of the bundles' fingerprints (empty for a scan).

    Example:
        >>> indicators = Indicators.build(scan_dir=Path("out"), accounts=[Path("accounts.jsonl")])
        >>> indicators.summary()["totals"]
    """

    campaigns: dict[str, CampaignIndicators] = field(default_factory=dict)
    accounts: dict[str, AccountInfo] = field(default_factory=dict)
    scan_accounts: dict[str, ScanAccount] = field(default_factory=dict)
    fingerprint_key_ids: frozenset[str] = frozenset()
    _templates: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _template_counts: dict[str, int] = field(default_factory=dict, repr=False)
    _prefixes: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _addresses: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _networks: list[tuple[Any, tuple[str, ...]]] = field(default_factory=list, repr=False)
    _asns: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _payments: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index()

    # --- building --------------------------------------------------------------------------

    @classmethod
    def build(cls, scan_dir: Path | None = None, stix: Sequence[Path] = (),
              accounts: Sequence[Path] = (), key: bytes | None = None) -> Indicators:
        """Indicators from a scan folder, partner STIX bundles and account files.

        Args:
            scan_dir: A ``distillwatch scan --out`` folder (``campaigns.json``, and
                ``accounts.jsonl`` if present).
            stix: STIX 2.1 bundles; one campaign per STIX campaign they hold
                (:func:`read_stix_campaigns`).
            accounts: Account files (JSONL, CSV or Parquet, the Account schema); a later row
                for an account replaces an earlier one.
            key: The detector's fingerprint key. Given, a bundle whose fingerprints carry
                another key id contributes only its networks and ASNs (its template and
                payment fingerprints could never match, and are dropped with a warning).

        Raises:
            DistillwatchInputError: If a file is missing or breaks its contract.
        """
        campaigns: dict[str, CampaignIndicators] = {}
        scan_accounts: dict[str, ScanAccount] = {}
        if scan_dir is not None:
            campaigns.update(read_scan_campaigns(scan_dir))
            scan_accounts = read_scan_accounts(scan_dir)
        key_ids: set[str] = set()
        for path in stix:
            found, ids = read_stix_campaigns(path, key)
            for campaign in found:
                campaigns[campaign.campaign_id] = campaign
            key_ids |= ids
        facts: dict[str, AccountInfo] = {}
        for path in accounts:
            facts.update(read_account_facts(path))
        return cls(campaigns, facts, scan_accounts, frozenset(key_ids))

    @classmethod
    def from_scan(cls, scan_dir: Path, accounts: Sequence[Path] = ()) -> Indicators:
        """Shorthand for :meth:`build` with a scan folder and account files."""
        return cls.build(scan_dir=scan_dir, accounts=accounts)

    def _index(self) -> None:
        templates: dict[int, list[str]] = {}
        prefixes: dict[str, list[str]] = {}
        addresses: dict[str, list[str]] = {}
        networks: dict[Any, list[str]] = {}
        asns: dict[int, list[str]] = {}
        payments: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        for cid, campaign in self.campaigns.items():
            usable = 0
            for value in campaign.templates:
                key = scaffold_key(value)
                if key is None:
                    logger.warning("Campaign %s: template %r is not an sk- fingerprint; "
                                   "ignored", cid, value)
                    continue
                usable += 1
                templates.setdefault(key, []).append(cid)
            counts[cid] = usable
            for value in campaign.ip_prefixes:
                try:
                    network = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    logger.warning("Campaign %s: %r is not an address or network; ignored",
                                   cid, value)
                    continue
                # Looked up by a client's host and block (fingerprint.addresses): an address
                # or IPv6 /64 by its host, a /24 or IPv6 /48 by its block, other networks
                # one by one.
                if network.num_addresses == 1 or (network.version == 6
                                                  and network.prefixlen == HOST_BITS_V6):
                    addresses.setdefault(host_of(str(network.network_address)), []).append(cid)
                elif network.prefixlen == (24 if network.version == 4 else PREFIX_BITS_V6):
                    prefixes.setdefault(str(network), []).append(cid)
                else:
                    networks.setdefault(network, []).append(cid)
            for asn in campaign.asns:
                asns.setdefault(int(asn), []).append(cid)
            for value in campaign.payment_fingerprints:
                payments.setdefault(value, []).append(cid)

        def frozen(index: dict) -> dict:
            return {k: tuple(dict.fromkeys(v)) for k, v in index.items()}

        self._templates = frozen(templates)
        self._template_counts = counts
        self._prefixes = frozen(prefixes)
        self._addresses = frozen(addresses)
        self._networks = list(frozen(networks).items())
        self._asns = frozen(asns)
        self._payments = frozen(payments)

    # --- lookups ---------------------------------------------------------------------------

    @property
    def template_keys(self) -> frozenset[int]:
        """Every indexed scaffold key (signed 64-bit)."""
        return frozenset(self._templates)

    def campaigns_of_template(self, key: int) -> tuple[str, ...]:
        """Campaigns whose templates include the signed scaffold key ``key``."""
        return self._templates.get(key, ())

    def template_count(self, campaign_id: str) -> int:
        """How many usable template fingerprints a campaign has."""
        return self._template_counts.get(campaign_id, 0)

    def campaigns_of_ip(self, ip: str | None) -> tuple[tuple[str, str], ...]:
        """(campaign, indicator as shown) for a client IP: its block (/24, IPv6 /48), its
        host (the address, an IPv6 /64), or another network that holds it."""
        if not ip:
            return ()
        found: list[tuple[str, str]] = []
        host, prefix = grains(ip)
        if prefix is not None:
            found += [(c, prefix) for c in self._prefixes.get(prefix, ())]
        found += [(c, host) for c in self._addresses.get(host, ())]
        if self._networks:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return tuple(found)
            found += [(c, str(n)) for n, cs in self._networks
                      if n.version == address.version and address in n for c in cs]
        return tuple(found)

    def campaigns_of_asn(self, asn: int | None) -> tuple[str, ...]:
        """Campaigns whose ASN indicators include ``asn``."""
        return self._asns.get(asn, ()) if asn is not None else ()

    def campaigns_of_payment(self, fingerprint: str | None) -> tuple[str, ...]:
        """Campaigns whose accounts share the payment fingerprint."""
        return self._payments.get(fingerprint, ()) if fingerprint else ()

    def account(self, account_id: str | None) -> AccountInfo | None:
        """The account file's facts, or None when it does not list the account."""
        return self.accounts.get(account_id) if account_id else None

    def scanned(self, account_id: str | None) -> ScanAccount | None:
        """What the scan said about the account, or None when it did not see it."""
        return self.scan_accounts.get(account_id) if account_id else None

    def summary(self) -> dict[str, Any]:
        """Counts per indicator kind and per campaign, for the admin API (no values, no text)."""
        per_campaign = {
            cid: {"source": c.source, "templates": self._template_counts.get(cid, 0),
                  "ip_prefixes": len(c.ip_prefixes), "asns": len(c.asns),
                  "payment_fingerprints": len(c.payment_fingerprints),
                  "known_accounts": c.account_count}
            for cid, c in sorted(self.campaigns.items())}
        members = sum(1 for s in self.scan_accounts.values() if s.campaign_id)
        return {
            "totals": {"campaigns": len(self.campaigns), "templates": len(self._templates),
                       "ip_prefixes": len(self._prefixes) + len(self._addresses)
                       + len(self._networks),
                       "asns": len(self._asns), "payment_fingerprints": len(self._payments),
                       "scan_accounts": len(self.scan_accounts), "known_members": members,
                       "account_file_rows": len(self.accounts)},
            "campaigns": per_campaign,
            "fingerprint_key_ids": sorted(self.fingerprint_key_ids),
        }


# --- readers -------------------------------------------------------------------------------


def read_scan_campaigns(scan_dir: Path) -> dict[str, CampaignIndicators]:
    """Each campaign's indicators from ``scan_dir/campaigns.json``.

    Raises:
        DistillwatchInputError: If the file is missing or breaks the scan-output contract.
    """
    path = scan_dir / "campaigns.json"
    if not path.is_file():
        raise DistillwatchInputError(
            "No campaigns.json: --scan must name the output folder of `distillwatch scan "
            "--out DIR`", str(scan_dir))
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise DistillwatchInputError(f"Not valid JSON: {error}", str(path)) from None
    if not isinstance(document, dict) or not isinstance(document.get("campaigns"), list):
        raise DistillwatchInputError("Expected an object with a 'campaigns' list", str(path))
    out: dict[str, CampaignIndicators] = {}
    for number, raw in enumerate(document["campaigns"]):
        where = f"{path}: campaigns[{number}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("campaign_id"), str):
            raise DistillwatchInputError("A campaign needs a string 'campaign_id'", where)
        indicators = raw.get("indicators") or {}
        if not isinstance(indicators, dict):
            raise DistillwatchInputError("'indicators' must be an object", where)
        cid = raw["campaign_id"]
        out[cid] = CampaignIndicators(
            campaign_id=cid, source="scan",
            templates=_list(indicators, "templates", str, where),
            ip_prefixes=_list(indicators, "ip_prefixes", str, where),
            asns=_list(indicators, "asns", int, where),
            payment_fingerprints=_list(indicators, "payment_fingerprints", str, where),
            per_account_day=_per_account_day(raw),
            account_count=int(raw.get("account_count") or len(raw.get("accounts") or ())))
    return out


def read_scan_accounts(scan_dir: Path) -> dict[str, ScanAccount]:
    """The decision and campaign of every account in ``scan_dir/accounts.jsonl`` ({} if the
    file is absent).

    Raises:
        DistillwatchInputError: On a malformed line (names the file and line).
    """
    path = scan_dir / "accounts.jsonl"
    if not path.is_file():
        return {}
    out: dict[str, ScanAccount] = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                account = row["account_id"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                raise DistillwatchInputError(f"Not an accounts.jsonl line: {error}",
                                             f"{path}:{number}") from None
            campaign = row.get("campaign_id")
            out[str(account)] = ScanAccount(str(row.get("decision") or "allow"),
                                            campaign if isinstance(campaign, str) else None)
    return out


def read_stix_campaigns(path: Path, key: bytes | None = None
                        ) -> tuple[list[CampaignIndicators], set[str]]:
    """A partner bundle's indicators, one campaign per STIX ``campaign`` they indicate.

    A bundle of one campaign (or of indicators tied to none) is the campaign
    ``stix:<file stem>``; a bundle of several gives ``stix:<file stem>/<campaign name>`` each
    (the STIX id's first digits added where names repeat), and its indicators tied to none
    are ``stix:<file stem>``. So a template hit needs several scaffold keys of one partner
    campaign in one request, as with a scan's campaigns.

    Returns:
        The campaigns, and the fingerprint key ids their indicators name.
    """
    from distillwatch.share.stix import read_indicators

    found = read_indicators(path)
    key_ids = set(found["fingerprint_key_ids"])
    foreign = key is not None and key_ids and fingerprint_key_id(key) not in key_ids
    if foreign and (found["templates"] or found["payment_fingerprints"]):
        logger.warning("%s: its fingerprints are keyed with %s, not this detector's key "
                       "(%s); only its networks and ASNs are used", path,
                       ", ".join(sorted(key_ids)), fingerprint_key_id(key))
    groups = found["by_campaign"]
    named = [cid for cid in groups if cid is not None]
    names = [found["campaigns"].get(cid) or cid for cid in named]
    merged: dict[str, dict[str, set]] = {}
    for cid, group in groups.items():
        if cid is None or len(named) == 1:
            campaign_id = f"stix:{path.stem}"
        else:
            name = found["campaigns"].get(cid) or cid
            if names.count(name) > 1:
                name = f"{name}-{cid.partition('--')[2][:8]}"
            campaign_id = f"stix:{path.stem}/{name}"
        target = merged.setdefault(campaign_id, {kind: set() for kind in group})
        for kind, values in group.items():
            target[kind] |= values
    out = [CampaignIndicators(
        campaign_id=campaign_id, source=f"stix:{path.name}",
        templates=() if foreign else tuple(sorted(group["templates"])),
        ip_prefixes=tuple(sorted(group["ip_prefixes"])), asns=tuple(sorted(group["asns"])),
        payment_fingerprints=() if foreign else tuple(sorted(group["payment_fingerprints"])))
        for campaign_id, group in sorted(merged.items())]
    return out, key_ids


def read_account_facts(path: Path) -> dict[str, AccountInfo]:
    """The matching-relevant facts of an account file (rows that cannot be used are logged
    and skipped, as ``distillwatch ingest`` rejects them).

    Raises:
        DistillwatchInputError: If the file does not exist.
    """
    from distillwatch.ingest.accounts import read_accounts

    if not path.is_file():
        raise DistillwatchInputError("Account file does not exist", str(path))
    sink = _CountingSink()
    _, rows = read_accounts(path, sink)  # type: ignore[arg-type]
    if sink.count:
        logger.warning("%s: %d account rows could not be used (%s)", path, sink.count,
                       sink.first)
    return {row["account_id"]: _facts(row) for row in rows}


def _facts(row: Mapping[str, Any]) -> AccountInfo:
    created = row.get("created_at")
    return AccountInfo(
        organization_id=row.get("organization_id") or None, verified=row.get("verified"),
        payment_fingerprint=row.get("payment_fingerprint") or None,
        email_domain=(row.get("email_domain") or "").lower() or None,
        signup_channel=row.get("signup_channel"),
        created_at=created.timestamp() if isinstance(created, datetime) else None)


class _CountingSink:
    """The part of ``RejectSink`` that ``read_accounts`` uses, counting instead of writing."""

    def __init__(self) -> None:
        self.count = 0
        self.first = ""

    def add(self, source: str, location: str, reason: str, field: str | None,
            raw: bytes) -> None:
        self.count += 1
        if not self.first:
            self.first = f"{location}: {reason}"


def account_facts(rows: Iterable[Mapping[str, Any]]) -> dict[str, AccountInfo]:
    """Facts from account rows already read (``ingest.accounts.normalise_account`` form)."""
    return {row["account_id"]: _facts(row) for row in rows}
