"""FRAUDAR-style dense blocks in the account x token graph, resistant to camouflage.

Hooi et al. (KDD 2016): in a bipartite graph of accounts and what they touch, a fraud ring is
a dense block; its members can add camouflage edges to popular, legitimate columns, so each
column is weighted ``1 / ln(degree + 5)`` and the density of a block (rows S, columns T) is
``g = sum of cell weights / (|S| + |T|)``. Greedy peeling removes, one node at a time, the
node whose removal costs the least weight, and keeps the densest set seen; the block found is
within a factor 2 of the densest. Camouflage adds edges to heavy columns, which weigh little,
so it cannot lower a block's density enough to hide it.

The columns here are the network, identity and scaffold tokens of ``__dw__link_tokens`` that
two or more accounts carry. This runs on the driver over that edge list (one row per account
and token: the size of the scan's link graph, not of its exchanges).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

FAMILIES = ("network", "identity", "scaffold")


@dataclass(frozen=True)
class DenseBlock:
    """One dense block: its accounts, how many token columns it spans, its density."""

    accounts: tuple[str, ...]
    columns: int
    density: float


def greedy_peel(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int,
                n_cols: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Peel the graph greedily; return the densest (row mask, column mask, density).

    Args:
        rows, cols: Edge endpoints (row index, column index), one entry per edge.
        weights: Edge weights.
        n_rows, n_cols: Node counts.
    """
    n = n_rows + n_cols
    nodes_a = rows
    nodes_b = cols + n_rows
    degree = np.bincount(nodes_a, weights=weights, minlength=n) + \
        np.bincount(nodes_b, weights=weights, minlength=n)
    order = np.argsort(np.concatenate([nodes_a, nodes_b]), kind="stable")
    neighbours = np.concatenate([nodes_b, nodes_a])[order]
    edge_weights = np.concatenate([weights, weights])[order]
    starts = np.searchsorted(np.concatenate([nodes_a, nodes_b])[order], np.arange(n + 1))
    alive = np.ones(n, dtype=bool)
    total = float(weights.sum())
    size = n
    best, best_step = total / max(size, 1), 0
    heap = [(float(degree[i]), i) for i in range(n)]
    heapq.heapify(heap)
    removed: list[int] = []
    while heap and size > 1:
        value, node = heapq.heappop(heap)
        if not alive[node] or value != degree[node]:
            continue
        alive[node] = False
        removed.append(node)
        total -= degree[node]
        size -= 1
        for k in range(starts[node], starts[node + 1]):
            other = neighbours[k]
            if alive[other]:
                degree[other] -= edge_weights[k]
                heapq.heappush(heap, (float(degree[other]), int(other)))
        density = total / size
        if density > best + 1e-12:
            best, best_step = density, len(removed)
    keep = np.ones(n, dtype=bool)
    keep[removed[:best_step]] = False
    return keep[:n_rows], keep[n_rows:], best


def dense_blocks(accounts: list[str], tokens: list[str], max_blocks: int = 5,
                 min_accounts: int = 3) -> list[DenseBlock]:
    """The densest blocks of an account-token edge list, found one after another.

    Args:
        accounts: The account of each edge.
        tokens: The token of each edge (same length).
        max_blocks: Stop after this many blocks.
        min_accounts: Stop when the next block has fewer accounts.
    """
    account_ids, rows = np.unique(np.asarray(accounts, dtype=object), return_inverse=True)
    _, cols = np.unique(np.asarray(tokens, dtype=object), return_inverse=True)
    degree = np.bincount(cols)
    weights = 1.0 / np.log(degree[cols] + 5.0)
    blocks = []
    live = np.ones(len(rows), dtype=bool)
    for _ in range(max_blocks):
        if not live.any():
            break
        row_mask, col_mask, density = greedy_peel(rows[live], cols[live], weights[live],
                                                  len(account_ids), int(cols.max()) + 1)
        members = np.flatnonzero(row_mask & np.isin(np.arange(len(account_ids)),
                                                    rows[live]))
        if len(members) < min_accounts:
            break
        blocks.append(DenseBlock(tuple(str(a) for a in account_ids[members]),
                                 int(col_mask[np.unique(cols[live])].sum()), float(density)))
        live &= ~np.isin(rows, members)
    return blocks


def background_density(accounts: list[str], tokens: list[str]) -> float:
    """FRAUDAR density of the whole graph: what an unremarkable block has."""
    _, cols = np.unique(np.asarray(tokens, dtype=object), return_inverse=True)
    degree = np.bincount(cols)
    nodes = len(set(accounts)) + len(degree)
    return float((1.0 / np.log(degree[cols] + 5.0)).sum() / max(1, nodes))
