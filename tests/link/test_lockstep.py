"""The lockstep overlap of pairs (bitsets of active buckets) against plain set intersection."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.link.lockstep import CO_ACTIVE_SCHEMA, ActiveBuckets

ACCOUNTS = [f"acct-{i}" for i in range(8)]


def co_active(pairs: list[tuple[str, str]], rows: list[tuple[str, int]]) -> pa.Table:
    buckets = pa.table({"holder": pa.array([ACCOUNTS.index(r[0]) for r in rows], pa.int32()),
                        "bucket": pa.array([r[1] for r in rows], pa.int64())})
    left, right = (np.array([ACCOUNTS.index(p[end]) for p in pairs], dtype=np.int64)
                   for end in (0, 1))
    return ActiveBuckets(buckets, len(ACCOUNTS)).co_active(left, right)


@settings(max_examples=60, deadline=None)
@given(active=st.dictionaries(st.sampled_from(ACCOUNTS),
                              st.sets(st.integers(28_000_000, 28_000_000 + 700), min_size=1,
                                      max_size=60), min_size=1),
       pairs=st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS)),
                      max_size=30))
def test_overlap_equals_set_intersection(active, pairs):
    rows = [(account, bucket) for account, found in active.items() for bucket in found]
    out = co_active(pairs, rows)
    assert out.schema == CO_ACTIVE_SCHEMA
    expected = [(a, b, len(active[a] & active[b])) for a, b in pairs
                if a in active and b in active and active[a] & active[b]]
    got = zip((ACCOUNTS[i] for i in out["ia"].to_pylist()),
              (ACCOUNTS[i] for i in out["ib"].to_pylist()), out["co"].to_pylist(), strict=True)
    assert list(got) == expected


def test_no_pairs_or_no_buckets_give_an_empty_table():
    assert co_active([("acct-0", "acct-1")], []).equals(CO_ACTIVE_SCHEMA.empty_table())
    assert co_active([], [("acct-0", 5)]).num_rows == 0
    assert co_active([("acct-0", "acct-1")], [("acct-0", 5)]).num_rows == 0
