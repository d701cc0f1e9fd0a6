"""STIX 2.1 sharing: a scan's campaigns as ``indicators.stix.json``; partners' bundles read back.

A bundle holds one ``identity`` (the producer), the distillwatch ``extension-definition``, one
``campaign`` per campaign, one ``indicator`` per distinct indicator value and one ``indicates``
``relationship`` from each indicator to each campaign it points to. Each indicator's pattern is
one comparison, by ``campaigns.json`` indicator key:

- ``ip_prefixes``, a network: ``[ipv4-addr:value ISSUBSET '203.0.113.0/24']``
- ``ip_prefixes``, one address: ``[ipv4-addr:value = '198.51.100.7']``
  (both with ``ipv6-addr`` for IPv6; addresses in canonical compressed form)
- ``asns``: ``[autonomous-system:number = 64500]``
- ``templates``: ``[x-distillwatch-scaffold:fingerprint = 'tpl-3f2a']``
- ``payment_fingerprints``: ``[x-distillwatch-payment:fingerprint = 'pf-91c0']``

Ids are UUIDv5 under :data:`ID_NAMESPACE` over a JSON list naming the object, so anyone can
recompute them: an indicator's over ``["indicator", pattern]`` (the same fingerprint from two
scans or two partners is the same indicator and merges), a campaign's over
``["campaign", producer, campaign_id, first_seen]``, a relationship's over
``["relationship", "indicates", source_id, target_id]``. ``created`` and ``modified`` are the
document's ``generated_at``, so one document always renders to the same bytes.

Account ids and evidence text never enter a bundle: account ids identify customers, and evidence
details may quote prompts. Only evidence kinds and weights are shared.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stix2
from stix2.exceptions import STIXError
from stix2.pattern_visitor import create_pattern_object
from stix2.patterns import (
    BasicObjectPathComponent,
    EqualityComparisonExpression,
    IntegerConstant,
    IsSubsetComparisonExpression,
    ObservationExpression,
    OrBooleanExpression,
    OrObservationExpression,
    ParentheticalExpression,
    StringConstant,
)
from stix2patterns.exceptions import ParseException

from distillwatch.exceptions import DistillwatchInputError

logger = logging.getLogger(__name__)

BUNDLE_FILENAME = "indicators.stix.json"
ID_NAMESPACE = uuid.UUID("fa078bf4-d83d-41b0-b222-6893ee5402a9")
SCAFFOLD_TYPE = "x-distillwatch-scaffold"
PAYMENT_TYPE = "x-distillwatch-payment"
INDICATOR_KEYS = ("templates", "ip_prefixes", "asns", "payment_fingerprints")

# The extension definition is a published schema, not a scan result: its id, author and dates
# are constants, so every producer (we and each partner) carries the same object and custom
# properties merge under one key. Bump the version, and only then the dates, when it changes.
_PROJECT = "distillwatch"
EXTENSION_VERSION = "1.0"
_EXTENSION_CREATED = datetime(2026, 6, 1, tzinfo=UTC)
_EXTENSION_SCHEMA = (
    "distillwatch property extension, version 1.0. On a campaign: campaign_id (string, the "
    "scan's own id), account_count (integer), exchange_count (integer), capabilities (object: "
    "capability name -> share of the campaign's exchanges, summing to 1), tactics (list of tactic "
    "ids), evidence (list of {kind: string, weight: number}). On an indicator: indicator_kind "
    "(template, ip_prefix, asn or payment_fingerprint) and, on template and payment_fingerprint "
    "indicators, fingerprint_key_id (the keyed-hash family; fingerprints match only under the "
    "same key id). Fingerprint patterns use the observable types x-distillwatch-scaffold and "
    "x-distillwatch-payment, each with one string property, fingerprint."
)


@dataclass(frozen=True)
class _Kind:
    singular: str
    name: str  # format string for the indicator's name
    # Templates and payment fingerprints tie traffic to one operator's tooling or wallet; networks
    # and ASNs are shared with ordinary customers, so they attribute rather than prove harm.
    indicator_type: str
    fingerprint: bool


_KINDS = {
    "templates": _Kind("template", "Prompt scaffold {}", "malicious-activity", True),
    "ip_prefixes": _Kind("ip_prefix", "Network {}", "attribution", False),
    "asns": _Kind("asn", "Autonomous system AS{}", "attribution", False),
    "payment_fingerprints": _Kind(
        "payment_fingerprint", "Payment fingerprint {}", "attribution", True),
}


def _stix_id(stix_type: str, *parts: str) -> str:
    return f"{stix_type}--{uuid.uuid5(ID_NAMESPACE, json.dumps([stix_type, *parts]))}"


EXTENSION_ID = _stix_id("extension-definition", _PROJECT, EXTENSION_VERSION)


def _fail(message: str, where: str) -> DistillwatchInputError:
    return DistillwatchInputError(message, where)


def _get(mapping: Mapping[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if key not in mapping:
        raise _fail(f"Missing '{key}'", where)
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise _fail(f"'{key}' has the wrong type: {value!r}", where)
    return value


def _timestamp(mapping: Mapping[str, Any], key: str, where: str) -> datetime:
    raw = _get(mapping, key, str, where)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError as error:
        raise _fail(f"'{key}' is not an ISO 8601 timestamp: {raw!r}", where) from error
    if parsed.tzinfo is None:
        raise _fail(f"'{key}' has no time zone; write it in UTC with a 'Z': {raw!r}", where)
    return parsed.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _pattern(key: str, value: object, where: str) -> tuple[str, str]:
    """Return the one-comparison pattern for a document indicator value, and the value shown."""
    if key == "asns":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise _fail(f"ASN must be an integer in [0, 2^32), got {value!r}", where)
        return f"[autonomous-system:number = {value}]", str(value)
    if not isinstance(value, str) or not value:
        raise _fail(f"'{key}' values must be non-empty strings, got {value!r}", where)
    if key == "templates":
        return f"[{SCAFFOLD_TYPE}:fingerprint = '{_escape(value)}']", value
    if key == "payment_fingerprints":
        return f"[{PAYMENT_TYPE}:fingerprint = '{_escape(value)}']", value
    try:
        if "/" in value:
            network = ipaddress.ip_network(value)
            shown = network.compressed
            return f"[ipv{network.version}-addr:value ISSUBSET '{shown}']", shown
        address = ipaddress.ip_address(value)
    except ValueError as error:
        raise _fail(f"Not an IP address or network prefix: {error}", where) from error
    return f"[ipv{address.version}-addr:value = '{address.compressed}']", address.compressed


def _extension_definition() -> stix2.ExtensionDefinition:
    return stix2.ExtensionDefinition(
        id=EXTENSION_ID,
        created_by_ref=_stix_id("identity", _PROJECT),
        created=_EXTENSION_CREATED,
        modified=_EXTENSION_CREATED,
        name=_PROJECT,
        description="Campaign and indicator properties from the distillwatch detector.",
        schema=_EXTENSION_SCHEMA,
        version=EXTENSION_VERSION,
        extension_types=["property-extension"],
    )


def _summary(cid: str, counts: tuple[int, int], seen: tuple[datetime, datetime],
             capabilities: dict[str, float], confidence: float) -> str:
    shares = sorted(capabilities.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{name} {share:.0%}" for name, share in shares) or "none recorded"
    return (f"{cid}: {counts[0]:,} accounts, {counts[1]:,} exchanges, "
            f"seen {seen[0]:%Y-%m-%d} to {seen[1]:%Y-%m-%d}; capabilities {shown}; "
            f"confidence {confidence:.2f}.")


def _campaign(raw: Any, where: str, producer_id: str, producer: str,
              created: datetime) -> tuple[stix2.Campaign, dict[str, list[object]]]:
    if not isinstance(raw, Mapping):
        raise _fail("A campaign must be a JSON object", where)
    cid = _get(raw, "campaign_id", str, where)
    where = f"{where} ({cid})"
    confidence = _get(raw, "confidence", (int, float), where)
    if not 0.0 <= confidence <= 1.0:
        raise _fail(f"'confidence' must be in [0, 1], got {confidence}", where)
    counts = (_get(raw, "account_count", int, where), _get(raw, "exchange_count", int, where))
    seen = (_timestamp(raw, "first_seen", where), _timestamp(raw, "last_seen", where))
    if seen[1] < seen[0]:
        raise _fail("'last_seen' is before 'first_seen'", where)
    capabilities = {str(k): v for k, v in sorted(_get(raw, "capabilities", dict, where).items())}
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in capabilities.values()):
        raise _fail("'capabilities' shares must be numbers", where)
    tactics = _get(raw, "tactics", list, where)
    if not all(isinstance(t, str) for t in tactics):
        raise _fail("'tactics' must be a list of tactic ids", where)
    evidence = []
    for item in _get(raw, "evidence", list, where):
        if not isinstance(item, Mapping):
            raise _fail("'evidence' items must be objects with 'kind' and 'weight'", where)
        # Only kind and weight: 'detail' can quote prompt text, which must not leave the scan.
        evidence.append({"kind": _get(item, "kind", str, where),
                         "weight": _get(item, "weight", (int, float), where)})
    indicators = _get(raw, "indicators", dict, where)
    for key in sorted(set(indicators) - set(INDICATOR_KEYS)):
        logger.warning("Indicator kind '%s' has no STIX pattern yet; not shared (%s)", key, where)
    values = {key: list(_get(indicators, key, list, where)) if key in indicators else []
              for key in INDICATOR_KEYS}
    campaign = stix2.Campaign(
        id=_stix_id("campaign", producer, cid, _iso(seen[0])),
        created_by_ref=producer_id, created=created, modified=created,
        name=cid, description=_summary(cid, counts, seen, capabilities, confidence),
        first_seen=seen[0], last_seen=seen[1], confidence=round(confidence * 100),
        extensions={EXTENSION_ID: {
            "extension_type": "property-extension", "campaign_id": cid,
            "account_count": counts[0], "exchange_count": counts[1],
            "capabilities": capabilities, "tactics": list(tactics), "evidence": evidence,
        }},
    )
    return campaign, values


def campaigns_to_bundle(document: Mapping[str, Any], *, producer: str = _PROJECT,
                        fingerprint_key_id: str | None = None) -> stix2.Bundle:
    """Build the STIX 2.1 bundle of a scan's campaigns and their indicators.

    Args:
        document: The contents of ``campaigns.json`` (shared/schema/scan-output.md).
        producer: Name of the organisation publishing the bundle; becomes its ``identity``.
        fingerprint_key_id: Id of the keyed-hash family behind template and payment
            fingerprints. Partners can match fingerprints only under the same key id.

    Returns:
        The bundle. Rendering the same document again gives byte-identical JSON.

    Raises:
        DistillwatchInputError: If the document breaks the contract; the message names the
            campaign and the field.

    Example:
        >>> bundle = campaigns_to_bundle(json.loads(Path("out/campaigns.json").read_text()))
        >>> text = bundle.serialize(pretty=True)
    """
    if not isinstance(document, Mapping):
        raise _fail("The document must be a JSON object", "campaigns.json")
    if not producer:
        raise _fail("'producer' must be a non-empty name", "campaigns_to_bundle")
    created = _timestamp(document, "generated_at", "campaigns.json")
    producer_id = _stix_id("identity", producer)
    objects: list[Any] = [
        stix2.Identity(id=producer_id, created=created, modified=created, name=producer,
                       identity_class="organization"),
        _extension_definition(),
    ]
    campaigns: list[stix2.Campaign] = []
    seen_ids: set[str] = set()
    targets: dict[str, list[str]] = {}  # pattern -> campaign ids, in order of appearance
    kinds: dict[str, tuple[str, str]] = {}  # pattern -> (document key, value shown)
    valid_from: dict[str, datetime] = {}
    for index, raw in enumerate(_get(document, "campaigns", list, "campaigns.json")):
        where = f"campaigns.json: campaigns[{index}]"
        campaign, values = _campaign(raw, where, producer_id, producer, created)
        if campaign.id in seen_ids:
            raise _fail(f"Campaign '{campaign.name}' appears twice with the same first_seen", where)
        campaigns.append(campaign)
        seen_ids.add(campaign.id)
        for key, items in values.items():
            for value in items:
                pattern, shown = _pattern(key, value, f"{where} ({campaign.name}) indicators.{key}")
                kinds.setdefault(pattern, (key, shown))
                if campaign.id not in targets.setdefault(pattern, []):
                    targets[pattern].append(campaign.id)
                start = campaign.first_seen
                valid_from[pattern] = min(valid_from.get(pattern, start), start)
    if fingerprint_key_id is None and any(_KINDS[k].fingerprint for k, _ in kinds.values()):
        logger.warning("Sharing fingerprints without fingerprint_key_id: partners cannot tell "
                       "which keyed hash made them")
    indicators: list[stix2.Indicator] = []
    relationships: list[stix2.Relationship] = []
    for pattern, campaign_ids in targets.items():
        key, shown = kinds[pattern]
        kind = _KINDS[key]
        extension: dict[str, Any] = {"extension_type": "property-extension",
                                     "indicator_kind": kind.singular}
        if kind.fingerprint and fingerprint_key_id is not None:
            extension["fingerprint_key_id"] = fingerprint_key_id
        # No created_by_ref: the id depends only on the pattern, so the same object may come
        # from several producers. Who asserts it is on the producer's 'indicates' relationship.
        indicator = stix2.Indicator(
            id=_stix_id("indicator", pattern), created=created, modified=created,
            name=kind.name.format(shown),
            indicator_types=[kind.indicator_type], pattern=pattern, pattern_type="stix",
            pattern_version="2.1", valid_from=valid_from[pattern],
            extensions={EXTENSION_ID: extension},
        )
        indicators.append(indicator)
        relationships.extend(
            stix2.Relationship(
                id=_stix_id("relationship", "indicates", indicator.id, campaign_id),
                created_by_ref=producer_id, created=created, modified=created,
                relationship_type="indicates", source_ref=indicator.id, target_ref=campaign_id,
            )
            for campaign_id in campaign_ids
        )
    objects += campaigns + indicators + relationships
    content = "\n".join(obj.serialize() for obj in objects)
    return stix2.Bundle(objects=objects, id=_stix_id("bundle", content))


def write_bundle(out_dir: Path, document: Mapping[str, Any], *, producer: str = _PROJECT,
                 fingerprint_key_id: str | None = None) -> Path:
    """Write ``out_dir/indicators.stix.json`` atomically, pretty-printed.

    Args:
        out_dir: The scan's output folder; created if missing.
        document: The contents of ``campaigns.json``.
        producer: See :func:`campaigns_to_bundle`.
        fingerprint_key_id: See :func:`campaigns_to_bundle`.

    Returns:
        The path written.

    Raises:
        DistillwatchInputError: If the document breaks the contract.
    """
    bundle = campaigns_to_bundle(document, producer=producer,
                                 fingerprint_key_id=fingerprint_key_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / BUNDLE_FILENAME
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(bundle.serialize(pretty=True) + "\n", encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    logger.debug("Wrote %s (%d objects)", path, len(bundle.objects))
    return path


_STRING_PATHS = {
    ("ipv4-addr", "value"): "ip_prefixes",
    ("ipv6-addr", "value"): "ip_prefixes",
    (SCAFFOLD_TYPE, "fingerprint"): "templates",
    (PAYMENT_TYPE, "fingerprint"): "payment_fingerprints",
}


def _canonical_ip(value: str, object_type: str) -> str | None:
    try:
        parsed: Any = (ipaddress.ip_network(value, strict=False) if "/" in value
                       else ipaddress.ip_address(value))
    except ValueError:
        return None
    return parsed.compressed if object_type == f"ipv{parsed.version}-addr" else None


def _comparison(expr: Any) -> tuple[str, object] | None:
    if expr.negated or not all(isinstance(c, BasicObjectPathComponent)
                               for c in expr.lhs.property_path):
        return None
    path = (expr.lhs.object_type_name, ".".join(c.property_name for c in expr.lhs.property_path))
    rhs = expr.rhs
    if path == ("autonomous-system", "number") and isinstance(expr, EqualityComparisonExpression):
        if isinstance(rhs, IntegerConstant) and 0 <= rhs.value < 2**32:
            return "asns", rhs.value
        return None
    key = _STRING_PATHS.get(path)
    if key is None or not isinstance(rhs, StringConstant):
        return None
    # Literals from the parser keep their escapes: \' and \\ stand for ' and \.
    value = re.sub(r"\\(.)", r"\1", rhs.value) if not rhs.needs_to_be_quoted else rhs.value
    if key == "ip_prefixes":
        found = _canonical_ip(value, path[0])
        return None if found is None else (key, found)
    if isinstance(expr, EqualityComparisonExpression) and value:
        return key, value
    return None


def _pattern_values(expr: Any) -> list[tuple[str, object]] | None:
    """Values in a pattern built only of ORs of comparisons we know, else None."""
    if isinstance(expr, ParentheticalExpression):
        return _pattern_values(expr.expression)
    if isinstance(expr, ObservationExpression):
        return _pattern_values(expr.operand)
    if isinstance(expr, OrObservationExpression | OrBooleanExpression):
        found: list[tuple[str, object]] = []
        for operand in expr.operands:
            values = _pattern_values(operand)
            if values is None:
                return None
            found += values
        return found
    if isinstance(expr, EqualityComparisonExpression | IsSubsetComparisonExpression):
        value = _comparison(expr)
        return None if value is None else [value]
    return None  # AND, FOLLOWEDBY, qualifiers, other operators: matching needs more than a set


def _load_bundle(path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _fail(f"Cannot read the STIX bundle: {error.strerror}", str(path)) from error
    except UnicodeDecodeError as error:
        raise _fail("The STIX bundle is not UTF-8 text", str(path)) from error
    except json.JSONDecodeError as error:
        raise _fail(f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}",
                    str(path)) from error
    if not isinstance(data, dict) or data.get("type") != "bundle":
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise _fail(f"Not a STIX bundle: expected an object with \"type\": \"bundle\", found "
                    f"{found!r}", str(path))
    if not isinstance(data.setdefault("objects", []), list):
        raise _fail("Not a STIX bundle: 'objects' must be a list", str(path))
    try:
        # allow_custom: partners' bundles may carry custom objects and properties of their
        # own; we read only what we understand and must not refuse the rest.
        return stix2.parse(data, allow_custom=True)
    except (STIXError, ValueError, TypeError, KeyError) as error:
        # stix2 reports some malformed objects as TypeError/KeyError rather than STIXError.
        raise _fail(f"Not a valid STIX bundle: {error}", str(path)) from error


def read_indicators(path: Path) -> dict[str, Any]:
    """Read indicators from a STIX 2.1 bundle, ours or a partner's.

    Patterns are understood when they are single comparisons, or ORs of them, in the forms this
    module writes (``=`` also for networks, ``ISSUBSET`` also for single addresses). Any other
    indicator (other pattern languages, AND, qualifiers, other objects, revoked) is counted in
    ``skipped``.

    Args:
        path: The bundle file.

    Returns:
        ``templates``, ``ip_prefixes`` (canonical: ``203.0.113.0/24``, ``2001:db8::1``),
        ``payment_fingerprints`` and ``fingerprint_key_ids`` as sets of strings, ``asns`` as a
        set of ints, ``campaigns`` as ``{stix campaign id: name}``, ``skipped`` as an int, and
        ``by_campaign``: ``{stix campaign id: {indicator key: set of values}}`` following the
        bundle's ``indicates`` relationships (the values no relationship ties to a campaign of
        the bundle are under ``None``).

    Raises:
        DistillwatchInputError: If the file cannot be read, is not JSON or is not a valid STIX
            bundle; the message names the file and the reason.
    """
    bundle = _load_bundle(path)
    result: dict[str, Any] = {key: set() for key in INDICATOR_KEYS}
    result.update(fingerprint_key_ids=set(), campaigns={}, skipped=0)
    values_of: dict[str, list[tuple[str, Any]]] = {}  # indicator id -> its values
    indicates: dict[str, set[str]] = {}               # indicator id -> campaign ids
    for obj in bundle.get("objects") or []:
        if obj.get("type") == "campaign":
            result["campaigns"][obj["id"]] = obj.get("name")
        if (obj.get("type") == "relationship" and obj.get("relationship_type") == "indicates"
                and not obj.get("revoked", False)):
            indicates.setdefault(obj.get("source_ref"), set()).add(obj.get("target_ref"))
        if obj.get("type") != "indicator":
            continue
        values = None
        # STIX 2.0 indicators have no pattern_type: their patterns are all STIX patterns.
        if obj.get("pattern_type", "stix") == "stix" and not obj.get("revoked", False):
            try:
                parsed = create_pattern_object(obj["pattern"],
                                               version=obj.get("pattern_version", "2.1"))
                values = _pattern_values(parsed)
            except (ParseException, ValueError) as error:
                logger.debug("Pattern not parsed in %s: %s", path, error)
        if values is None:
            logger.debug("Skipped indicator %s in %s: %r", obj.get("id"), path, obj.get("pattern"))
            result["skipped"] += 1
            continue
        for key, value in values:
            result[key].add(value)
        values_of[obj["id"]] = values
        key_id = (obj.get("extensions") or {}).get(EXTENSION_ID, {}).get("fingerprint_key_id")
        if isinstance(key_id, str):
            result["fingerprint_key_ids"].add(key_id)
    by_campaign: dict[str | None, dict[str, set]] = {}
    for indicator, values in values_of.items():
        targets = {c for c in indicates.get(indicator, ()) if c in result["campaigns"]}
        for target in targets or {None}:
            group = by_campaign.setdefault(target, {key: set() for key in INDICATOR_KEYS})
            for key, value in values:
                group[key].add(value)
    result["by_campaign"] = by_campaign
    return result
