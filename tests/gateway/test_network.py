"""Client IP through trusted proxies, and identity (account header, key map, key ids)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.fingerprint.addresses import normalise_ip
from distillwatch.gateway.identity import Identity, key_id, load_key_map
from distillwatch.gateway.network import (
    UPSTREAM_ERRORS,
    ClientAddress,
    UpstreamPool,
    failure_kind,
)

from .conftest import KEY, chat_body, free_port, gz_lines

TRUSTED = ["10.0.0.0/8", "2001:db8::/32"]


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
    ("10.0.0.5", "6.6.6.6, 203.0.113.7", "203.0.113.7"),       # left of it: client-chosen
    ("10.0.0.5", "203.0.113.7, 10.0.0.9", "203.0.113.7"),      # two trusted hops
    ("198.51.100.9", "1.2.3.4", "198.51.100.9"),               # untrusted peer: ignored
    ("10.0.0.5", "10.0.0.7, 10.0.0.8", "10.0.0.7"),            # all trusted: the leftmost
    ("10.0.0.5", "garbage, 203.0.113.7", "203.0.113.7"),
    ("10.0.0.5", "203.0.113.7, garbage", "10.0.0.5"),          # unreadable next hop: stop
    ("10.0.0.5", None, "10.0.0.5"),
    ("10.0.0.5", "203.0.113.7:4711", "203.0.113.7"),
    ("2001:db8::1", "[2001:db8::2]:443, 2a00::1", "2a00::1"),
    ("::ffff:10.0.0.5", "203.0.113.7", "203.0.113.7"),         # IPv4-mapped peer
    ("10.255.255.255", "203.0.113.7", "203.0.113.7"),          # the trusted network's edge
    ("11.0.0.0", "203.0.113.7", "11.0.0.0"),                   # just outside it
    ("10.0.0.5", "203.0.113.7, 010.0.0.9", "10.0.0.5"),        # leading zeros: no address
    ("10.0.0.5", " 203.0.113.7 ,10.0.0.9 ", "203.0.113.7"),    # spaces around hops
])
def test_forwarded_for_is_walked_through_trusted_hops(peer, forwarded, expected):
    assert ClientAddress(TRUSTED).resolve(peer, forwarded) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert ClientAddress().resolve("10.0.0.5", "203.0.113.7") == "10.0.0.5"
    assert normalise_ip("nonsense") is None
    with pytest.raises(DistillwatchConfigError, match="not an IP address or CIDR"):
        ClientAddress(["10.0.0.0/33"])


def test_identity_from_header_then_key_map(tmp_path):
    kid = key_id(KEY, "sk-live-1")
    assert kid.startswith("kid-") and len(kid) == 28 and key_id(b"other" * 4, "sk-live-1") != kid
    path = tmp_path / "keys.jsonl"
    path.write_bytes(orjson.dumps({"api_key_id": kid, "account_id": "acct-mapped"}) + b"\n")
    who = Identity(KEY, "X-Org", load_key_map(path))
    assert who.resolve({b"x-org": b"acct-h", b"authorization": b"Bearer sk-live-1"}) == \
        ("acct-h", kid)
    assert who.resolve({b"authorization": b"Bearer sk-live-1"}) == ("acct-mapped", kid)
    assert who.resolve({b"x-api-key": b"sk-live-1"}) == ("acct-mapped", kid)
    assert who.resolve({b"authorization": b"Basic abc"}) == (None, None)
    csv_path = tmp_path / "keys.csv"
    csv_path.write_text(f"api_key_id,account_id\n{kid},acct-csv\n")
    assert load_key_map(csv_path) == {kid: "acct-csv"}


def test_trusted_proxy_over_http_and_spoofed_header_ignored(make_gateway, tmp_path):
    behind = make_gateway(trusted_proxies=("127.0.0.1/32",), log_dir=tmp_path / "a")
    direct = make_gateway(log_dir=tmp_path / "b")
    for gateway in (behind, direct):
        assert gateway.admin("PUT", "/admin/decisions/ip:203.0.113.7",
                             json={"kind": "block"}).status_code == 200
    spoof = {"x-forwarded-for": "203.0.113.7", "x-account-id": "acct-ip"}
    # Through a trusted proxy (the loopback peer) the forwarded address is the client.
    assert behind.client.post("/v1/chat/completions", json=chat_body(),
                              headers=spoof).status_code == 403
    chained = {"x-forwarded-for": "203.0.113.7, 198.51.100.20", "x-account-id": "acct-ip"}
    assert behind.client.post("/v1/chat/completions", json=chat_body(),
                              headers=chained).status_code == 200
    # From an untrusted peer the same header is a spoof and is ignored.
    assert direct.client.post("/v1/chat/completions", json=chat_body(),
                              headers=spoof).status_code == 200
    for gateway, folder, expected in ((behind, "a", "198.51.100.20"),
                                      (direct, "b", "127.0.0.1")):
        assert gateway.gateway.sink.drain()
        logged = gz_lines(tmp_path / folder)
        assert [e["client"]["ip"] for e in logged] == [expected]


def test_the_upstream_pool_reuses_expires_and_bounds_connections(upstream):
    url = f"{upstream.url}/v1/chat/completions"
    body = orjson.dumps(chat_body())
    headers = {"content-type": "application/json"}

    async def post(pool, **extra):
        answer = await pool.request("POST", url, {**headers, **extra}, body)
        await answer.read()
        return answer.status

    async def scenario():
        pool = UpstreamPool(max_connections=1, max_idle=1, keepalive_expiry=0.3,
                            connect_timeout=0.2, read_timeout=5)
        await pool.start()
        try:
            for _ in range(3):
                assert await post(pool) == 200
            assert pool.opened == 1  # one connection, reused
            await asyncio.sleep(0.4)
            assert await post(pool) == 200
            assert pool.opened == 2  # the idle one had expired
            slow = asyncio.create_task(post(pool, **{"x-fake-latency-ms": "600"}))
            await asyncio.sleep(0.05)
            with pytest.raises(UPSTREAM_ERRORS) as busy:  # the only connection is busy
                await post(pool)
            assert failure_kind(busy.value) == "unreachable"  # a 502, not a 504
            assert await slow == 200
            assert pool.stats()["in_use"] == 0
        finally:
            await pool.aclose()
        pool = UpstreamPool(max_connections=4, max_idle=2, keepalive_expiry=5,
                            read_timeout=0.2)
        await pool.start()
        try:
            # At most max_idle connections stay open once a burst is over.
            assert await asyncio.gather(*(post(pool) for _ in range(4))) == [200] * 4
            assert pool.opened == 4
            assert pool.stats() == {"open": 2, "idle": 2, "in_use": 0, "opened": 4}
            # No answer within the read timeout: a timeout (504), not unreachable.
            with pytest.raises(UPSTREAM_ERRORS) as slow_answer:
                await post(pool, **{"x-fake-latency-ms": "600"})
            assert failure_kind(slow_answer.value) == "timeout"
            with pytest.raises(UPSTREAM_ERRORS) as refused:
                await pool.request("GET", f"http://127.0.0.1:{free_port()}/v1/models", {}, None)
            assert failure_kind(refused.value) == "unreachable"
        finally:
            await pool.aclose()

    asyncio.run(scenario())
