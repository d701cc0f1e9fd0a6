"""FRAUDAR-style peeling finds a planted dense block despite camouflage, checked by brute force."""

from __future__ import annotations

import itertools
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwatch.link.fraudar import background_density, dense_blocks, greedy_peel


def planted(seed: int, camouflage: int):
    rng = random.Random(seed)
    accounts, tokens = [], []
    for a in range(200):                           # ordinary accounts, sparse
        for t in rng.sample(range(500), 4):
            accounts.append(f"user{a}")
            tokens.append(f"t{t}")
    for a in range(12):                            # a ring: 12 accounts x 10 shared tokens
        for t in range(10):
            accounts.append(f"ring{a}")
            tokens.append(f"ring-token{t}")
        for t in rng.sample(range(500), camouflage):  # camouflage: ordinary tokens too
            accounts.append(f"ring{a}")
            tokens.append(f"t{t}")
    return accounts, tokens


def test_the_ring_is_the_densest_block_even_with_camouflage():
    for camouflage in (0, 10, 40):
        accounts, tokens = planted(1, camouflage)
        block = dense_blocks(accounts, tokens, max_blocks=1)[0]
        assert set(block.accounts) == {f"ring{a}" for a in range(12)}, camouflage
        assert block.density > 2 * background_density(accounts, tokens)


def _density(rows, cols, weights, keep_rows, keep_cols):
    inside = keep_rows[rows] & keep_cols[cols]
    size = keep_rows.sum() + keep_cols.sum()
    return weights[inside].sum() / size if size else 0.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_peeling_is_within_a_factor_two_of_the_densest_subgraph(seed):
    rng = np.random.default_rng(seed)
    n_rows, n_cols = 4, 4
    edges = [(r, c) for r in range(n_rows) for c in range(n_cols) if rng.random() < 0.5]
    if not edges:
        return
    rows = np.array([e[0] for e in edges])
    cols = np.array([e[1] for e in edges])
    weights = rng.uniform(0.1, 1.0, len(edges))
    keep_rows, keep_cols, density = greedy_peel(rows, cols, weights, n_rows, n_cols)
    assert abs(_density(rows, cols, weights, keep_rows, keep_cols) - density) < 1e-9
    best = 0.0
    for r_bits, c_bits in itertools.product(range(1, 2 ** n_rows), range(1, 2 ** n_cols)):
        kr = np.array([(r_bits >> i) & 1 for i in range(n_rows)], dtype=bool)
        kc = np.array([(c_bits >> i) & 1 for i in range(n_cols)], dtype=bool)
        best = max(best, _density(rows, cols, weights, kr, kc))
    assert density >= best / 2 - 1e-9
