"""The driver's passes over the edges read from the engine in chunks: the same supported
edges and components as all at once, and the campaign split's components within parts equal
the relational algorithm over the same edges."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.link import edges
from distillwatch.link.components import connected_components
from distillwatch.link.pairs_sql import CANDIDATES, EDGE_NUMBERS, IDS
from distillwatch.link.support import Components, supported_edges

ACCOUNTS = 60


def _ids(engine):
    # Numbers in the order of the ids, as the link stage gives them.
    engine.register(IDS, pa.table({"id": np.arange(ACCOUNTS, dtype=np.int32),
                                   "account_id": [f"acct-{n:03d}" for n in range(ACCOUNTS)]}))


def _candidates(seed: int) -> pa.Table:
    # Three dense blocks and random bridges between them: some edges kept, some dropped.
    rng = np.random.default_rng(seed)
    block = rng.integers(0, 3, ACCOUNTS)
    ia, ib = rng.integers(0, ACCOUNTS, 900), rng.integers(0, ACCOUNTS, 900)
    keep = (ia != ib) & ((block[ia] == block[ib]) | (rng.random(900) < 0.05))
    pairs = np.unique(np.stack([np.minimum(ia, ib), np.maximum(ia, ib)])[:, keep], axis=1)
    return pa.table({"ia": pa.array(pairs[0], pa.int32()), "ib": pa.array(pairs[1], pa.int32()),
                     "strength": rng.random(pairs.shape[1])})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_edges_read_in_chunks_are_kept_and_joined_as_all_at_once(engine, seed):
    candidates = _candidates(seed)
    engine.register(CANDIDATES, candidates)
    whole = supported_edges(candidates, ACCOUNTS, 0.3)
    assert 0 < whole.num_rows < candidates.num_rows
    expected = Components(ACCOUNTS)
    expected.join(whole["ia"].to_numpy(), whole["ib"].to_numpy())
    nodes, labels = edges.support_edges(engine, ACCOUNTS, 0.3, chunk_edges=25)
    keys = [("ia", "ascending"), ("ib", "ascending")]
    assert engine.frame(EDGE_NUMBERS).to_arrow().sort_by(keys).equals(whole.sort_by(keys))
    assert [a.tolist() for a in (nodes, labels)] == [a.tolist() for a in expected.labels()]


@pytest.mark.parametrize("seed", [1, 2])
def test_components_within_parts_equal_the_relational_algorithm(engine, seed):
    _ids(engine)
    candidates = _candidates(seed)
    engine.register(CANDIDATES, candidates)
    edges.support_edges(engine, ACCOUNTS, 0.0)
    part = np.random.default_rng(seed).integers(-1, 4, ACCOUNTS)
    names = edges.account_numbers(engine)
    got = edges.named_components(names, *edges.components_within(engine, part, chunk_edges=30))
    kept = engine.frame(EDGE_NUMBERS).to_arrow()
    ia, ib = kept["ia"].to_numpy(), kept["ib"].to_numpy()
    within = (part[ia] == part[ib]) & (part[ia] >= 0)
    engine.register("__dw__test_part_edges", pa.table({"a": names.take(pa.array(ia[within])),
                                                       "b": names.take(pa.array(ib[within]))}))
    expected = connected_components(engine, "__dw__test_part_edges").to_pylist()
    assert len(expected) > 10
    assert {row["node"]: row["component"] for row in got.to_pylist()} == \
        {row["node"]: row["component"] for row in expected}
