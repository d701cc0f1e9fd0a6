"""The online detector with real components: batch fingerprinting, LocalState, STIX bundles.

A campaign is made the way batch makes one: requests built on one scaffold are fingerprinted
with ``features_from_arrow``, the scaffold keys most of them carry become its ``sk-`` template
fingerprints (``score.build.scaffold_fingerprint``), and a scan output folder holds them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from distillwatch.fingerprint.features import FEATURES_SCHEMA, features_from_arrow
from distillwatch.gateway.decisions import Decision, GatewayPolicy
from distillwatch.gateway.detector import (
    DetectorSettings,
    Observed,
    OnlineDetector,
    exchange_record,
    scaffold_keys,
)
from distillwatch.gateway.indicators import (
    Indicators,
    fingerprint_key_id,
    key_fingerprint,
    scaffold_key,
)
from distillwatch.gateway.state import LocalState
from distillwatch.ingest.batches import Task, run_task
from distillwatch.io.arrow_layout import to_arrow
from distillwatch.score.build import scaffold_fingerprint

KEY = b"test-detector-fingerprint-key-01"
T0 = 1_777_000_000.0
WORDS = ["river", "bridge", "lantern", "copper", "orchard", "signal", "meadow", "harbor",
         "violet", "engine", "quartz", "falcon", "timber", "glacier", "ember", "prairie",
         "canyon", "saddle", "beacon", "pillar", "thunder", "marble", "compass", "willow",
         "anchor", "cedar", "summit", "velvet", "ribbon", "cobalt"]
SCAFFOLD = ("You are an expert tutor writing worked solutions for a textbook.\n"
            "Problem:\n{payload}\n"
            "Think through the problem step by step and number every step you take.\n"
            "After the reasoning, write the final answer on its own line as Final answer.")
AGENT_SYSTEM = ("You are OpenCoder, an open-source coding agent. You edit files in the user's "
                "repository with the tools provided and explain each change briefly.")
AGENT_TOOLS = [{"type": "function", "function": {
    "name": "edit_file", "description": "Replace text in a file of the repository.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                                                    "old": {"type": "string"},
                                                    "new": {"type": "string"}}}}}]


def payload(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30))) + "?"


def templated(rng: random.Random) -> dict:
    return {"model": "m-1", "max_tokens": 4000,
            "messages": [{"role": "user", "content": SCAFFOLD.format(payload=payload(rng))}]}


def ordinary(rng: random.Random) -> dict:
    return {"model": "m-1", "messages": [{"role": "user", "content": payload(rng)}]}


def agent(rng: random.Random) -> dict:
    return {"model": "m-1", "tools": AGENT_TOOLS,
            "messages": [{"role": "system", "content": AGENT_SYSTEM},
                         {"role": "user", "content": "Please fix the bug: " + payload(rng)}]}


def observed(account: str, body: dict | bytes, ts: float, ip: str = "198.51.100.7",
             api: str = "openai_chat") -> Observed:
    return Observed(account, f"kid-{account}", ip, "python-httpx/0.27", api, body, ts)


def template_indicators(bodies: list[dict], share: float = 0.3, key: bytes = KEY) -> list[str]:
    """What batch would list for a campaign sending ``bodies``: keys most requests carry."""
    records = [exchange_record(observed("member", b, T0), f"m-{i}")
               for i, b in enumerate(bodies)]
    table = features_from_arrow(to_arrow(records), key).to_pylist()
    counts: Counter = Counter()
    for row in table:
        keys = set(row["band_keys"]) | set(row["line_hashes"]) | {row["head_key"],
                                                                  row["tail_key"]}
        keys |= {row[k] for k in ("system_hash", "tools_hash") if row[k] is not None}
        counts.update(keys)
    # score/build.py: a token is "s" + the key; its shareable form is scaffold_fingerprint.
    return [scaffold_fingerprint(f"s{k}") for k, n in counts.most_common(50)
            if n >= share * len(table)]


def write_scan(folder: Path, campaigns: list[dict], accounts: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document = {"schema_version": "1", "generated_at": "2026-06-01T00:00:00Z",
                "window": {"start": "2026-05-01T00:00:00Z", "end": "2026-05-31T00:00:00Z"},
                "totals": {"exchanges": 1000, "accounts": len(accounts)},
                "campaigns": campaigns}
    (folder / "campaigns.json").write_bytes(orjson.dumps(document))
    (folder / "accounts.jsonl").write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in accounts))
    return folder


def campaign(cid: str, templates: list[str], **indicators) -> dict:
    return {"campaign_id": cid, "confidence": 0.95, "accounts": ["member-1", "member-2"],
            "account_count": 2, "exchange_count": 900, "first_seen": "2026-05-01T00:00:00Z",
            "last_seen": "2026-05-30T00:00:00Z", "capabilities": {"reasoning_cot": 1.0},
            "tactics": ["template_sweep"], "evidence": [],
            "indicators": {"templates": templates, "ip_prefixes": [], "asns": [],
                           "payment_fingerprints": [], **indicators}}


@pytest.fixture(scope="module")
def campaign_templates() -> list[str]:
    rng = random.Random(7)
    return template_indicators([templated(rng) for _ in range(40)])


@pytest.fixture
def scan_dir(tmp_path, campaign_templates) -> Path:
    return write_scan(tmp_path / "scan", [campaign("C-0001", campaign_templates,
                                                   ip_prefixes=["203.0.113.0/24"],
                                                   payment_fingerprints=["pf-campaign"])],
                      [{"account_id": "member-1", "decision": "block", "campaign_id": "C-0001"},
                       {"account_id": "old-customer", "decision": "allow", "campaign_id": None}])


def make(indicators: Indicators, **settings) -> tuple[OnlineDetector, LocalState, dict]:
    clock = {"now": T0}
    state = LocalState(GatewayPolicy(), clock=lambda: clock["now"])
    detector = OnlineDetector(indicators, state, KEY,
                              DetectorSettings(**{"executor": "inline", **settings}))
    return detector, state, clock


async def send(detector, clock, requests: list[Observed]) -> list:
    """One request per batch, in order; the verdicts."""
    out = []
    for request in requests:
        clock["now"] = request.ts
        out += await detector.process([request])
    return out


def first_decision(verdicts) -> tuple[int, object] | tuple[None, None]:
    for number, verdict in enumerate(verdicts, start=1):
        if verdict.decision is not None:
            return number, verdict
    return None, None


# --- fingerprints ---------------------------------------------------------------------------


def test_online_fingerprints_equal_batch_ingest_of_the_same_exchange(tmp_path):
    """Requests in each wire format, logged as provider log lines and ingested by batch, give
    the features the online path computes from the request alone."""
    rng = random.Random(3)
    bodies = [
        ("openai_chat", templated(rng), {"choices": [{"message": {"content": "ok"}}]}),
        ("openai_chat", agent(rng), {"choices": [{"message": {"content": "done"}}]}),
        # An agent's turn with its history: scaffold keys read one system prompt and the
        # last user message of it.
        ("openai_chat", {**agent(rng), "messages": [
            {"role": "developer", "content": "Answer in English."},
            {"role": "system", "content": AGENT_SYSTEM},
            {"role": "user", "content": SCAFFOLD.format(payload=payload(rng))},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c1", "type": "function",
                "function": {"name": "read_file", "arguments": "{\"path\": \"a.py\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "print(1)"},
            {"role": "user", "content": [{"type": "text",
                                          "text": SCAFFOLD.format(payload=payload(rng))}]},
            {"role": "assistant", "content": "ok"}]},
         {"choices": [{"message": {"content": "done"}}]}),
        ("openai_responses", {"model": "m-1", "instructions": "Be terse.",
                              "input": SCAFFOLD.format(payload=payload(rng)),
                              "reasoning": {"effort": "high"}},
         {"object": "response", "output": []}),
        # Anthropic's agent turn: the tool's output comes back in a user turn of tool_result
        # parts, and the prompt is the last user turn that holds more than that.
        ("anthropic_messages", {
            "model": "m-1", "system": [{"type": "text", "text": AGENT_SYSTEM}],
            "max_tokens": 900,
            "tools": [{"name": "read_file", "description": "Read a file",
                       "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": SCAFFOLD.format(payload=payload(rng))},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c1",
                                                   "name": "read_file", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1",
                                              "content": "print(1)"}]}]},
         {"type": "message", "content": [{"type": "text", "text": "hi"}],
          "stop_reason": "end_turn"}),
        ("openai_responses", {"model": "m-1", "instructions": AGENT_SYSTEM, "input": [
            {"role": "user", "content": SCAFFOLD.format(payload=payload(rng))},
            {"type": "function_call", "call_id": "c1", "name": "read_file", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "print(1)"}],
            "tools": [{"type": "function", "name": "read_file", "parameters": {}}]},
         {"object": "response", "output": []}),
        ("openai_completions", {"model": "m-1", "prompt": [
            SCAFFOLD.format(payload=payload(rng)), SCAFFOLD.format(payload=payload(rng))]},
         {"object": "text_completion", "choices": [{"text": "ok"}, {"text": "ok"}]}),
        ("anthropic_messages", {"model": "m-1", "system": AGENT_SYSTEM, "max_tokens": 900,
                                "thinking": {"type": "enabled", "budget_tokens": 2000},
                                "messages": [{"role": "user", "content": [
                                    {"type": "text", "text": payload(rng)}]}]},
         {"type": "message", "content": [{"type": "text", "text": "hi"}],
          "stop_reason": "end_turn"}),
    ]
    requests, lines = [], []
    for number, (api, body, response) in enumerate(bodies):
        request = observed(f"acct-{number}", body, T0 + number, api=api)
        requests.append(request)
        record = exchange_record(request, f"ex-{number}")
        lines.append((number + 1, orjson.dumps({
            "request_id": f"ex-{number}", "timestamp": record["timestamp"],
            "account_id": request.account_id, "api_key_id": request.key_id,
            "client_ip": request.client_ip, "user_agent": request.user_agent,
            "request": body, "response": response})))
    batch = run_task(Task(source="log.jsonl", kind="jsonl", lines=tuple(lines)), KEY)
    assert not batch.rejects and batch.features.num_rows == len(bodies)
    online = features_from_arrow(to_arrow([exchange_record(r, f"ex-{i}")
                                           for i, r in enumerate(requests)]), KEY)
    response_free = {"output_tokens"}  # the gateway fingerprints before the answer exists
    for field in FEATURES_SCHEMA:
        if field.name not in response_free:
            assert online.column(field.name).to_pylist() == \
                batch.features.column(field.name).to_pylist(), field.name
    # scaffold_keys returns exactly the batch keys, in sk- form as score/build.py shows them.
    keys = scaffold_keys(requests, KEY)
    got = {(int(keys.rows[keys.key_row[p]]), int(keys.keys[p])) for p in range(len(keys.keys))}
    want = set()
    for row, features in enumerate(batch.features.to_pylist()):
        values = {*features["band_keys"], *features["line_hashes"], features["head_key"],
                  features["tail_key"], features["system_hash"], features["tools_hash"]}
        want |= {(row, v) for v in values if v is not None}
    assert got == want
    for _, value in list(got)[:50]:
        assert key_fingerprint(value) == scaffold_fingerprint(f"s{value}")
        assert scaffold_key(key_fingerprint(value)) == value


def test_request_body_is_not_modified_and_malformed_requests_are_skipped():
    body = {"model": "m-1", "messages": [{"role": "user", "content": "x" * 300_000}]}
    before = orjson.dumps(body)
    keys = scaffold_keys([observed("a", body, T0),
                          observed("b", {"model": "m-1", "messages": []}, T0),
                          observed("c", {"model": "m-1", "prompt": "complete me"}, T0,
                                   api="openai_completions")], KEY)
    assert orjson.dumps(body) == before  # batch caps long text: on its own copy
    assert keys.rows.tolist() == [0, 2]


# --- decisions ------------------------------------------------------------------------------


def test_new_account_replaying_campaign_templates_is_throttled_within_a_few_requests(scan_dir):
    detector, state, clock = make(Indicators.build(scan_dir=scan_dir))
    rng = random.Random(11)
    verdicts = asyncio.run(send(detector, clock, [
        observed("new-head", templated(rng), T0 + 30 * i) for i in range(12)]))
    number, verdict = first_decision(verdicts)
    assert number is not None and number <= 5
    assert verdict.rule == "repeat" and verdict.decision.kind == "throttle"
    assert verdict.decision.source == "detector" and verdict.decision.campaign_id == "C-0001"
    assert "C-0001" in verdict.decision.reason and "sk-" in verdict.decision.reason
    assert asyncio.run(state.get_decision("account:new-head")).kind == "throttle"
    assert all("C-0001" in v.template_hits for v in verdicts)
    # An ordinary user of the same gateway, and the known member, get nothing from it.
    others = asyncio.run(send(detector, clock, [
        observed("someone", ordinary(rng), T0 + 1000 + i) for i in range(12)]
        + [observed("member-1", templated(rng), T0 + 2000 + i) for i in range(12)]))
    assert first_decision(others) == (None, None)
    assert not any(v.template_hits for v in others[:12])


def test_open_source_agent_whose_system_prompt_and_tools_are_indicators_is_not_decided(
        tmp_path, campaign_templates):
    rng = random.Random(5)
    agent_keys = template_indicators([agent(rng) for _ in range(20)], share=0.9)
    record = features_from_arrow(to_arrow([exchange_record(
        observed("x", agent(rng), T0), "x")]), KEY).to_pylist()[0]
    shared = [key_fingerprint(record["system_hash"]), key_fingerprint(record["tools_hash"])]
    assert set(shared) <= set(agent_keys)
    scan = write_scan(tmp_path / "scan", [campaign("C-0001", [*campaign_templates, *shared])], [])
    detector, _, clock = make(Indicators.build(scan_dir=scan))
    verdicts = asyncio.run(send(detector, clock, [
        observed("dev", agent(rng), T0 + 20 * i) for i in range(40)]))
    assert first_decision(verdicts) == (None, None)
    assert not any(v.template_hits for v in verdicts)
    assert any(m.scaffold == "system" for m in verdicts[0].matches)  # matched, but weak


def test_partner_stix_indicators_match(tmp_path, campaign_templates):
    from distillwatch.share.stix import write_bundle

    document = orjson.loads(write_scan(tmp_path / "partner", [
        campaign("P-7", campaign_templates, ip_prefixes=["192.0.2.0/24"])], []
    ).joinpath("campaigns.json").read_bytes())
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    write_bundle(ours, document, producer="partner-lab", fingerprint_key_id=fingerprint_key_id(KEY))
    write_bundle(theirs, document, producer="other-lab", fingerprint_key_id="k-000000000000")
    indicators = Indicators.build(stix=[ours / "indicators.stix.json"], key=KEY)
    assert indicators.summary()["campaigns"]["stix:indicators.stix"]["templates"] == \
        len(campaign_templates)
    detector, _, clock = make(indicators)
    rng = random.Random(2)
    number, verdict = first_decision(asyncio.run(send(detector, clock, [
        observed("head", templated(rng), T0 + 10 * i) for i in range(8)])))
    assert number is not None and verdict.decision.campaign_id == "stix:indicators.stix"
    # Fingerprints under another key can never match: only the partner's networks are kept.
    foreign = Indicators.build(stix=[theirs / "indicators.stix.json"], key=KEY)
    assert foreign.template_count("stix:indicators.stix") == 0
    assert foreign.campaigns_of_ip("192.0.2.44") == (("stix:indicators.stix", "192.0.2.0/24"),)


def test_a_partner_bundle_of_two_campaigns_is_matched_as_two(tmp_path, campaign_templates):
    from distillwatch.share.stix import write_bundle

    half = len(campaign_templates) // 2
    document = orjson.loads(write_scan(tmp_path / "partner", [
        campaign("P-7", campaign_templates[:half], ip_prefixes=["192.0.2.0/24"]),
        campaign("P-8", campaign_templates[half:], ip_prefixes=["198.51.100.0/24"])], []
    ).joinpath("campaigns.json").read_bytes())
    write_bundle(tmp_path / "bundle", document, producer="partner-lab",
                 fingerprint_key_id=fingerprint_key_id(KEY))
    indicators = Indicators.build(stix=[tmp_path / "bundle" / "indicators.stix.json"], key=KEY)
    summary = indicators.summary()["campaigns"]
    assert sorted(summary) == ["stix:indicators.stix/P-7", "stix:indicators.stix/P-8"]
    assert summary["stix:indicators.stix/P-7"]["templates"] == half
    assert indicators.campaigns_of_ip("198.51.100.9") == (
        ("stix:indicators.stix/P-8", "198.51.100.0/24"),)


def test_ipv6_network_indicators_match_any_address_of_theirs(tmp_path, campaign_templates):
    indicators = Indicators.build(scan_dir=write_scan(tmp_path / "scan", [
        campaign("C-6", campaign_templates, ip_prefixes=[
            "2001:db8:1::/48", "2001:db8:2:3::/64", "2001:db8:4::9", "2001:db9:500::/40"])], []),
        key=KEY)
    assert indicators.campaigns_of_ip("2001:db8:1:ffff::1") == (("C-6", "2001:db8:1::/48"),)
    assert indicators.campaigns_of_ip("2001:db8:2:3:a::b") == (("C-6", "2001:db8:2:3::/64"),)
    # One IPv6 address stands for its /64: the next request comes from another of them.
    assert indicators.campaigns_of_ip("2001:db8:4::77") == (("C-6", "2001:db8:4::/64"),)
    assert indicators.campaigns_of_ip("2001:db9:5aa:1::1") == (("C-6", "2001:db9:500::/40"),)
    assert indicators.campaigns_of_ip("2001:db8:6::1") == ()


def test_payment_fingerprint_plus_one_template_hit_decides_a_new_account(tmp_path, scan_dir):
    accounts = tmp_path / "accounts.jsonl"
    accounts.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in [
        {"account_id": "fresh-payer", "payment_fingerprint": "pf-campaign", "verified": False,
         "signup_channel": "self_serve", "created_at": "2026-06-01T00:00:00Z"},
        {"account_id": "fresh-other", "payment_fingerprint": "pf-someone", "verified": False,
         "signup_channel": "self_serve", "created_at": "2026-06-01T00:00:00Z"}]))
    detector, state, clock = make(Indicators.build(scan_dir=scan_dir, accounts=[accounts]))
    rng = random.Random(9)
    body = templated(rng)
    paid = asyncio.run(send(detector, clock, [observed("fresh-payer", body, T0)]))
    other = asyncio.run(send(detector, clock, [observed("fresh-other", body, T0 + 1)]))
    assert paid[0].template_hits == ("C-0001",)
    assert paid[0].rule == "payment" and paid[0].decision.kind == "verify"
    assert "pf-campaign" in paid[0].decision.reason
    assert other[0].decision is None  # the same request without the campaign's card


def test_two_families_template_and_network(scan_dir):
    detector, _, clock = make(Indicators.build(scan_dir=scan_dir), repeat_min_touches=100)
    rng = random.Random(4)
    verdicts = asyncio.run(send(detector, clock, [
        observed("proxied", templated(rng), T0 + i, ip=f"203.0.113.{i + 1}") for i in range(4)]))
    number, verdict = first_decision(verdicts)
    assert number == 2 and verdict.rule == "two_families"
    assert "203.0.113.0/24" in verdict.decision.reason


@pytest.mark.parametrize("account", ["vendor-1", "verified-1", "old-customer"])
def test_organisations_verified_and_scan_allowed_accounts_are_not_decided_on_one_family(
        tmp_path, scan_dir, account):
    accounts = tmp_path / "accounts.jsonl"
    accounts.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in [
        {"account_id": "vendor-1", "organization_id": "org-9"},
        {"account_id": "verified-1", "verified": True, "signup_channel": "education"}]))
    detector, _, clock = make(Indicators.build(scan_dir=scan_dir, accounts=[accounts]))
    rng = random.Random(6)
    verdicts = asyncio.run(send(detector, clock, [
        observed(account, templated(rng), T0 + i) for i in range(15)]))
    assert first_decision(verdicts) == (None, None)
    assert all(v.template_hits == ("C-0001",) for v in verdicts)
    # Two families still decide: the campaign's network as well.
    proxied = asyncio.run(send(detector, clock, [
        observed(account, templated(rng), T0 + 100 + i, ip="203.0.113.9") for i in range(2)]))
    assert proxied[-1].rule == "two_families"


def test_keys_protected_accounts_also_carry_weigh_less(scan_dir):
    """Two accounts the scan allowed send the campaign's scaffold: it is common legitimate
    text, and a new account's requests on it are no longer template hits."""
    scan = scan_dir / "accounts.jsonl"
    scan.write_bytes(scan.read_bytes() + orjson.dumps(
        {"account_id": "old-customer-2", "decision": "allow", "campaign_id": None}) + b"\n")
    detector, _, clock = make(Indicators.build(scan_dir=scan_dir))
    rng = random.Random(14)
    legit = asyncio.run(send(detector, clock, [
        observed(account, templated(rng), T0 + i)
        for i in range(10) for account in ("old-customer", "old-customer-2")]))
    assert legit[0].template_hits == ("C-0001",)
    assert not any(v.template_hits for v in legit[-4:])
    head = asyncio.run(send(detector, clock, [
        observed("new-head", templated(rng), T0 + 100 + i) for i in range(10)]))
    assert first_decision(head) == (None, None) and not any(v.template_hits for v in head)


def test_an_admin_decision_is_never_overridden(scan_dir):
    detector, state, clock = make(Indicators.build(scan_dir=scan_dir))
    asyncio.run(state.set_override("account:vip", Decision("allow", source="admin")))
    rng = random.Random(8)
    verdicts = asyncio.run(send(detector, clock, [
        observed("vip", templated(rng), T0 + i) for i in range(10)]))
    assert first_decision(verdicts) == (None, None)
    assert asyncio.run(state.get_decision("account:vip")).kind == "allow"


# --- the queue, the loop, reloads ------------------------------------------------------------


def test_observe_drops_and_counts_when_the_queue_is_full(scan_dir):
    async def scenario():
        detector, _, _ = make(Indicators.build(scan_dir=scan_dir), queue_size=3)
        started = time.perf_counter()
        for i in range(10):
            detector.observe(observed("a", ordinary(random.Random(i)), T0))
        return detector, time.perf_counter() - started

    detector, seconds = asyncio.run(scenario())
    assert detector.stats["observed"] == 3 and detector.stats["dropped"] == 7
    assert detector.pending == 3
    assert seconds < 0.05  # never waits for room


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_run_loop_batches_the_queue_and_decides(scan_dir, executor):
    async def scenario():
        state = LocalState(GatewayPolicy())
        detector = OnlineDetector(Indicators.build(scan_dir=scan_dir), state, KEY,
                                  DetectorSettings(executor=executor, max_batch=4,
                                                   batch_wait_s=0.002))
        task = asyncio.create_task(detector.run())
        rng = random.Random(12)
        now = time.time()
        for i in range(10):
            detector.observe(observed("looped", templated(rng), now + i * 0.001))
        deadline = time.monotonic() + 30
        while detector.stats["processed"] < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return detector, await state.get_decision("account:looped")

    detector, decision = asyncio.run(scenario())
    assert detector.stats["processed"] == 10 and detector.stats["batches"] >= 3
    assert detector.stats["errors"] == 0
    assert decision is not None and decision.kind == "throttle"


def test_reload_swaps_indicators(tmp_path, scan_dir):
    empty = write_scan(tmp_path / "empty", [], [])
    detector, _, clock = make(Indicators.build(scan_dir=empty))
    rng = random.Random(13)
    before = asyncio.run(send(detector, clock, [
        observed("head", templated(rng), T0 + i) for i in range(6)]))
    assert first_decision(before) == (None, None) and not any(v.matches for v in before)
    detector.reload(Indicators.build(scan_dir=scan_dir))
    assert detector.indicators.summary()["totals"]["campaigns"] == 1
    after = asyncio.run(send(detector, clock, [
        observed("head-2", templated(rng), T0 + 100 + i) for i in range(6)]))
    assert first_decision(after)[0] is not None


def test_indicator_summary_counts_without_values(scan_dir, campaign_templates):
    summary = Indicators.build(scan_dir=scan_dir).summary()
    assert summary["totals"]["templates"] == len(campaign_templates)
    assert summary["campaigns"]["C-0001"]["payment_fingerprints"] == 1
    assert summary["totals"]["known_members"] == 1
    assert "pf-campaign" not in orjson.dumps(summary).decode()


def test_settings_are_strict(tmp_path):
    from distillwatch.exceptions import DistillwatchConfigError

    assert DetectorSettings.from_path_or_dict(None) == DetectorSettings()
    with pytest.raises(DistillwatchConfigError, match="repeat_min_hitz"):
        DetectorSettings.from_path_or_dict({"repeat_min_hitz": 3})
    path = tmp_path / "detector.yaml"
    path.write_text("decision_repeat: allow\n")
    with pytest.raises(DistillwatchConfigError, match=str(path)):
        DetectorSettings.from_path_or_dict(path)
    with pytest.raises(DistillwatchConfigError, match="window_s"):
        DetectorSettings.from_path_or_dict({"window_s": "long"})
    with pytest.raises(DistillwatchConfigError, match="worker_nice must be 0 to 19"):
        DetectorSettings.from_path_or_dict({"worker_nice": 20})


def test_a_body_as_sent_is_fingerprinted_as_the_parsed_one():
    # The gateway hands the worker the bytes it received; the LiteLLM adapter, a dict.
    rng = random.Random(3)
    bodies = [templated(rng), agent(rng), ordinary(rng)]
    parsed = [observed(f"a{i}", body, T0 + i) for i, body in enumerate(bodies)]
    raw = [observed(f"a{i}", orjson.dumps(body), T0 + i) for i, body in enumerate(bodies)]
    raw += [observed("bad", b'{"model": "m", "messages": [', T0),
            observed("list", b"[1, 2]", T0)]
    want, got = scaffold_keys(parsed, KEY), scaffold_keys(raw, KEY)
    assert list(got.rows) == [0, 1, 2]  # the two that are not JSON objects are left out
    for name in ("key_row", "key_kind", "keys"):
        assert np.array_equal(getattr(got, name), getattr(want, name))


def test_keys_are_found_in_the_sorted_index_as_isin_finds_them():
    from distillwatch.gateway.detector import _found, _sorted_keys

    rng = np.random.default_rng(7)
    known = rng.integers(-2**62, 2**62, size=2000)
    index = _sorted_keys([*known, *known[:5], -2**63, 2**63 - 1])  # repeats and the extremes
    keys = np.concatenate([rng.integers(-2**62, 2**62, size=500), known[::9],
                           [-2**63, 2**63 - 1, 0]])
    rng.shuffle(keys)
    assert np.array_equal(_found(keys, index), np.flatnonzero(np.isin(keys, index)))
    assert len(_found(keys, index)) == len(known[::9]) + 2
    assert len(_found(keys, _sorted_keys([]))) == len(_found(keys[:0], index)) == 0


def test_the_fingerprinting_worker_runs_below_the_gateway():
    # What the worker process runs first (here in a child, as in the pool): it lowers its
    # own priority by worker_nice and leaves the parent's alone.
    import multiprocessing
    import os

    from distillwatch.gateway import detector

    base = os.getpriority(os.PRIO_PROCESS, 0)
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, initializer=detector._start_worker, initargs=(os.getpid(), 5)) as pool:
        assert pool.apply(os.getpriority, (os.PRIO_PROCESS, 0)) == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


# --- through the gateway ---------------------------------------------------------------------


def test_the_gateway_throttles_a_new_head_through_the_real_detector(tmp_path, make_gateway):
    """``distillwatch serve --scan DIR``: the app's default detector (worker process) sees the
    proxied requests and the next requests of the new head get 429."""
    from distillwatch.gateway.app import default_detector

    from .conftest import KEY as GATEWAY_KEY

    rng = random.Random(21)
    templates = template_indicators([templated(rng) for _ in range(40)], key=GATEWAY_KEY)
    scan = write_scan(tmp_path / "scan", [campaign("C-0001", templates)], [])
    gateway = make_gateway(scan_dir=scan, detector=default_detector)
    statuses = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and 429 not in statuses:
        response = gateway.client.post("/v1/chat/completions", json=templated(rng),
                                       headers={"x-account-id": "new-head"})
        statuses.append(response.status_code)
        time.sleep(0.05)
    assert 429 in statuses and set(statuses) <= {200, 429}
    assert response.headers.get("retry-after")
    assert gateway.client.post("/v1/chat/completions", json=ordinary(rng),
                               headers={"x-account-id": "someone"}).status_code == 200
