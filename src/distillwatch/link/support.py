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

from distillwatch.link.bitsets import bit_rows, overlap

# Up to this size the adjacency is a bit matrix (n x n bits: 45k accounts with edges), above
# it a sparse matrix (slower for a hydra: its rows are thousands long).
_BIT_MATRIX_BYTES = 256 << 20
EDGE_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("strength", pa.float64()),
                         ("common", pa.int64())])


def supported_edges(candidates: pa.Table, names: pa.Array, min_support: float,
                    chunk_edges: int = 100_000) -> pa.Table:
    """Keep the candidate edges with enough common neighbours.

    Args:
        candidates: One row per undirected candidate edge: ``ia``, ``ib`` (the accounts'
            numbers, ``names[ia] < names[ib]``) and ``strength``.
        names: The accounts' ids, by number (the output's ``a`` and ``b``).
        min_support: Share of the smaller end's other neighbours that must be common.
        chunk_edges: Edges whose common neighbours are counted at once (bounds memory:
            about chunk_edges x mean degree x 12 bytes).

    Returns:
        The kept edges with ``a``, ``b``, ``strength`` and ``common`` (:data:`EDGE_SCHEMA`).
    """
    if candidates.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    m = candidates.num_rows
    ends = np.concatenate([candidates[end].to_numpy().astype(np.int64) for end in ("ia", "ib")])
    # The accounts with an edge, numbered 0..n-1.
    nodes, index = np.unique(ends, return_inverse=True)
    a, b = index[:m], index[m:]
    n = len(nodes)
    if n * n <= _BIT_MATRIX_BYTES * 8:  # n x n bits: popcounts of row ANDs
        adjacency = bit_rows(np.concatenate([a, b]), np.concatenate([b, a]), n, n)
        degree = np.bitwise_count(adjacency).sum(axis=1, dtype=np.int64)
        common = overlap(adjacency, a, b)
    else:
        degree, common = _sparse_common(a, b, n, chunk_edges)
    needed = np.maximum(1.0, min_support * (np.minimum(degree[a], degree[b]) - 1))
    kept = common >= needed
    return pa.table({"a": names.take(pa.array(nodes[a[kept]])),
                     "b": names.take(pa.array(nodes[b[kept]])),
                     "strength": candidates["strength"].combine_chunks().cast(pa.float64())
                     .filter(pa.array(kept)),
                     "common": pa.array(common[kept], pa.int64())}, schema=EDGE_SCHEMA)


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
