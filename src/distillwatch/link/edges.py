"""The driver's pass over the candidate edges: common-neighbour support and components.

On 31.6M exchanges of ``stress`` there are 40.7M candidate edges. Fetched at once, with their
index arrays, thresholds and the kept edges, they added about 3 GB to the scan's peak on top
of the engine's memory limit, and the peak grew with the window (5.7 GB at 10M exchanges,
8.5 GB at 31.6M). Here they are read twice in ranges of their first account's number
(``link.compared.chunk_bounds``): once to fill the adjacency (``link.support.EdgeSupport``),
once to keep the supported edges, which go into the engine through a sink and into the
components chunk by chunk. The driver holds the adjacency (accounts x accounts bits) and one
chunk of edges.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from distillwatch.engine import Engine
from distillwatch.link.compared import CHUNK_PAIRS, chunk_bounds
from distillwatch.link.pairs_sql import CANDIDATES, EDGE_NUMBERS
from distillwatch.link.support import EDGE_SCHEMA, Components, EdgeSupport, kept_edges
from distillwatch.workers import cores

logger = logging.getLogger(__name__)


def support_edges(engine: Engine, accounts: int, min_support: float,
                  chunk_edges: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Register ``__dw__link_edge_numbers`` (the supported candidate edges of
    ``__dw__link_candidates``, :data:`link.support.EDGE_SCHEMA`) and return their
    components.

    Args:
        engine: Holds ``__dw__link_candidates`` (``ia``, ``ib``, ``strength``).
        accounts: How many accounts are numbered (``__dw__link_ids``).
        min_support: ``link.edge_min_support``.
        chunk_edges: Edges read at once (default ``link.compared.CHUNK_PAIRS``).

    Returns:
        (nodes, labels): every account number with a kept edge, ascending, and the smallest
        account number of its component (``link.support.Components.labels``).
    """
    began = time.monotonic()
    nodes = engine.fetch_arrow(f"SELECT ia AS node FROM {CANDIDATES} UNION "
                               f"SELECT ib AS node FROM {CANDIDATES}", "link: edge ends")
    support = EdgeSupport(np.sort(nodes["node"].to_numpy().astype(np.int64)), accounts,
                          min_support)
    starts = engine.fetch_arrow(f"SELECT ia, count(*) AS n FROM {CANDIDATES} GROUP BY ia "
                                "ORDER BY ia", "link: candidate edges per account")
    bounds = chunk_bounds(starts["ia"].to_numpy(), starts["n"].to_numpy(),
                          chunk_edges or CHUNK_PAIRS)

    def chunks(columns: str):
        for lo, hi in bounds:
            yield engine.fetch_arrow(f"SELECT {columns} FROM {CANDIDATES} "
                                     f"WHERE ia >= {lo} AND ia < {hi}", "link: edge chunk")

    for chunk in chunks("ia, ib"):
        support.add(*_ends(chunk))
    support.seal()
    components, threads = Components(accounts), cores()
    with engine.sink(EDGE_NUMBERS, EDGE_SCHEMA) as kept_out, \
            ThreadPoolExecutor(threads) as pool:
        for chunk in chunks("ia, ib, strength"):
            ia, ib = _ends(chunk)
            kept, common = support.supported(ia, ib, pool, threads)
            kept_out.write(kept_edges(ia, ib, chunk["strength"], kept, common))
            components.join(ia[kept], ib[kept])
    logger.info("link: %d of %d candidate edges supported, %d chunks (%.0f s)",
                kept_out.rows, int(np.sum(starts["n"].to_numpy())), len(bounds),
                time.monotonic() - began)
    return components.labels()


def _ends(chunk) -> tuple[np.ndarray, np.ndarray]:
    return (chunk["ia"].to_numpy().astype(np.int64), chunk["ib"].to_numpy().astype(np.int64))
