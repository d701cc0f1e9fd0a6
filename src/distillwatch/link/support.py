"""Which candidate edges are embedded in their neighbourhood: common neighbours, counted exactly.

Accounts of one operator form a dense block, so each edge between two of them is supported by
many common neighbours; a coincidence between two operators (two campaigns that opened accounts
the same day behind one proxy provider) is a bridge with almost none, and is dropped rather
than merging them. An edge is kept when its ends have at least one common neighbour and
``edge_min_support`` of the smaller end's other neighbours.

Counting in SQL joins every edge with the neighbours of both of its ends (edges x degree rows:
a billion for a hydra of thousands of accounts). Here the candidate edges are an adjacency
matrix, filled chunk by chunk (:class:`EdgeSupport`), and the common neighbours of a chunk of
edges are the row-wise product of the two ends' rows: the same exact counts on every engine.
The kept edges are joined into connected components chunk by chunk too (:class:`Components`),
so the driver holds the adjacency and one chunk of edges, never all edges
(``link.edges`` reads them from the engine).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from scipy import sparse
from scipy.sparse import csgraph

from distillwatch.link.bitsets import overlap, set_bits
from distillwatch.workers import on_slices

# Up to this size the adjacency is a bit matrix (n x n bits: 45k accounts with edges), above
# it a sparse matrix (slower for a hydra: its rows are thousands long, and it holds every
# edge).
_BIT_MATRIX_BYTES = 256 << 20
EDGE_SCHEMA = pa.schema([("ia", pa.int32()), ("ib", pa.int32()), ("strength", pa.float64()),
                         ("common", pa.int64())])


class EdgeSupport:
    """The candidate edges' adjacency, and the common neighbours of any of its edges.

    Fill it with every candidate edge (:meth:`add`, chunk by chunk), :meth:`seal` it, then
    ask which edges of a chunk are supported (:meth:`supported`).

    Args:
        nodes: The account numbers with a candidate edge, ascending.
        accounts: How many accounts are numbered (every number is in ``[0, accounts)``).
        min_support: Share of the smaller end's other neighbours that must be common.
        chunk_edges: On the sparse path, edges whose common neighbours are counted at once
            (bounds memory: about chunk_edges x mean degree x 12 bytes).
    """

    def __init__(self, nodes: np.ndarray, accounts: int, min_support: float,
                 chunk_edges: int = 100_000) -> None:
        self.min_support, self.chunk_edges = min_support, chunk_edges
        self._local = np.full(accounts, -1, dtype=np.int32)
        self._local[nodes] = np.arange(len(nodes), dtype=np.int32)
        self.n = n = len(nodes)
        self._bits: np.ndarray | None = None
        self._ends: list[tuple[np.ndarray, np.ndarray]] = []
        self._adjacency: sparse.csr_matrix | None = None
        self._degree = np.zeros(n, dtype=np.int64)
        if n * n <= _BIT_MATRIX_BYTES * 8:  # n x n bits: popcounts of row ANDs
            self._bits = np.zeros((n, max(1, (n + 63) // 64)), dtype=np.uint64)

    def add(self, ia: np.ndarray, ib: np.ndarray) -> None:
        """Add candidate edges (account numbers; each undirected edge once)."""
        a, b = self._local[ia], self._local[ib]
        if self._bits is not None:
            set_bits(self._bits, a, b)
            set_bits(self._bits, b, a)
        else:
            self._ends.append((a, b))

    def seal(self) -> None:
        """Every edge is added: count the degrees (and build the sparse matrix)."""
        if self._bits is not None:
            self._degree = np.bitwise_count(self._bits).sum(axis=1, dtype=np.int64)
            return
        a = np.concatenate([end[0] for end in self._ends] or [np.empty(0, np.int32)])
        b = np.concatenate([end[1] for end in self._ends] or [np.empty(0, np.int32)])
        self._ends = []
        adjacency = sparse.csr_matrix(
            (np.ones(2 * len(a), dtype=np.int32), (np.concatenate([a, b]),
                                                    np.concatenate([b, a]))),
            shape=(self.n, self.n))
        adjacency.sum_duplicates()
        adjacency.data[:] = 1
        self._adjacency = adjacency
        self._degree = np.diff(adjacency.indptr).astype(np.int64)

    def common(self, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
        """The common neighbours of each edge (``ia[k]``, ``ib[k]``)."""
        a, b = self._local[ia], self._local[ib]
        if self._bits is not None:
            return overlap(self._bits, a, b)
        if self._adjacency is None:
            raise ValueError("EdgeSupport.seal() must be called before counting")
        common = np.empty(len(a), dtype=np.int64)
        for start in range(0, len(a), self.chunk_edges):
            stop = min(len(a), start + self.chunk_edges)
            rows = self._adjacency[a[start:stop]].multiply(self._adjacency[b[start:stop]])
            common[start:stop] = np.asarray(rows.sum(axis=1)).ravel()
        return common

    def supported(self, ia: np.ndarray, ib: np.ndarray,
                  pool: ThreadPoolExecutor | None = None, threads: int = 1
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Which edges of a chunk are kept.

        Args:
            ia, ib: The edges' ends (account numbers).
            pool, threads: Count on one slice of the chunk per thread (numpy's bit
                operations release the GIL).

        Returns:
            (kept, common): a boolean mask over the chunk, and each edge's common neighbours.
        """
        common = (np.concatenate(on_slices(pool, threads, self.common, ia, ib))
                  if pool is not None and len(ia) else self.common(ia, ib))
        smaller = np.minimum(self._degree[self._local[ia]], self._degree[self._local[ib]])
        return common >= np.maximum(1.0, self.min_support * (smaller - 1)), common


class Components:
    """Connected components of edges given chunk by chunk, each labelled by its smallest
    account number (as ``link.components`` labels a component by its smallest id: numbers
    follow the ids' order).

    Every account points straight at its component's smallest member; a chunk of edges
    joins those roots (one ``connected_components`` over the accounts), so memory is the
    accounts plus one chunk, however many edges there are.

    Args:
        accounts: How many accounts are numbered.
    """

    def __init__(self, accounts: int) -> None:
        self._root = np.arange(accounts, dtype=np.int64)
        self._present = np.zeros(accounts, dtype=bool)

    def join(self, ia: np.ndarray, ib: np.ndarray) -> None:
        """Add edges (account numbers)."""
        if not len(ia):
            return
        self._present[ia] = True
        self._present[ib] = True
        n = len(self._root)
        roots = sparse.coo_matrix((np.ones(len(ia), dtype=np.int8),
                                   (self._root[ia], self._root[ib])), shape=(n, n)).tocsr()
        _, component = csgraph.connected_components(roots, directed=False)
        smallest = np.full(component.max() + 1, n, dtype=np.int64)
        np.minimum.at(smallest, component, np.arange(n, dtype=np.int64))
        self._root = smallest[component[self._root]]

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(nodes, labels): every account number with an edge, ascending, and the smallest
        account number of its component."""
        nodes = np.flatnonzero(self._present)
        return nodes, self._root[nodes]


def supported_edges(candidates: pa.Table, accounts: int, min_support: float,
                    chunk_edges: int = 100_000) -> pa.Table:
    """Keep the candidate edges with enough common neighbours (all given at once; the link
    stage reads them chunk by chunk through ``link.edges``).

    Args:
        candidates: One row per undirected candidate edge: ``ia``, ``ib`` (the accounts'
            numbers, in ``[0, accounts)``) and ``strength``.
        accounts: How many accounts are numbered.
        min_support: Share of the smaller end's other neighbours that must be common.
        chunk_edges: See :class:`EdgeSupport`.

    Returns:
        The kept edges with ``ia``, ``ib``, ``strength`` and ``common``
        (:data:`EDGE_SCHEMA`).
    """
    ia, ib = (candidates[end].to_numpy().astype(np.int32, copy=False) for end in ("ia", "ib"))
    support = EdgeSupport(np.union1d(ia, ib), accounts, min_support, chunk_edges)
    support.add(ia, ib)
    support.seal()
    kept, common = support.supported(ia, ib)
    return kept_edges(ia, ib, candidates["strength"], kept, common)


def kept_edges(ia: np.ndarray, ib: np.ndarray, strength: pa.ChunkedArray | pa.Array,
               kept: np.ndarray, common: np.ndarray) -> pa.Table:
    """The rows of :data:`EDGE_SCHEMA` for the kept edges of a chunk."""
    mask = pa.array(kept)
    if isinstance(strength, pa.ChunkedArray):
        strength = strength.combine_chunks()
    return pa.table({"ia": pa.array(ia, pa.int32()).filter(mask),
                     "ib": pa.array(ib, pa.int32()).filter(mask),
                     "strength": strength.cast(pa.float64()).filter(mask),
                     "common": pa.array(common, pa.int64()).filter(mask)}, schema=EDGE_SCHEMA)

