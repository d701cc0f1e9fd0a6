"""Which candidate edges are embedded in their neighbourhood: common neighbours, counted exactly.

Accounts of one operator form a dense block, so each edge between two of them is supported by
many common neighbours; a coincidence between two operators (two campaigns that opened accounts
the same day behind one proxy provider) is a bridge with almost none, and is dropped rather
than merging them. An edge is kept when its ends have at least one common neighbour and
``edge_min_support`` of the smaller end's other neighbours.

Counting in SQL joins every edge with the neighbours of both of its ends (edges x degree rows:
a billion for a hydra of thousands of accounts). Here the candidate edges are a sparse
adjacency matrix, and the common neighbours of a chunk of edges are the row-wise product of
the two ends' rows: the same exact counts on every engine, in memory bounded by the chunk.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy import sparse
from scipy.sparse import csgraph

from distillwatch.link.bitsets import bit_rows, overlap

# Up to this size the adjacency is a bit matrix (n x n bits: 45k accounts with edges), above
# it a sparse matrix (slower for a hydra: its rows are thousands long).
_BIT_MATRIX_BYTES = 256 << 20
EDGE_SCHEMA = pa.schema([("ia", pa.int32()), ("ib", pa.int32()), ("strength", pa.float64()),
                         ("common", pa.int64())])


def supported_edges(candidates: pa.Table, accounts: int, min_support: float,
                    chunk_edges: int = 100_000) -> pa.Table:
    """Keep the candidate edges with enough common neighbours.

    Args:
        candidates: One row per undirected candidate edge: ``ia``, ``ib`` (the accounts'
            numbers, in ``[0, accounts)``) and ``strength``.
        accounts: How many accounts are numbered.
        min_support: Share of the smaller end's other neighbours that must be common.
        chunk_edges: Edges whose common neighbours are counted at once (bounds memory:
            about chunk_edges x mean degree x 12 bytes).

    Returns:
        The kept edges with ``ia``, ``ib``, ``strength`` and ``common``
        (:data:`EDGE_SCHEMA`).
    """
    if candidates.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    ia, ib = (candidates[end].to_numpy().astype(np.int32, copy=False) for end in ("ia", "ib"))
    # The accounts with an edge, numbered 0..n-1 (a lookup over all accounts: no sort of the
    # edges' ends).
    present = np.zeros(accounts, dtype=bool)
    present[ia] = True
    present[ib] = True
    nodes = np.flatnonzero(present).astype(np.int32)
    local = np.full(accounts, -1, dtype=np.int32)
    local[nodes] = np.arange(len(nodes), dtype=np.int32)
    a, b = local[ia], local[ib]
    n = len(nodes)
    if n * n <= _BIT_MATRIX_BYTES * 8:  # n x n bits: popcounts of row ANDs
        adjacency = bit_rows(np.concatenate([a, b]), np.concatenate([b, a]), n, n)
        degree = np.bitwise_count(adjacency).sum(axis=1, dtype=np.int64)
        common = overlap(adjacency, a, b)
        del adjacency
    else:
        degree, common = _sparse_common(a, b, n, chunk_edges)
    needed = np.maximum(1.0, min_support * (np.minimum(degree[a], degree[b]) - 1))
    kept = pa.array(common >= needed)
    return pa.table({"ia": pa.array(ia).filter(kept), "ib": pa.array(ib).filter(kept),
                     "strength": candidates["strength"].combine_chunks().cast(pa.float64())
                     .filter(kept),
                     "common": pa.array(common, pa.int64()).filter(kept)}, schema=EDGE_SCHEMA)


def _sparse_common(a: np.ndarray, b: np.ndarray, n: int, chunk_edges: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    # Too many accounts for an n x n bit matrix: the row-wise product of a sparse adjacency.
    m = len(a)
    ones = np.ones(2 * m, dtype=np.int32)
    adjacency = sparse.csr_matrix((ones, (np.concatenate([a, b]), np.concatenate([b, a]))),
                                  shape=(n, n))
    adjacency.sum_duplicates()
    adjacency.data[:] = 1
    degree = np.diff(adjacency.indptr)
    common = np.empty(m, dtype=np.int64)
    for start in range(0, m, chunk_edges):
        stop = min(m, start + chunk_edges)
        rows = adjacency[a[start:stop]].multiply(adjacency[b[start:stop]])
        common[start:stop] = np.asarray(rows.sum(axis=1)).ravel()
    return degree, common


def edge_components(edges: pa.Table, accounts: int) -> tuple[np.ndarray, np.ndarray]:
    """The connected components of the kept edges (``ia``, ``ib``: account numbers).

    Returns:
        (nodes, labels): every account number with an edge, ascending, and the smallest
        account number of its component (as ``link.components`` labels a component by its
        smallest id: numbers follow the ids' order).
    """
    if edges.num_rows == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    ia, ib = (edges[end].to_numpy().astype(np.int64) for end in ("ia", "ib"))
    graph = sparse.coo_matrix((np.ones(len(ia), dtype=np.int8), (ia, ib)),
                              shape=(accounts, accounts)).tocsr()
    _, component = csgraph.connected_components(graph, directed=False)
    present = np.zeros(accounts, dtype=bool)
    present[ia] = True
    present[ib] = True
    nodes = np.flatnonzero(present)
    smallest = np.full(component.max() + 1, accounts, dtype=np.int64)
    np.minimum.at(smallest, component[nodes], nodes)
    return nodes, smallest[component[nodes]]
