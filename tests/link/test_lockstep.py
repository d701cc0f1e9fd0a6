"""The lockstep overlap of pairs (bitsets of active buckets) against plain set intersection."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.link.lockstep import CO_ACTIVE_SCHEMA, co_active

ACCOUNTS = [f"acct-{i}" for i in range(8)]


@settings(max_examples=60, deadline=None)
@given(active=st.dictionaries(st.sampled_from(ACCOUNTS),
                              st.sets(st.integers(28_000_000, 28_000_000 + 700), min_size=1,
                                      max_size=60), min_size=1),
       pairs=st.lists(st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS)),
                      max_size=30))
def test_overlap_equals_set_intersection(active, pairs):
    rows = [(account, bucket) for account, found in active.items() for bucket in found]
    buckets = pa.table({"account_id": [r[0] for r in rows],
                        "bucket": pa.array([r[1] for r in rows], pa.int64())})
    table = pa.table({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]})
    out = co_active(table, buckets)
    assert out.schema == CO_ACTIVE_SCHEMA
    expected = [(a, b, len(active[a] & active[b])) for a, b in pairs
                if a in active and b in active]
    got = zip(out["a"].to_pylist(), out["b"].to_pylist(), out["co"].to_pylist(), strict=True)
    assert list(got) == expected


def test_no_pairs_or_no_buckets_give_an_empty_table():
    empty = pa.table({"account_id": pa.array([], pa.string()),
                      "bucket": pa.array([], pa.int64())})
    assert co_active(pa.table({"a": ["x"], "b": ["y"]}), empty).num_rows == 0
    assert co_active(pa.table({"a": pa.array([], pa.string()), "b": pa.array([], pa.string())}),
                     pa.table({"account_id": ["x"], "bucket": [5]})).num_rows == 0
