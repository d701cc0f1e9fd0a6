"""The large tokens' evidence of compared pairs (bitsets per kind) against a plain join."""

from __future__ import annotations

import math
import random

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.link import large_tokens
from distillwatch.link.large_tokens import LARGE_SHARED_SCHEMA, LargeTokens

ACCOUNTS = [f"acct-{i}" for i in range(9)]
KINDS = {"scaffold": "scaffold", "ip": "network", "prefix": "network"}


def _tokens(held: dict[str, set[tuple[str, str]]], idf: dict[tuple[str, str], float]) -> pa.Table:
    rows = [(account, kind, token) for account, found in held.items() for kind, token in found]
    return pa.table({"holder": pa.array([ACCOUNTS.index(r[0]) for r in rows], pa.int32()),
                     "kind": pa.array([r[1] for r in rows], pa.string()),
                     "family": pa.array([KINDS[r[1]] for r in rows], pa.string()),
                     "token": pa.array([r[2] for r in rows], pa.string()),
                     "idf": pa.array([idf[(r[1], r[2])] for r in rows], pa.float64())})


def large_token_evidence(pairs: list[tuple[str, str]], tokens: pa.Table) -> pa.Table:
    left, right = (np.array([ACCOUNTS.index(p[end]) for p in pairs], dtype=np.int64)
                   for end in (0, 1))
    return LargeTokens(tokens, len(ACCOUNTS)).evidence(left, right)


def _expected(held, idf, pairs) -> dict:
    out = {}
    for a, b in pairs:
        for kind in KINDS:
            both = ({t for k, t in held.get(a, ()) if k == kind}
                & {t for k, t in held.get(b, ()) if k == kind})
            if both:
                out[(a, b, kind)] = (sum(idf[(kind, t)] for t in both), len(both))
    return out


def _got(table: pa.Table) -> dict:
    assert table.schema == LARGE_SHARED_SCHEMA
    rows = table.to_pylist()
    assert all(r["family"] == KINDS[r["kind"]] and r["burst"] == 0.0 for r in rows)
    return {(ACCOUNTS[r["ia"]], ACCOUNTS[r["ib"]], r["kind"]): (r["idf_sum"], r["tokens"])
            for r in rows}


# Up to 150 tokens of a kind: bit rows of several words, bytes past the last token.
_TOKEN = st.tuples(st.sampled_from(sorted(KINDS)), st.integers(0, 149).map(str))


@settings(max_examples=80, deadline=None)
@given(held=st.dictionaries(st.sampled_from(ACCOUNTS), st.sets(_TOKEN, min_size=1, max_size=70),
                            min_size=1),
       pairs=st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS)),
                      max_size=25),
       seed=st.integers(0, 1000))
def test_counts_and_idf_sums_equal_a_join(held, pairs, seed):
    rng = random.Random(seed)
    idf = {token: rng.uniform(0.1, 8.0) for found in held.values() for token in found}
    got = _got(large_token_evidence(pairs, _tokens(held, idf)))
    expected = _expected(held, idf, pairs)
    assert got.keys() == expected.keys()
    for key, (total, count) in expected.items():
        assert got[key][1] == count
        assert math.isclose(got[key][0], total, rel_tol=1e-12)


def test_sums_do_not_depend_on_row_order(monkeypatch):
    """Tokens are numbered in sorted order: a shuffled table gives the same bits of every sum,
    in chunks of pairs smaller than the input."""
    monkeypatch.setattr(large_tokens, "_CHUNK_WORDS", 3)
    rng = random.Random(7)
    held = {a: {("scaffold", str(rng.randrange(300))) for _ in range(40)} for a in ACCOUNTS}
    idf = {token: rng.uniform(0.1, 8.0) for found in held.values() for token in found}
    pairs = list(zip(ACCOUNTS[:-1] * 3, ACCOUNTS[1:] * 3, strict=True))
    table = _tokens(held, idf)
    first = large_token_evidence(pairs, table)
    shuffled = table.take(pa.array(rng.sample(range(table.num_rows), table.num_rows)))
    assert large_token_evidence(pairs, shuffled).equals(first)
    expected = _expected(held, idf, pairs)
    got = _got(first)
    assert first.num_rows == len(expected) * 3
    assert {key: count for key, (_, count) in got.items()} == {
        key: count for key, (_, count) in expected.items()}


def test_no_pairs_or_no_tokens_give_an_empty_table():
    none = _tokens({}, {})
    assert large_token_evidence([("acct-0", "acct-1")], none).equals(
        LARGE_SHARED_SCHEMA.empty_table())
    one = _tokens({"acct-0": {("ip", "1")}}, {("ip", "1"): 1.0})
    assert large_token_evidence([], one).num_rows == 0
    assert large_token_evidence([("acct-0", "acct-1")], one).num_rows == 0


def test_pairs_sliced_over_threads_give_the_same_rows_as_one_call():
    # The driver's pass runs each chunk of pairs as one slice per core: the rows must be the
    # very same as one call on the whole chunk (their order is not: rows come per kind).
    from concurrent.futures import ThreadPoolExecutor

    from distillwatch.workers import on_slices

    rng = random.Random(5)
    held = {a: {(rng.choice(sorted(KINDS)), str(rng.randrange(40))) for _ in range(25)}
            for a in ACCOUNTS}
    idf = {(k, str(t)): rng.uniform(0.5, 3.0) for k in KINDS for t in range(40)}
    pairs = [(a, b) for i, a in enumerate(ACCOUNTS) for b in ACCOUNTS[i + 1:]]
    left, right = (np.array([ACCOUNTS.index(p[end]) for p in pairs], dtype=np.int64)
                   for end in (0, 1))
    large = LargeTokens(_tokens(held, idf), len(ACCOUNTS))
    keys = [("ia", "ascending"), ("ib", "ascending"), ("kind", "ascending")]
    whole = large.evidence(left, right).sort_by(keys)
    assert whole.num_rows > 0
    for threads in (2, 3, 50):
        with ThreadPoolExecutor(threads) as pool:
            sliced = pa.concat_tables(on_slices(pool, threads, large.evidence, left, right))
            assert sliced.sort_by(keys).equals(whole)
