"""Decisions, precedence, sliding windows; RedisState against the real Redis; Redis loss."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.gateway.decisions import (
    Decision,
    GatewayPolicy,
    RateLimit,
    load_policy,
    policy_from_dict,
    resolve,
)
from distillwatch.gateway.state import LocalState, RedisState, SlidingCounters

from .conftest import REDIS_URL, chat_body, wait_for

ADMIN = "admin"


def _d(kind: str, source: str = "scan", expires_at: float | None = None) -> Decision:
    return Decision(kind, source=source, expires_at=expires_at)


@pytest.mark.parametrize("admin, others, expected", [
    ([], [_d("monitor"), _d("block", "detector")], "block"),
    ([], [_d("throttle"), None, _d("verify", "detector")], "verify"),
    ([_d("allow", ADMIN)], [_d("block")], "allow"),  # an admin allow is an allow-list entry
    ([_d("monitor", ADMIN), _d("throttle", ADMIN)], [_d("block")], "throttle"),
    ([_d("block", ADMIN, expires_at=5.0)], [_d("monitor")], "monitor"),  # expired
    ([], [_d("block", "detector", expires_at=5.0)], None),
    ([None], [None], None),
])
def test_precedence(admin, others, expected):
    found = resolve(admin, others, now=10.0)
    assert (found.kind if found else None) == expected


def test_unknown_kinds_and_sources_are_refused():
    with pytest.raises(DistillwatchConfigError, match="Unknown decision 'ban'"):
        Decision("ban")
    with pytest.raises(DistillwatchConfigError, match="source"):
        Decision("block", source="somebody")


def test_policy_is_strict_and_merges_over_the_default(tmp_path):
    default = load_policy()
    assert default.limits["account"] == (RateLimit(60.0, 600),) and default.fail_open
    path = tmp_path / "policy.yaml"
    path.write_text("fail_open: false\nlimits:\n  ip: []\nmonitor: {withhold_reasoning: true}\n")
    policy = load_policy(path)
    assert not policy.fail_open and policy.withhold_reasoning
    assert policy.limits["ip"] == () and policy.limits["account"] == (RateLimit(60.0, 600),)
    path.write_text("redis:\n  timeout: 1\n")
    with pytest.raises(DistillwatchConfigError, match=r"redis.timeout.*policy.yaml"):
        load_policy(path)
    with pytest.raises(DistillwatchConfigError, match="retry_after_s"):
        policy_from_dict({"retry_after_s": "soon"})
    with pytest.raises(DistillwatchConfigError, match="Unknown key 'fail_opne'"):
        policy_from_dict({"fail_opne": True})


def test_sliding_windows_match_a_brute_force_count():
    rng = random.Random(7)
    counters = SlidingCounters(buckets=10)
    events: list[float] = []
    now = 1000.0
    for _ in range(3000):
        now += rng.expovariate(5.0)
        events.append(now)
        total = counters.add("n", "s", 60.0, now)
        exact = sum(1 for t in events if t > now - 60.0)
        # Exact to the share of one bucket (6 s) at the window's old edge.
        edge = sum(1 for t in events if now - 66.0 < t <= now - 54.0)
        assert abs(total - exact) <= edge + 1e-9
    assert counters.total("n", "s", 60.0, now + 120) == 0.0
    counters.prune(now + 120)
    assert len(counters) == 0


def test_adding_many_windows_at_once_equals_adding_them_one_by_one():
    rng = random.Random(11)
    one_by_one, at_once = SlidingCounters(buckets=10), SlidingCounters(buckets=10)
    now, additions = 1000.0, []
    for _ in range(5000):
        now += rng.expovariate(2.0) * rng.choice((1, 1, 1, 40))  # gaps past whole windows too
        late = now - rng.choice((0.0, 0.0, 3.0, 30.0))            # events up to buckets late
        additions.append((rng.choice("ab"), f"s{rng.randrange(40)}", rng.choice((60.0, 600.0)),
                          late, rng.choice((1.0, 0.5, 2.0))))
    expected = [one_by_one.add(*addition) for addition in additions]
    got = []
    for start in range(0, len(additions), 7):
        got += at_once.add_many(additions[start:start + 7])
    assert got == expected
    assert len(at_once) == len(one_by_one)


def test_local_state_decisions_and_limits():
    policy = GatewayPolicy(limits={"ip": (RateLimit(10, 2),)})
    state = LocalState(policy)
    state.set_scan({"account:a1": Decision("throttle", source="scan")})
    now = 100.0
    assert state.decision_for("a1", None, "1.1.1.1", now).kind == "throttle"
    assert state.decision_for("a2", "kid-1", "1.1.1.1", now) is None
    assert state.decision_for("a3", None, "1.1.1.1", now) is None
    limited = state.decision_for("a4", None, "1.1.1.1", now)
    assert limited.kind == "throttle" and limited.source == "limit"
    assert state.decision_for("a4", None, "2.2.2.2", now) is None
    assert state.decision_for("a4", None, "1.1.1.1", now + 11) is None  # window passed
    asyncio.run(state.set_decision("key:kid-9", Decision("verify", source="detector")))
    assert state.decision_for(None, "kid-9", None, now).kind == "verify"
    assert asyncio.run(state.get_decision("key:kid-9")).kind == "verify"


def test_an_ipv6_client_is_limited_and_decided_as_its_64():
    # A client rotating through the addresses of its /64 is one client to the rate limits
    # and to decisions on its address; the next /64 is another client.
    state = LocalState(GatewayPolicy(limits={"ip": (RateLimit(10, 2),)}))
    now = 100.0
    assert state.decision_for(None, None, "2001:db8:1:2::1", now) is None
    assert state.decision_for(None, None, "2001:db8:1:2:aaaa::7", now) is None
    limited = state.decision_for(None, None, "2001:db8:1:2:ffff:1:2:3", now)
    assert limited is not None and limited.source == "limit"
    assert state.decision_for(None, None, "2001:db8:1:3::1", now) is None
    state.set_scan({"ip:2001:db8:9:9::/64": Decision("block", source="scan")})
    assert state.decision_for(None, None, "2001:db8:9:9:1::1", now).kind == "block"


def test_check_leaves_the_counting_to_count():
    # The relay checks a request, sends it upstream, then counts it: the check alone must
    # not count, and what it hands over counts exactly like decision_for does.
    policy = GatewayPolicy(limits={"account": (RateLimit(10, 2),), "ip": (RateLimit(10, 5),)})
    state, reference = LocalState(policy), LocalState(policy)
    now = 100.0
    for _ in range(3):
        decision, counted = state.check("a1", None, "1.1.1.1", now)
        assert decision is None and counted == ("account:a1", None, "ip:1.1.1.1")
    for step in range(3):
        decision, counted = state.check("a1", None, "1.1.1.1", now + step)
        expected = reference.decision_for("a1", None, "1.1.1.1", now + step)
        assert (decision and decision.kind) == (expected and expected.kind)
        if counted is not None:
            state.count(counted, now + step)
    assert decision.kind == "throttle" and counted is None  # refused: nothing to count
    assert state.counters.total("requests", "account:a1", 10, now + 2) == 2
    assert state.counters.total("requests", "ip:1.1.1.1", 10, now + 2) == \
        reference.counters.total("requests", "ip:1.1.1.1", 10, now + 2) == 2


# --- RedisState against the machine's Redis ---------------------------------------------------

FAST = GatewayPolicy(redis_refresh_s=0.1, redis_flush_s=0.02, redis_timeout_s=0.2,
                     limits={"account": (RateLimit(60, 5),)})


def test_redis_replicas_share_decisions_and_counters(redis_prefix):
    async def scenario():
        one = RedisState(REDIS_URL, FAST, redis_prefix)
        two = RedisState(REDIS_URL, FAST, redis_prefix)
        await one.start()
        await two.start()
        try:
            assert one.healthy and two.healthy
            await one.set_override("account:shared", Decision("block", reason="fraud"))
            started = time.monotonic()
            while two.decision_for("shared", None, None, time.time()) is None:
                assert time.monotonic() - started < 1.0, "pub/sub did not bring the decision"
                await asyncio.sleep(0.005)
            assert two.decision_for("shared", None, None, time.time()).reason == "fraud"
            await one.set_decision("account:det", Decision("verify", source="detector"))
            await asyncio.sleep(0.2)
            assert (await two.get_decision("account:det")).kind == "verify"
            assert await two.clear_override("account:shared")
            await asyncio.sleep(0.2)
            assert one.decision_for("shared", None, None, time.time()) is None
            # The detector's counters are one window for every replica.
            now = time.time()
            assert await one.add("tpl:C1", "account:x", 60, now, 2) == 2
            assert await two.add("tpl:C1", "account:x", 60, now, 3) == 5
            # Many windows in one round trip: each sum is the shared one after its addition.
            assert await one.add_many([("tpl:C1", "account:x", 60, now, 1),
                                       ("tpl:C2", "account:x", 60, now, 4),
                                       ("tpl:C1", "account:x", 60, now, 1)]) == [6, 4, 7]
            assert await two.add_many([]) == []
            # Request counts reach the shared windows within a flush: alternating replicas
            # let about 5 requests through in all (a replica can be one request behind),
            # where unshared counters would let 5 through each.
            allowed = 0
            for turn in range(16):
                state = (one, two)[turn % 2]
                allowed += state.decision_for("busy", None, None, time.time()) is None
                await asyncio.sleep(0.06)
            assert 5 <= allowed <= 7
        finally:
            await one.close()
            await two.close()

    asyncio.run(scenario())


def test_redis_decisions_expire(redis_prefix):
    async def scenario():
        state = RedisState(REDIS_URL, FAST, redis_prefix)
        await state.start()
        try:
            await state.set_override("ip:203.0.113.9",
                                     Decision("block", expires_at=time.time() + 0.3))
            assert state.decision_for(None, None, "203.0.113.9", time.time()).kind == "block"
            await asyncio.sleep(0.4)
            assert state.decision_for(None, None, "203.0.113.9", time.time()) is None
        finally:
            await state.close()

    asyncio.run(scenario())


# --- Redis loss, with gateways in front of a redis-server that goes away ------------------------


def test_redis_loss_fail_open_serves_and_fail_closed_refuses(make_gateway, redis_server):
    open_policy = GatewayPolicy(redis_refresh_s=0.1, redis_timeout_s=0.2, fail_open=True)
    closed_policy = GatewayPolicy(redis_refresh_s=0.1, redis_timeout_s=0.2, fail_open=False)
    opened = make_gateway(open_policy, redis_url=redis_server.url, redis_prefix="loss")
    closed = make_gateway(closed_policy, redis_url=redis_server.url, redis_prefix="loss")
    assert opened.admin("PUT", "/admin/decisions/account:acct-cut",
                        json={"kind": "block"}).status_code == 200
    wait_for(lambda: closed.client.post("/v1/chat/completions", json=chat_body(), headers={
        "x-account-id": "acct-cut"}).status_code == 403)
    for gateway in (opened, closed):
        assert gateway.client.post("/v1/chat/completions", json=chat_body()).status_code == 200

    redis_server.kill()
    wait_for(lambda: closed.client.post("/v1/chat/completions",
                                        json=chat_body()).status_code == 503, timeout=5)
    refused = closed.client.post("/v1/messages", json={"model": "m", "messages": []})
    assert refused.status_code == 503 and refused.json()["error"]["type"] == "overloaded_error"
    assert closed.client.get("/healthz").status_code == 503
    # Fail-open: every request answered, quickly, from the cached decisions.
    for _ in range(10):
        started = time.monotonic()
        ok = opened.client.post("/v1/chat/completions", json=chat_body())
        assert ok.status_code == 200 and time.monotonic() - started < 1.0
    assert opened.client.post("/v1/chat/completions", json=chat_body(),
                              headers={"x-account-id": "acct-cut"}).status_code == 403
    health = opened.client.get("/healthz").json()
    assert health["status"] == "degraded" and health["state"]["ok"] is False
    assert opened.admin("PUT", "/admin/decisions/account:x",
                        json={"kind": "block"}).status_code == 503
    metrics = opened.admin("GET", "/metrics").text
    errors = [line for line in metrics.splitlines()
              if line.startswith("distillwatch_gateway_redis_errors_total")]
    assert errors and float(errors[0].split()[-1]) >= 1

    redis_server.start()  # same port, empty: the replicas reconnect by themselves
    wait_for(lambda: closed.client.post("/v1/chat/completions",
                                        json=chat_body()).status_code == 200, timeout=5)
    wait_for(lambda: opened.client.get("/healthz").json()["state"]["ok"], timeout=5)


def test_detector_decisions_made_while_redis_is_down_are_shared_when_it_is_back(redis_server):
    async def scenario():
        one = RedisState(redis_server.url, FAST, "pending")
        await one.start()
        try:
            assert one.healthy
            redis_server.kill()
            started = time.monotonic()
            await one.set_decision("account:late", Decision("verify", source="detector"))
            assert time.monotonic() - started < 1.0  # bounded: never hangs on a dead Redis
            assert one.decision_for("late", None, None, time.time()).kind == "verify"
            assert not one.healthy
            # The detector's windows go on in this replica alone: its own sums, at once.
            now = time.time()
            started = time.monotonic()
            assert await one.add_many([("touch:C1", "account:late", 60, now, 1),
                                       ("touch:C1", "account:late", 60, now, 2)]) == [1, 3]
            assert time.monotonic() - started < 0.1
            redis_server.start()
            deadline = time.monotonic() + 5
            while not (one.healthy and not one._pending_decisions):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            two = RedisState(redis_server.url, FAST, "pending")
            await two.start()
            try:
                assert two.decision_for("late", None, None, time.time()).kind == "verify"
            finally:
                await two.close()
        finally:
            await one.close()

    asyncio.run(scenario())


def test_every_policy_key_is_documented_in_the_shipped_policy():
    from importlib import resources

    from distillwatch.gateway.decisions import POLICY_KEYS

    text = resources.files("distillwatch").joinpath("conf/gateway.yaml").read_text("utf-8")
    missing = [key for key in POLICY_KEYS if f"{key.rpartition('.')[2]}:" not in text]
    assert missing == []
