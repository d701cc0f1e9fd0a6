"""The admin API: token, list / set / clear decisions, indicators, health, metrics; and the
detector seam (observe, run, summary) with a stand-in detector."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from distillwatch.gateway.decisions import Decision, GatewayPolicy

from .conftest import ADMIN_TOKEN, anthropic_body, chat_body, wait_for


def test_admin_refused_without_or_with_a_wrong_token(make_gateway):
    gateway = make_gateway()
    for headers in ({}, {"authorization": "Bearer wrong-token-0123456789"},
                    {"authorization": ADMIN_TOKEN}, {"authorization": f"Basic {ADMIN_TOKEN}"}):
        for method, path in (("GET", "/admin/decisions"),
                             ("PUT", "/admin/decisions/account:a"),
                             ("DELETE", "/admin/decisions/account:a"),
                             ("GET", "/admin/indicators"), ("GET", "/metrics")):
            answer = gateway.client.request(method, path, headers=headers,
                                            json={"kind": "allow"} if method == "PUT" else None)
            assert answer.status_code == 401, (method, path, headers)
    assert gateway.gateway.state.layers["admin"] == {}
    assert gateway.client.get("/healthz").status_code == 200  # no token needed


def test_admin_disabled_without_a_token(make_gateway):
    gateway = make_gateway(admin_token=None)
    assert gateway.client.get("/admin/decisions").status_code == 404
    assert gateway.client.get("/metrics").status_code == 404
    assert gateway.client.get("/healthz").json()["admin"] is False


def test_set_enforce_list_and_clear(make_gateway):
    gateway = make_gateway()
    headers = {"x-account-id": "acct-7", "authorization": "Bearer sk-7"}
    assert gateway.client.post("/v1/messages", json=anthropic_body(),
                               headers=headers).status_code == 200
    put = gateway.admin("PUT", "/admin/decisions/account:acct-7",
                        json={"kind": "verify", "reason": "ticket 42", "ttl": 3600})
    assert put.status_code == 200 and put.json()["decision"]["source"] == "admin"
    refused = gateway.client.post("/v1/messages", json=anthropic_body(), headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    listed = gateway.admin("GET", "/admin/decisions?layer=admin").json()
    assert [(d["subject"], d["kind"], d["reason"]) for d in listed["decisions"]] == [
        ("account:acct-7", "verify", "ticket 42")]
    assert listed["decisions"][0]["expires_at"] > time.time() + 3500
    one = gateway.admin("GET", "/admin/decisions/account:acct-7").json()
    assert one["effective"]["kind"] == "verify" and one["scan"] is None
    assert gateway.admin("DELETE", "/admin/decisions/account:acct-7").json()["deleted"]
    assert gateway.admin("DELETE", "/admin/decisions/account:acct-7").status_code == 404
    assert gateway.client.post("/v1/messages", json=anthropic_body(),
                               headers=headers).status_code == 200
    # Keys are named by key id, never by the key.
    assert gateway.admin("PUT", "/admin/decisions/key:sk-7",
                         json={"kind": "block"}).status_code == 400
    kid = gateway.gateway.identity.key_id(b"sk-7")
    assert gateway.admin("PUT", f"/admin/decisions/key:{kid}",
                         json={"kind": "block"}).status_code == 200
    assert gateway.client.post("/v1/messages", json=anthropic_body(),
                               headers={"authorization": "Bearer sk-7"}).status_code == 403


def test_an_ipv6_subject_is_its_64(make_gateway):
    gateway = make_gateway()
    answer = gateway.admin("PUT", "/admin/decisions/ip:2001:db8:1:2::99",
                           json={"kind": "block", "reason": "proxy /64"})
    assert answer.status_code == 200
    listed = gateway.admin("GET", "/admin/decisions?layer=admin").json()
    assert "ip:2001:db8:1:2::/64" in orjson.dumps(listed).decode()
    assert gateway.admin("PUT", "/admin/decisions/ip:2001:db8:1:3::/64",
                         json={"kind": "block"}).status_code == 200
    assert gateway.admin("PUT", "/admin/decisions/ip:198.51.100.7/64",
                         json={"kind": "block"}).status_code == 400


def test_bad_admin_input_is_a_400_that_says_why(make_gateway):
    gateway = make_gateway()
    for subject, body, words in (("account:a", {"kind": "ban"}, "Unknown decision"),
                                 ("account:a", {"kind": "block", "ttl": -1}, "ttl"),
                                 ("account:a", {"kind": "block", "why": "x"}, "Unknown field"),
                                 ("person:a", {"kind": "block"}, "account:<id>"),
                                 ("ip:not-an-ip", {"kind": "block"}, "not an IP")):
        answer = gateway.admin("PUT", f"/admin/decisions/{subject}", json=body)
        assert answer.status_code == 400 and words in answer.json()["error"]
    answer = gateway.admin("PUT", "/admin/decisions/account:a", content=b"{not json")
    assert answer.status_code == 400


def test_indicators_health_and_metrics(make_gateway, tmp_path):
    scan = tmp_path / "scan"
    scan.mkdir()
    (scan / "accounts.jsonl").write_bytes(orjson.dumps(
        {"account_id": "acct-c", "decision": "block", "campaign_id": "C-0001",
         "reasons": ["campaign_member"]}) + b"\n")
    (scan / "campaigns.json").write_bytes(orjson.dumps({"campaigns": [
        {"campaign_id": "C-0001", "confidence": 0.9, "account_count": 1,
         "indicators": {"ip_prefixes": ["203.0.113.0/24"]}}]}))
    gateway = make_gateway(scan_dir=scan, log_dir=tmp_path / "logs")
    indicators = gateway.admin("GET", "/admin/indicators").json()
    assert indicators["detector"] is None
    assert indicators["scan"]["decisions"] == {"block": 1}
    assert indicators["scan"]["campaigns"][0]["indicators"]["ip_prefixes"] == ["203.0.113.0/24"]
    gateway.client.post("/v1/chat/completions", json=chat_body(),
                        headers={"x-account-id": "acct-c"})
    gateway.client.post("/v1/chat/completions", json=chat_body(),
                        headers={"x-account-id": "acct-ok"})
    health = gateway.client.get("/healthz").json()
    assert health["status"] == "ok" and health["upstream"]["ok"] is True
    assert health["state"]["decisions"]["scan"] == 1
    gateway.gateway.sink.drain()
    text = gateway.admin("GET", "/metrics").text
    for line in ('distillwatch_gateway_requests_total{route="openai_chat",status="403"} 1.0',
                 'distillwatch_gateway_requests_total{route="openai_chat",status="200"} 1.0',
                 'distillwatch_gateway_decisions_total{kind="block",source="scan"} 1.0',
                 'distillwatch_gateway_decisions_total{kind="allow",source="default"} 1.0',
                 'distillwatch_gateway_upstream_seconds_count{route="openai_chat"} 1.0',
                 'distillwatch_gateway_overhead_seconds_count{route="openai_chat"} 2.0',
                 "distillwatch_gateway_sink_written_total 1.0",
                 "distillwatch_gateway_sink_queue_depth 0.0"):
        assert line in text, line
    assert "distillwatch_gateway_redis_errors_total 0.0" in text
    assert "distillwatch_gateway_sink_dropped_total 0.0" in text


class StandInDetector:
    """A detector with the app's four-method seam; blocks an account on its second request."""

    def __init__(self, config, counters) -> None:
        self.counters = counters
        self.seen: list[tuple] = []
        self.queue: asyncio.Queue = asyncio.Queue()
        self.running = False

    def observe(self, api, account, key_id, ip, user_agent, body, ts) -> None:
        self.seen.append((api, account, key_id, ip, orjson.loads(body)["model"]))
        self.queue.put_nowait(account)

    async def run(self) -> None:
        self.running = True
        counts: dict[str, int] = {}
        while True:
            account = await self.queue.get()
            counts[account] = counts.get(account, 0) + 1
            if counts[account] >= 2:
                await self.counters.set_decision(
                    f"account:{account}", Decision("throttle", source="detector",
                                                   reason="stand-in", campaign_id="C-9"))

    def summary(self) -> dict:
        return {"totals": {"campaigns": 1}, "observed": len(self.seen)}


def test_the_detector_seam_observes_and_decides_through_state(make_gateway):
    gateway = make_gateway(GatewayPolicy(), detector=StandInDetector)
    detector = gateway.gateway.detector
    wait_for(lambda: detector.running)
    headers = {"x-account-id": "acct-new", "authorization": "Bearer sk-new"}
    assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                               headers=headers).status_code == 200
    assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                               headers=headers).status_code == 200
    wait_for(lambda: gateway.client.post("/v1/chat/completions", json=chat_body(),
                                         headers=headers).status_code == 429)
    api, account, kid, ip, model = detector.seen[0]
    assert (api, account, ip, model) == ("openai_chat", "acct-new", "127.0.0.1", "gpt-test")
    assert kid == gateway.gateway.identity.key_id(b"sk-new")
    assert len(detector.seen) == 2  # refused requests are not observed
    gateway.client.get("/v1/models")
    assert len(detector.seen) == 2  # nor other /v1 paths
    assert gateway.admin("GET", "/admin/indicators").json()["detector"]["observed"] == 2
    one = gateway.admin("GET", "/admin/decisions/account:acct-new").json()
    assert one["detector"]["reason"] == "stand-in" and one["effective"]["kind"] == "throttle"
    assert 'distillwatch_gateway_matcher_hits_total{kind="throttle"} 1.0' in \
        gateway.admin("GET", "/metrics").text


def test_the_real_online_detector_stops_a_new_account_of_a_known_campaign(make_gateway,
                                                                          tmp_path):
    pytest.importorskip("distillwatch.gateway.detector")
    from distillwatch.gateway.app import default_detector

    scan = tmp_path / "scan"
    scan.mkdir()
    (scan / "campaigns.json").write_bytes(orjson.dumps({"campaigns": [
        {"campaign_id": "C-0001", "confidence": 0.9, "account_count": 3,
         "accounts": ["acct-old-1", "acct-old-2", "acct-old-3"],
         "indicators": {"templates": [], "ip_prefixes": ["203.0.113.0/24"], "asns": [],
                        "payment_fingerprints": ["pf-campaign"]}}]}))
    (scan / "accounts.jsonl").write_bytes(orjson.dumps(
        {"account_id": "acct-old-1", "decision": "block", "campaign_id": "C-0001"}) + b"\n")
    accounts = tmp_path / "accounts.jsonl"
    accounts.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in (
        {"account_id": "acct-new", "payment_fingerprint": "pf-campaign",
         "signup_channel": "self_serve", "verified": False, "created_at": "2026-05-01T00:00:00Z"},
        {"account_id": "acct-honest", "payment_fingerprint": "pf-honest",
         "signup_channel": "self_serve", "verified": False, "created_at": "2026-05-01T00:00:00Z"})))
    gateway = make_gateway(GatewayPolicy(scan_reload_s=0.05), scan_dir=scan,
                           accounts=(accounts,), detector=default_detector,
                           trusted_proxies=("127.0.0.1/32",))
    assert gateway.gateway.detector is not None
    campaign_net = {"x-forwarded-for": "203.0.113.5"}
    for account in ("acct-new", "acct-honest"):
        headers = {**campaign_net, "x-account-id": account}
        assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                                   headers=headers).status_code == 200
    # Pays like the campaign and calls from its network: challenged from its next requests.
    wait_for(lambda: gateway.client.post("/v1/chat/completions", json=chat_body(), headers={
        **campaign_net, "x-account-id": "acct-new"}).status_code == 403, timeout=10)
    one = gateway.admin("GET", "/admin/decisions/account:acct-new").json()
    assert one["detector"]["campaign_id"] == "C-0001"
    # Same network, a payment of its own: one family of evidence only, not stopped.
    assert gateway.client.post("/v1/chat/completions", json=chat_body(), headers={
        **campaign_net, "x-account-id": "acct-honest"}).status_code == 200
    summary = gateway.admin("GET", "/admin/indicators").json()["detector"]
    assert summary["totals"]["campaigns"] == 1
    # A new scan brings new indicators to the running detector.
    (scan / "campaigns.json").write_bytes(orjson.dumps({"campaigns": [
        {"campaign_id": f"C-000{n}", "indicators": {"ip_prefixes": [f"198.51.10{n}.0/24"]}}
        for n in (1, 2)]}))
    wait_for(lambda: gateway.admin("GET", "/admin/indicators").json()["detector"]["totals"]
             ["campaigns"] == 2, timeout=5)
