"""The STIX bundle: valid STIX 2.1, reproducible ids, no customer data, and a faithful read-back."""

from __future__ import annotations

import copy
import json

import pytest
import stix2

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.share import EXTENSION_ID, campaigns_to_bundle, read_indicators, write_bundle

SECRET_ACCOUNTS = ["acct-7f3e-private", "acct-91aa-private", "acct-5c02-private"]
PROMPT_TEXT = "You are a helpful assistant. Solve step by step"


def campaign(campaign_id="C-0001", *, first_seen="2026-04-22T03:10:00Z", accounts=None,
             **indicators):
    return {
        "campaign_id": campaign_id,
        "confidence": 0.97,
        "accounts": accounts if accounts is not None else SECRET_ACCOUNTS[:2],
        "account_count": 2,
        "exchange_count": 28_800_000,
        "first_seen": first_seen,
        "last_seen": "2026-06-05T22:41:00Z",
        "capabilities": {"coding": 0.41, "agentic_tool_use": 0.33, "reasoning_cot": 0.2,
                         "other": 0.06},
        "tactics": ["hydra_cluster", "proxy_rotation"],
        "evidence": [{"kind": "shared_template", "weight": 0.4,
                      "detail": f"412 accounts send '{PROMPT_TEXT}'"}],
        "indicators": {"templates": [], "ip_prefixes": [], "asns": [],
                       "payment_fingerprints": [], **indicators},
    }


def document(*campaigns, generated_at="2026-06-10T12:00:00Z"):
    return {
        "schema_version": "1",
        "generated_at": generated_at,
        "window": {"start": "2026-04-22T00:00:00Z", "end": "2026-06-05T23:59:59Z"},
        "totals": {"exchanges": 123, "accounts": 45},
        "campaigns": list(campaigns),
    }


@pytest.fixture
def two_campaigns():
    return document(
        campaign("C-0001", templates=["tpl-3f2a9c", "tpl-77b1e0"],
                 ip_prefixes=["203.0.113.0/24", "198.51.100.7"], asns=[64500],
                 payment_fingerprints=["pf-91c0aa"]),
        campaign("C-0002", first_seen="2026-05-01T08:00:00Z", accounts=SECRET_ACCOUNTS[2:],
                 templates=["tpl-3f2a9c"], ip_prefixes=["2001:db8:42::/48"], asns=[64501]),
    )


def by_type(bundle):
    found = {}
    for obj in bundle.objects:
        found.setdefault(obj.type, []).append(obj)
    return found


def test_bundle_is_strict_stix_with_the_expected_objects(two_campaigns):
    text = campaigns_to_bundle(two_campaigns, fingerprint_key_id="dwk-2026-06").serialize()
    parsed = stix2.parse(text, allow_custom=False)
    objects = by_type(parsed)

    assert {kind: len(items) for kind, items in objects.items()} == {
        "identity": 1, "extension-definition": 1, "campaign": 2,
        # tpl-3f2a9c is in both campaigns: one indicator, two relationships.
        "indicator": 8, "relationship": 9,
    }
    assert objects["identity"][0].identity_class == "organization"
    assert objects["extension-definition"][0].id == EXTENSION_ID
    assert objects["extension-definition"][0].extension_types == ["property-extension"]
    indicator_ids = {obj.id for obj in objects["indicator"]}
    campaign_ids = {obj.id for obj in objects["campaign"]}
    for relationship in objects["relationship"]:
        assert relationship.relationship_type == "indicates"
        assert relationship.source_ref in indicator_ids
        assert relationship.target_ref in campaign_ids
    shared = next(o for o in objects["indicator"] if "tpl-3f2a9c" in o.pattern)
    assert {r.target_ref for r in objects["relationship"] if r.source_ref == shared.id} \
        == campaign_ids


def test_campaign_carries_summary_confidence_and_extension(two_campaigns):
    first = by_type(campaigns_to_bundle(two_campaigns))["campaign"][0]

    assert first.name == "C-0001"
    assert first.confidence == 97
    assert str(first.first_seen) == "2026-04-22 03:10:00+00:00"
    assert first.description == (
        "C-0001: 2 accounts, 28,800,000 exchanges, seen 2026-04-22 to 2026-06-05; capabilities "
        "coding 41%, agentic_tool_use 33%, reasoning_cot 20%, other 6%; confidence 0.97.")
    assert dict(first.extensions[EXTENSION_ID]) == {
        "extension_type": "property-extension",
        "campaign_id": "C-0001",
        "account_count": 2,
        "exchange_count": 28_800_000,
        "capabilities": {"agentic_tool_use": 0.33, "coding": 0.41, "other": 0.06,
                         "reasoning_cot": 0.2},
        "tactics": ["hydra_cluster", "proxy_rotation"],
        "evidence": [{"kind": "shared_template", "weight": 0.4}],
    }
    assert "labels" not in first


@pytest.mark.parametrize("key, value, pattern, indicator_type", [
    ("ip_prefixes", "203.0.113.0/24", "[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
     "attribution"),
    ("ip_prefixes", "198.51.100.7", "[ipv4-addr:value = '198.51.100.7']", "attribution"),
    ("ip_prefixes", "2001:DB8:0042::/48", "[ipv6-addr:value ISSUBSET '2001:db8:42::/48']",
     "attribution"),
    ("ip_prefixes", "2001:db8::1", "[ipv6-addr:value = '2001:db8::1']", "attribution"),
    ("asns", 64500, "[autonomous-system:number = 64500]", "attribution"),
    ("templates", "tpl-3f2a9c", "[x-distillwatch-scaffold:fingerprint = 'tpl-3f2a9c']",
     "malicious-activity"),
    ("payment_fingerprints", "pf-91c0aa", "[x-distillwatch-payment:fingerprint = 'pf-91c0aa']",
     "attribution"),
])
def test_each_indicator_kind_has_its_pattern(key, value, pattern, indicator_type):
    bundle = campaigns_to_bundle(document(campaign(**{key: [value]})),
                                 fingerprint_key_id="dwk-2026-06")
    [indicator] = by_type(bundle)["indicator"]

    assert indicator.pattern == pattern
    assert indicator.pattern_type == "stix"
    assert indicator.indicator_types == [indicator_type]
    assert str(indicator.valid_from) == "2026-04-22 03:10:00+00:00"
    extension = indicator.extensions[EXTENSION_ID]
    assert extension["extension_type"] == "property-extension"
    fingerprint = key in ("templates", "payment_fingerprints")
    assert extension.get("fingerprint_key_id") == ("dwk-2026-06" if fingerprint else None)


def test_quotes_in_fingerprints_are_escaped_and_read_back(tmp_path):
    odd = "tpl-it's\\odd"
    path = write_bundle(tmp_path, document(campaign(templates=[odd])))
    [indicator] = by_type(stix2.parse(path.read_text()))["indicator"]

    assert indicator.pattern == "[x-distillwatch-scaffold:fingerprint = 'tpl-it\\'s\\\\odd']"
    assert read_indicators(path)["templates"] == {odd}


def test_two_renders_are_byte_identical(two_campaigns):
    first = campaigns_to_bundle(two_campaigns, fingerprint_key_id="k").serialize(pretty=True)
    second = campaigns_to_bundle(copy.deepcopy(two_campaigns),
                                 fingerprint_key_id="k").serialize(pretty=True)

    assert first == second
    assert '"created": "2026-06-10T12:00:00.000Z"' in first


def test_same_fingerprint_gets_same_id_across_documents():
    one = campaigns_to_bundle(document(campaign("C-0001", templates=["tpl-3f2a9c"])))
    other = campaigns_to_bundle(
        document(campaign("C-0042", first_seen="2026-05-30T00:00:00Z",
                          templates=["tpl-3f2a9c"]), generated_at="2026-07-01T00:00:00Z"),
        producer="partner-lab")
    [mine], [theirs] = by_type(one)["indicator"], by_type(other)["indicator"]

    assert mine.id == theirs.id
    assert by_type(one)["campaign"][0].id != by_type(other)["campaign"][0].id
    assert by_type(one)["extension-definition"] == by_type(other)["extension-definition"]


def test_campaign_id_depends_on_producer_campaign_and_first_seen():
    def campaign_id(producer="distillwatch", **kw):
        bundle = campaigns_to_bundle(document(campaign(**kw)), producer=producer)
        return by_type(bundle)["campaign"][0].id

    base = campaign_id()
    later_scan = campaigns_to_bundle(document(campaign(), generated_at="2027-01-01T00:00:00Z"))
    assert by_type(later_scan)["campaign"][0].id == base
    assert campaign_id(producer="partner-lab") != base
    assert campaign_id(campaign_id="C-0002") != base
    assert campaign_id(first_seen="2026-04-22T03:10:01Z") != base


def test_no_account_ids_or_evidence_text_in_the_json(two_campaigns, tmp_path):
    text = write_bundle(tmp_path, two_campaigns).read_text()

    for secret in [*SECRET_ACCOUNTS, PROMPT_TEXT, "412 accounts"]:
        assert secret not in text
    assert "acct-" not in text


def test_round_trip_returns_the_indicator_sets(two_campaigns, tmp_path):
    path = write_bundle(tmp_path, two_campaigns, fingerprint_key_id="dwk-2026-06")

    assert path == tmp_path / "indicators.stix.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["indicators.stix.json"]
    found = read_indicators(path)
    written = {o.id: o.name for o in by_type(stix2.parse(path.read_text()))["campaign"]}
    by_campaign = found.pop("by_campaign")
    assert found == {
        "templates": {"tpl-3f2a9c", "tpl-77b1e0"},
        "ip_prefixes": {"203.0.113.0/24", "198.51.100.7", "2001:db8:42::/48"},
        "asns": {64500, 64501},
        "payment_fingerprints": {"pf-91c0aa"},
        "fingerprint_key_ids": {"dwk-2026-06"},
        "campaigns": written,
        "skipped": 0,
    }
    assert sorted(written.values()) == ["C-0001", "C-0002"]
    # Each campaign's own values, through the bundle's 'indicates' relationships.
    named = {written[cid]: group for cid, group in by_campaign.items()}
    assert named["C-0001"] == {
        "templates": {"tpl-3f2a9c", "tpl-77b1e0"},
        "ip_prefixes": {"203.0.113.0/24", "198.51.100.7"}, "asns": {64500},
        "payment_fingerprints": {"pf-91c0aa"}}
    assert named["C-0002"] == {"templates": {"tpl-3f2a9c"}, "ip_prefixes": {"2001:db8:42::/48"},
                               "asns": {64501}, "payment_fingerprints": set()}


def test_partner_patterns_we_do_not_understand_are_counted(tmp_path):
    def indicator(pattern, **kw):
        return stix2.Indicator(pattern=pattern, pattern_type=kw.pop("pattern_type", "stix"),
                               valid_from="2026-01-01T00:00:00Z", **kw)

    partner = stix2.Bundle(objects=[
        indicator("[ipv4-addr:value = '192.0.2.0/25' OR ipv4-addr:value = '192.0.2.200']"),
        indicator("[autonomous-system:number = 64511] OR [x-distillwatch-payment:fingerprint"
                  " = 'pf-abc']"),
        indicator("[file:hashes.'SHA-256' = "
                  "'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"),
        indicator("[ipv4-addr:value = '192.0.2.9' AND network-traffic:dst_port = 443]"),
        indicator("[ipv4-addr:value = '192.0.2.10'] WITHIN 60 SECONDS"),
        indicator("[ipv4-addr:value NOT = '192.0.2.11']"),
        indicator("[ipv6-addr:value = '192.0.2.12']"),
        indicator("alert tcp any any -> any any (msg:\"x\";)", pattern_type="snort"),
        indicator("[ipv4-addr:value = '192.0.2.13']", revoked=True),
        stix2.Campaign(name="Partner campaign 7"),
    ])
    path = tmp_path / "partner.json"
    path.write_text(partner.serialize())

    found = read_indicators(path)
    assert found["ip_prefixes"] == {"192.0.2.0/25", "192.0.2.200"}
    assert found["asns"] == {64511}
    assert found["payment_fingerprints"] == {"pf-abc"}
    assert found["templates"] == set()
    assert found["skipped"] == 7
    assert list(found["campaigns"].values()) == ["Partner campaign 7"]


@pytest.mark.parametrize("content, reason", [
    ('{"type": "bundle", "objects": [', "Not valid JSON"),
    ("", "Not valid JSON"),
    ('{"schema_version": "1", "campaigns": []}', "Not a STIX bundle"),
    ('[{"type": "bundle"}]', "Not a STIX bundle"),
    ('{"type": "bundle", "id": "bundle--1", "objects": []}', "Not a valid STIX bundle"),
    ('{"type": "bundle", "id": "bundle--fa078bf4-d83d-41b0-b222-6893ee5402a9", '
     '"objects": [{"type": "indicator", "spec_version": "2.1"}]}', "Not a valid STIX bundle"),
    ('{"type": "bundle", "id": "bundle--fa078bf4-d83d-41b0-b222-6893ee5402a9", '
     '"objects": "none"}', "'objects' must be a list"),
])
def test_malformed_files_name_the_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "from-partner.stix.json"
    path.write_text(content)

    with pytest.raises(DistillwatchInputError, match=reason) as error:
        read_indicators(path)
    assert str(path) in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DistillwatchInputError, match="Cannot read") as error:
        read_indicators(tmp_path / "absent.json")
    assert "absent.json" in str(error.value)


def test_zero_campaigns_gives_identity_and_extension_definition(tmp_path):
    bundle = campaigns_to_bundle(document())

    assert [obj.type for obj in bundle.objects] == ["identity", "extension-definition"]
    path = write_bundle(tmp_path, document())
    assert read_indicators(path) == {
        "templates": set(), "ip_prefixes": set(), "asns": set(), "payment_fingerprints": set(),
        "fingerprint_key_ids": set(), "campaigns": {}, "skipped": 0, "by_campaign": {},
    }


@pytest.mark.parametrize("change, message", [
    ({"confidence": 1.5}, r"'confidence' must be in \[0, 1\]"),
    ({"first_seen": "yesterday"}, "'first_seen' is not an ISO 8601 timestamp"),
    ({"first_seen": "2026-04-22T03:10:00"}, "no time zone"),
    ({"last_seen": "2026-01-01T00:00:00Z"}, "'last_seen' is before 'first_seen'"),
    ({"account_count": "two"}, "'account_count' has the wrong type"),
    ({"indicators": {"ip_prefixes": ["203.0.113.5/24"]}}, "Not an IP address or network"),
    ({"indicators": {"ip_prefixes": ["not-an-ip"]}}, "Not an IP address or network"),
    ({"indicators": {"asns": [-1]}}, "ASN must be an integer"),
    ({"indicators": {"templates": [""]}}, "non-empty strings"),
])
def test_bad_campaigns_are_refused_with_the_campaign_named(change, message):
    bad = campaign("C-0009") | change

    with pytest.raises(DistillwatchInputError, match=message) as error:
        campaigns_to_bundle(document(campaign(), bad))
    assert "campaigns[1] (C-0009)" in str(error.value)


def test_duplicate_campaign_is_refused():
    with pytest.raises(DistillwatchInputError, match="appears twice"):
        campaigns_to_bundle(document(campaign(), campaign()))


def test_generated_at_is_required():
    doc = document()
    del doc["generated_at"]
    with pytest.raises(DistillwatchInputError, match="Missing 'generated_at'"):
        campaigns_to_bundle(doc)


def test_json_on_disk_is_pretty_and_parses_as_strict_stix(two_campaigns, tmp_path):
    text = write_bundle(tmp_path, two_campaigns).read_text()

    assert text.startswith('{\n    "type": "bundle"')
    assert json.loads(text)["type"] == "bundle"
    stix2.parse(text, allow_custom=False)


def test_shared_indicator_is_valid_from_its_earliest_campaign():
    # The earliest is neither first nor last, so taking either end of the list would fail.
    seen = ["2026-05-01T08:00:00Z", "2026-04-22T03:10:00Z", "2026-05-20T00:00:00Z"]
    campaigns = [campaign(f"C-000{i}", first_seen=first, templates=["tpl-3f2a9c"])
                 for i, first in enumerate(seen)]
    [indicator] = by_type(campaigns_to_bundle(document(*campaigns)))["indicator"]

    assert str(indicator.valid_from) == "2026-04-22 03:10:00+00:00"


def test_unknown_indicator_kind_is_logged_not_hidden(caplog):
    odd = campaign(asns=[64500])
    odd["indicators"]["user_agents"] = ["curl/8.0"]
    bundle = campaigns_to_bundle(document(odd))

    assert len(by_type(bundle)["indicator"]) == 1
    assert "curl/8.0" not in bundle.serialize()
    assert "Indicator kind 'user_agents' has no STIX pattern" in caplog.text
