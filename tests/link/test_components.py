"""Relational connected components agree with union-find on random graphs."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.link.components import connected_components


def union_find(edges: list[tuple[str, str]]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {node: find(node) for node in list(parent)}


def run(engine, edges):
    engine.register("__dw__test_edges", pa.table({"a": [a for a, _ in edges],
                                                  "b": [b for _, b in edges]}))
    frame = connected_components(engine, "__dw__test_edges")
    return {row["node"]: row["component"] for row in frame.to_pylist()}


def test_a_long_chain_and_separate_pairs(engine):
    chain = [(f"n{i:03d}", f"n{i + 1:03d}") for i in range(60)]
    got = run(engine, [*reversed(chain), ("x1", "x2"), ("y", "y")])
    assert {got[f"n{i:03d}"] for i in range(61)} == {"n000"}
    assert got["x2"] == "x1" and got["y"] == "y"


nodes = st.sampled_from([f"a{i:02d}" for i in range(25)])


@settings(max_examples=25, deadline=None)
@given(edges=st.lists(st.tuples(nodes, nodes), min_size=1, max_size=40))
def test_matches_union_find(edges):
    from distillwatch.engine import DuckDBEngine

    engine = DuckDBEngine()
    try:
        assert run(engine, edges) == union_find(edges)
    finally:
        engine.close()
