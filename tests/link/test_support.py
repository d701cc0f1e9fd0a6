"""Common-neighbour support of candidate edges: the bit-matrix and sparse-matrix counts agree,
and both equal a plain count over neighbour sets; components joined chunk by chunk equal
union-find."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.link import bitsets, support

NODES = [f"acct-{i:02d}" for i in range(14)]
NAMES = pa.array(NODES)


def _edges(pairs):
    unique = sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})
    return pa.table({"ia": pa.array([NODES.index(p[0]) for p in unique], pa.int32()),
                     "ib": pa.array([NODES.index(p[1]) for p in unique], pa.int32()),
                     "strength": [0.5] * len(unique)}), unique


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(NODES), st.sampled_from(NODES)), max_size=60),
       min_support=st.sampled_from([0.0, 0.2, 0.5]))
def test_bit_and_sparse_counts_equal_neighbour_sets(pairs, min_support):
    table, unique = _edges(pairs)
    neighbours: dict[str, set[str]] = {}
    for a, b in unique:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    expected = []
    for a, b in unique:
        common = len(neighbours[a] & neighbours[b])
        needed = max(1.0, min_support * (min(len(neighbours[a]), len(neighbours[b])) - 1))
        if common >= needed:
            expected.append((a, b, common))
    by_bits = support.supported_edges(table, len(NODES), min_support)
    saved = support._BIT_MATRIX_BYTES
    support._BIT_MATRIX_BYTES = 0  # force the sparse path
    try:
        by_sparse = support.supported_edges(table, len(NODES), min_support, chunk_edges=7)
    finally:
        support._BIT_MATRIX_BYTES = saved
    for found in (by_bits, by_sparse):
        got = zip(NAMES.take(found["ia"]).to_pylist(), NAMES.take(found["ib"]).to_pylist(),
                  found["common"].to_pylist(), strict=True)
        assert sorted(got) == sorted(expected)


def test_bit_rows_set_in_chunks_hold_every_member(monkeypatch):
    monkeypatch.setattr(bitsets, "_CHUNK_BYTES", 32 * 3)  # three (row, member) pairs at once
    rows = np.array([0, 2, 2, 1, 0, 2, 2], dtype=np.int32)
    members = np.array([0, 63, 64, 130, 5, 63, 129], dtype=np.int32)
    bits = bitsets.bit_rows(rows, members, 3, 131)
    assert bits.shape == (3, 3)
    held = [{w * 64 + i for w in range(3) for i in range(64) if int(bits[r, w]) >> i & 1}
            for r in range(3)]
    assert held == [{0, 5}, {130}, {63, 64, 129}]


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=80),
       chunk=st.integers(1, 9))
def test_components_joined_chunk_by_chunk_equal_union_find(pairs, chunk):
    components = support.Components(30)
    for start in range(0, len(pairs), chunk):
        part = np.array(pairs[start:start + chunk], dtype=np.int64).reshape(-1, 2)
        components.join(part[:, 0], part[:, 1])
    nodes, labels = components.labels()
    # The reference: grow each node's component by search, label it by its smallest member.
    neighbours: dict[int, set[int]] = {}
    for a, b in pairs:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    expected = {}
    for node in neighbours:
        seen, todo = {node}, [node]
        while todo:
            for other in neighbours[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        expected[node] = min(seen)
    assert dict(zip(nodes.tolist(), labels.tolist(), strict=True)) == expected


def test_support_counted_in_chunks_on_threads_equals_one_call():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    ia = rng.integers(0, 40, 400)
    ib = (ia + rng.integers(1, 12, 400)) % 40
    ia, ib = np.unique(np.stack([np.minimum(ia, ib), np.maximum(ia, ib)]), axis=1)
    whole = support.supported_edges(pa.table({"ia": ia, "ib": ib, "strength": ia * 0.01}),
                                    40, 0.3)
    filled = support.EdgeSupport(np.union1d(ia, ib), 40, 0.3)
    for start in range(0, len(ia), 17):
        filled.add(ia[start:start + 17], ib[start:start + 17])
    filled.seal()
    with ThreadPoolExecutor(3) as pool:
        kept, common = filled.supported(ia, ib, pool, 3)
    assert 0 < int(kept.sum()) < len(ia)
    assert support.kept_edges(ia, ib, pa.array(ia * 0.01), kept, common).equals(whole)
