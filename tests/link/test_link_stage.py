"""The link stage on hand-built worlds: what links accounts, and what must not."""

from __future__ import annotations

import hashlib
import random
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.engine import SqlPipeline
from distillwatch.fingerprint.addresses import host_of, prefix_of
from distillwatch.fingerprint.features import FEATURES_SCHEMA
from distillwatch.ingest.accounts import ACCOUNTS_SCHEMA
from distillwatch.link import compared
from distillwatch.link.campaigns import link_accounts
from distillwatch.link.compared import chunk_bounds
from distillwatch.settings import LinkSettings

START = datetime(2026, 4, 20, tzinfo=UTC)
TEMPLATE = list(range(1000, 1016))  # 16 band keys of one shared scaffold


def h(*parts: object) -> int:
    """A stable stand-in for a keyed hash."""
    return zlib.crc32(repr(parts).encode()) + 10**10


def exchange(account: str, i: int, *, ip: str, bands: list[int] | None = None,
             system: int | None = None, minutes: int = 0) -> dict:
    row = {f.name: None for f in FEATURES_SCHEMA}
    row.update({
        "exchange_id": f"{account}-{i}", "account_id": account,
        "ts": START + timedelta(minutes=minutes + 7 * i), "client_ip": host_of(ip),
        "client_prefix": prefix_of(ip),
        "client_asn_kind": "residential", "band_keys": bands or [h(account, i, b)
                                                                    for b in range(16)],
        "line_hashes": [], "head_key": (bands or [h(account, 'head', i)])[0],
        "tail_key": h(account, "tail", i), "prompt_hash": h(account, i),
        "system_hash": system, "user_turns": 1, "prompt_chars": 400,
    })
    return row


def account(account_id: str, **fields) -> dict:
    return {**{f.name: None for f in ACCOUNTS_SCHEMA}, "account_id": account_id, **fields}


def load(engine, rows: list[dict], accounts: list[dict]) -> None:
    engine.register("__dw__features", pa.Table.from_pylist(rows, schema=FEATURES_SCHEMA))
    engine.register("__dw__accounts", pa.Table.from_pylist(accounts, schema=ACCOUNTS_SCHEMA))


def components(engine) -> dict[str, str]:
    frame = link_accounts(engine, LinkSettings())
    return {row["node"]: row["component"] for row in frame.to_pylist()}


def ring(name: str, size: int, ips: list[str], bands: list[int], exchanges: int = 12
         ) -> list[dict]:
    return [exchange(f"{name}{a}", i, ip=ips[(a + i) % len(ips)], bands=bands)
            for a in range(size) for i in range(exchanges)]


def bystanders(count: int = 30) -> list[dict]:
    """Unrelated users, so that sharing among the accounts under test is unusual."""
    return [exchange(f"user{u}", i, ip=f"203.0.{u}.9") for u in range(count) for i in range(5)]


def test_a_short_prompt_everyone_sends_is_no_shared_scaffold(engine):
    # Eight colleagues (one card: identity) and eight others each send "Continue" in a third
    # of their prompts: all its frame keys are the same, but no scaffold is shared. Eight
    # others sharing a real template with the same card are linked.
    continue_keys = [7000 + b for b in range(16)]

    def people(name: str, payment_rows: int, keys: list[int]) -> list[dict]:
        rows = []
        for a in range(payment_rows):
            for i in range(12):
                row = exchange(f"{name}{a}", i, ip=f"203.0.{a + 40 * len(name)}.9")
                if i % 3 == 0:
                    row.update(band_keys=keys, head_key=keys[0], tail_key=keys[1],
                               prompt_chars=8 if keys is continue_keys else 400)
                rows.append(row)
        return rows

    rows = people("team", 8, continue_keys) + people("other", 8, continue_keys)
    rows += people("ring", 8, TEMPLATE) + bystanders()
    accounts = [account(f"{name}{a}", payment_fingerprint=f"pf-{name}")
                for name in ("team", "ring") for a in range(8)]
    load(engine, rows, accounts)
    found = components(engine)
    assert not any(a.startswith(("team", "other")) for a in found)
    assert len({found[f"ring{a}"] for a in range(8)}) == 1


def test_a_ring_rotating_ipv6_addresses_is_linked_by_its_64s(engine):
    # Each request from another address of two /64s (privacy addresses, or a proxy that owns
    # them): no address repeats, but the hosts do, as a NAT's IPv4 address would.
    rng = random.Random(5)

    def address(net: int) -> str:
        return f"2001:db8:77:{net}:{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}::1"

    rows = [exchange(f"ring{a}", i, ip=address((a + i) % 2 + 1), bands=TEMPLATE)
            for a in range(6) for i in range(12)]
    rows += [exchange(f"user{u}", i, ip=f"2001:db8:{u + 100:x}:1::{i + 1:x}")
             for u in range(30) for i in range(5)]
    assert len({r["client_ip"] for r in rows if r["account_id"].startswith("ring")}) == 2
    load(engine, rows, [])
    found = components(engine)
    assert {a for a in found if a.startswith("ring")} == {f"ring{a}" for a in range(6)}
    assert len({found[f"ring{a}"] for a in range(6)}) == 1
    assert not any(a.startswith("user") for a in found)


def test_accounts_sharing_a_scaffold_and_ips_form_one_cluster(engine):
    rows = ring("ring", 6, ["198.51.100.7", "198.51.100.8"], TEMPLATE) + bystanders()
    load(engine, rows, [])
    found = components(engine)
    assert {a for a in found if a.startswith("ring")} == {f"ring{a}" for a in range(6)}
    assert len({found[f"ring{a}"] for a in range(6)}) == 1
    assert not any(a.startswith("user") for a in found)


def test_a_shared_system_prompt_alone_never_links_independent_developers(engine):
    # Thousands of developers of one open-source agent: same system prompt and scaffold,
    # different networks, payments and sign-up dates.
    rows = [exchange(f"dev{d}", i, ip=f"192.0.{d}.{i % 3 + 1}", bands=TEMPLATE, system=42)
            for d in range(30) for i in range(10)] + bystanders()
    accounts = [account(f"dev{d}", payment_fingerprint=f"pf-{d}", email_domain="gmail.com",
                        created_at=START - timedelta(days=40 * d + 3)) for d in range(30)]
    load(engine, rows, accounts)
    assert components(engine) == {}


def test_accounts_of_one_declared_organisation_are_never_linked(engine):
    rows = ring("team", 5, ["198.51.100.20"], TEMPLATE) + bystanders()
    accounts = [account(f"team{a}", organization_id="org-1", payment_fingerprint="pf-team")
                for a in range(5)]
    load(engine, rows, accounts)
    assert components(engine) == {}


def test_a_lone_bridge_between_two_rings_is_dropped(engine):
    left = ring("left", 6, ["198.51.100.7", "198.51.100.8"], TEMPLATE)
    other = list(range(2000, 2016))
    right = ring("right", 6, ["203.0.113.40", "203.0.113.41"], other)
    # One account of each ring shares a payment instrument and an IP with the other.
    bridge = [exchange("left0", 99, ip="203.0.113.40", bands=TEMPLATE),
              exchange("right0", 99, ip="198.51.100.7", bands=other)]
    accounts = [account("left0", payment_fingerprint="pf-x"),
                account("right0", payment_fingerprint="pf-x")]
    load(engine, left + right + bridge + bystanders(), accounts)
    found = components(engine)
    assert len({found[f"left{a}"] for a in range(6)}) == 1
    assert len({found[f"right{a}"] for a in range(6)}) == 1
    assert found["left0"] != found["right0"]


def test_one_family_of_evidence_is_not_enough(engine):
    # Same scaffold, nothing else in common: two families are needed for an edge.
    rows = [exchange(f"solo{a}", i, ip=f"192.0.{a}.1", bands=TEMPLATE)
            for a in range(5) for i in range(10)]
    load(engine, rows + bystanders(), [])
    assert components(engine) == {}


@pytest.mark.parametrize("family_strength", [0.3])
def test_pairs_record_the_evidence_per_family(engine, family_strength):
    rows = ring("ring", 4, ["198.51.100.7"], TEMPLATE)
    load(engine, rows + bystanders(), [])
    link_accounts(engine, LinkSettings())
    pairs = engine.frame("__dw__link_pairs").to_pylist()
    assert len(pairs) == 6  # every pair of four accounts
    for pair in pairs:
        assert pair["s_scaffold"] >= family_strength
        assert pair["s_network"] >= family_strength
        assert pair["families"] >= 2
        assert 0.0 <= pair["strength"] <= 1.0
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT count(*) AS n FROM __dw__link_edges", "__dw__t_count")
    assert engine.run(pipeline).to_pylist() == [{"n": 6}]


def _pairs(engine) -> dict[tuple[str, str], dict]:
    """The pairs' rows by the two account ids (pairs are keyed by account numbers)."""
    rows = engine.fetch_arrow(
        "SELECT i.account_id AS a, j.account_id AS b, p.* FROM __dw__link_pairs p "
        "JOIN __dw__link_ids i ON i.id = p.ia JOIN __dw__link_ids j ON j.id = p.ib",
        "pairs").to_pylist()
    return {(r["a"], r["b"]): r for r in rows}


def test_a_hydra_larger_than_max_block_is_one_cluster_compared_in_windows(engine):
    # 24 accounts share a scaffold and a proxy pool: with max_block 8 their tokens are "large",
    # so each account is compared only with its window neighbours, not with all 23 others.
    pool = [f"198.51.100.{n}" for n in range(1, 6)]
    rows = ring("hydra", 24, pool, TEMPLATE) + bystanders()
    load(engine, rows, [])
    settings = LinkSettings(max_block=8, pair_window=4)
    found = {r["node"]: r["component"] for r in link_accounts(engine, settings).to_pylist()}
    hydra = {f"hydra{a}" for a in range(24)}
    assert {a for a in found if a.startswith("hydra")} == hydra
    assert len({found[a] for a in hydra}) == 1
    assert not any(a.startswith("user") for a in found)
    pairs = _pairs(engine)
    assert len(pairs) < 24 * 23 / 2 / 2  # windows, not all pairs
    # A pair that is compared has its evidence counted over every token it shares: the 16
    # scaffold keys (the head key is the first band), the pool's IPs and its /24.
    compared = next(r for k, r in pairs.items() if k[0].startswith("hydra")
                    and k[1].startswith("hydra"))
    assert compared["scaffold_tokens"] == 16
    assert compared["network_tokens"] == len(pool) + 1


def test_small_tokens_give_the_same_pairs_and_evidence_as_before(engine):
    # Below max_block every pair of sharers is compared, token by token, so lowering
    # max_block to the size of these rings changes nothing.
    rows = (ring("ring", 6, ["198.51.100.7", "198.51.100.8"], TEMPLATE)
            + ring("other", 5, ["192.0.2.7"], [b + 100 for b in TEMPLATE]) + bystanders())
    load(engine, rows, [])
    link_accounts(engine, LinkSettings(max_block=2000))
    wide = _pairs(engine)
    link_accounts(engine, LinkSettings(max_block=6, pair_window=64))
    assert _pairs(engine) == wide


def test_compared_pairs_read_in_chunks_give_the_same_evidence_and_clusters(engine,
                                                                            monkeypatch):
    # (Read in ranges, the pairs' evidence is built range by range too: `_pairs` compares
    # every field of every pair.)
    # A hydra over max_block (large tokens' evidence) in lockstep (20 exchanges 7 minutes
    # apart: 14 ten-minute buckets), its pairs read 5 at a time instead of all at once.
    pool = [f"198.51.100.{n}" for n in range(1, 6)]
    load(engine, ring("hydra", 16, pool, TEMPLATE, exchanges=20) + bystanders(), [])
    settings = LinkSettings(max_block=8, pair_window=4)
    whole = components_of(link_accounts(engine, settings, keep_intermediate=True))
    pairs = _pairs(engine)
    counts = {name: engine.frame(name).count()
              for name in ("__dw__link_large_shared", "__dw__link_co_active")}
    assert min(counts.values()) > 0
    bounds = []
    monkeypatch.setattr(compared, "CHUNK_PAIRS", 5)
    monkeypatch.setattr(compared, "chunk_bounds",
                        lambda *args: bounds.extend(chunk_bounds(*args)) or bounds)
    assert components_of(link_accounts(engine, settings, keep_intermediate=True)) == whole
    assert len(bounds) > 3
    assert {name: engine.frame(name).count() for name in counts} == counts
    chunked = _pairs(engine)
    assert chunked.keys() == pairs.keys()
    for key, row in pairs.items():
        for field, value in row.items():
            assert chunked[key][field] == (pytest.approx(value, rel=1e-12)
                                           if isinstance(value, float) else value)


def components_of(frame) -> dict[str, str]:
    return {row["node"]: row["component"] for row in frame.to_pylist()}


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 20), max_size=30), per_chunk=st.integers(1, 40))
def test_chunk_bounds_cover_every_first_account_once(counts, per_chunk):
    first = np.arange(0, 3 * len(counts), 3)
    bounds = chunk_bounds(first, np.array(counts, dtype=np.int64), per_chunk)
    held = [[n for n, c in zip(first, counts, strict=True) if lo <= n < hi]
            for lo, hi in bounds]
    assert sorted(n for chunk in held for n in chunk) == list(first)
    assert all(chunk for chunk in held)
    sizes = [sum(counts[n // 3] for n in chunk) for chunk in held]
    # Each chunk but the last holds at least per_chunk pairs, and would hold fewer without
    # its last account.
    assert all(size >= per_chunk for size in sizes[:-1])
    assert all(size - counts[chunk[-1] // 3] < per_chunk for size, chunk in zip(sizes, held,
                                                                            strict=True))


def unit_hash(token: str) -> int:
    """The order of ``Dialect.unit_hash``: the first 52 bits of the token's MD5."""
    return int(hashlib.md5(token.encode()).hexdigest()[:13], 16)


POOL = [f"198.{n}.100.7" for n in range(40)]


def proxy_hoppers() -> list[dict]:
    """Ten heads of a hydra rotating through a pool of 40 proxy IPs, each in its own /24 (each
    head meets 24 of them), and a small ring on two IPs."""
    return (ring("hop", 10, POOL, TEMPLATE, exchanges=24)
            + ring("ring", 5, ["192.0.2.7", "192.0.2.8"], [b + 100 for b in TEMPLATE])
            + bystanders())


def test_a_proxy_hopper_pairs_on_a_sketch_of_its_ips_that_only_lowers_evidence(engine):
    # With network_sketch 8, each head keeps the 8 IPs (and /24s) first in the unit-hash
    # order, the same IPs for every head.
    pool = POOL
    load(engine, proxy_hoppers(), [])
    exact = components_of(link_accounts(engine, LinkSettings(network_sketch=1000)))
    exact_pairs = _pairs(engine)
    sketched = components_of(link_accounts(engine, LinkSettings(network_sketch=8),
                                            keep_intermediate=True))
    kept = engine.fetch_arrow(
        "SELECT t.account_id, s.kind, s.token, s.holders FROM __dw__link_shared_tokens s "
        "JOIN __dw__link_ids t ON t.id = s.id WHERE s.kind IN ('ip', 'prefix')",
        "kept").to_pylist()
    def met(a: int) -> set[str]:
        return {pool[(a + i) % 40] for i in range(24)}

    for a in range(10):
        # Of the IPs it shares with another head (an IP met once is never evidence).
        shared = {ip for ip in met(a) if any(ip in met(b) for b in range(10) if b != a)}
        for kind, token in (("ip", lambda ip: f"i{ip}"),
                            ("prefix", lambda ip: f"p{prefix_of(ip)}")):
            mine = {r["token"] for r in kept if r["account_id"] == f"hop{a}"
                    and r["kind"] == kind}
            assert mine == set(sorted(map(token, shared), key=unit_hash)[:8])
    assert {r["holders"] for r in kept if r["account_id"] == "ring0"} == {5}
    # One cluster either way; the ring, below the sketch, has the very same evidence.
    assert set(sketched.values()) and sketched.keys() == exact.keys()
    assert len({sketched[f"hop{a}"] for a in range(10)}) == 1
    pairs = _pairs(engine)
    for key, row in pairs.items():
        before = exact_pairs[key]
        if key[0].startswith("ring"):
            assert row == before
        else:
            assert row["s_network"] <= before["s_network"] + 1e-12
            assert row["network_tokens"] <= before["network_tokens"]
            assert row["s_scaffold"] == pytest.approx(before["s_scaffold"], rel=1e-12)
    assert any(row["network_tokens"] < exact_pairs[key]["network_tokens"]
               for key, row in pairs.items())


@pytest.mark.slow
def test_the_sketch_and_large_tokens_agree_on_spark(engine, spark_session, tmp_path):
    # The sketch's order (MD5 on both engines) and the blocking of large tokens give Spark
    # the very pairs and evidence DuckDB computes.
    from distillwatch.engine import SparkEngine

    settings = LinkSettings(network_sketch=8, max_block=4, pair_window=4)
    load(engine, proxy_hoppers(), [])
    on_duckdb = components_of(link_accounts(engine, settings))
    expected = _pairs(engine)
    spark = SparkEngine(None, spark=spark_session)
    try:
        load(spark, proxy_hoppers(), [])
        assert components_of(link_accounts(spark, settings)) == on_duckdb
        actual = _pairs(spark)
    finally:
        spark.close()
    assert on_duckdb and actual.keys() == expected.keys()
    for key, row in expected.items():
        for field, value in row.items():
            assert actual[key][field] == (pytest.approx(value, rel=1e-12)
                                          if isinstance(value, float) else value), (key, field)


def test_the_stage_drops_its_intermediate_tables_and_labels_components_as_the_sql(engine):
    from distillwatch.link.components import connected_components

    load(engine, proxy_hoppers(), [])
    found = components_of(link_accounts(engine, LinkSettings(max_block=4, pair_window=4)))
    held = {name for name in engine._frames if name.startswith("__dw__link_")}
    assert held == {"__dw__link_tokens", "__dw__link_ids", "__dw__link_pairs",
                    "__dw__link_edges", "__dw__link_edge_numbers", "__dw__link_components"}
    # The driver's components equal the relational algorithm's on the same edges.
    assert found and components_of(connected_components(engine, "__dw__link_edges")) == found
