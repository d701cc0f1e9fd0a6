"""The driver's passes over the edges: common-neighbour support and components.

On 31.6M exchanges of ``stress`` there are 40.7M candidate edges. Fetched at once, with their
index arrays, thresholds and the kept edges, they added about 3 GB to the scan's peak on top
of the engine's memory limit, and the peak grew with the window (5.7 GB at 10M exchanges,
8.5 GB at 31.6M). Here they are read twice in ranges of their first account's number
(``link.compared.ranges``): once to fill the adjacency (``link.support.EdgeSupport``),
once to keep the supported edges, which go into the engine through a sink and into the
components chunk by chunk. The driver holds the adjacency (accounts x accounts bits) and one
chunk of edges. The campaign split of the score stage joins the components of the kept edges
within its parts the same way (:func:`components_within`).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from distillwatch.engine import Engine
from distillwatch.link.compared import (
    CHUNK_PAIRS,
    DRIVER_BYTES_PER_PAIR,
    pair_ends,
    ranges,
    read_ranges,
)
from distillwatch.link.pairs_sql import CANDIDATES, EDGE_NUMBERS, IDS
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
    with engine.lend_memory(DRIVER_BYTES_PER_PAIR * (chunk_edges or CHUNK_PAIRS)):
        return _support_edges(engine, accounts, min_support, chunk_edges)


def _support_edges(engine: Engine, accounts: int, min_support: float,
                   chunk_edges: int | None) -> tuple[np.ndarray, np.ndarray]:
    began = time.monotonic()
    nodes = engine.fetch_arrow(f"SELECT ia AS node FROM {CANDIDATES} UNION "
                               f"SELECT ib AS node FROM {CANDIDATES}", "link: edge ends")
    support = EdgeSupport(np.sort(nodes["node"].to_numpy().astype(np.int64)), accounts,
                          min_support)
    bounds, total = ranges(engine, CANDIDATES, chunk_edges)
    for chunk in read_ranges(engine, CANDIDATES, "ia, ib", bounds):
        support.add(*pair_ends(chunk))
    support.seal()
    components, threads = Components(accounts), cores()
    with engine.sink(EDGE_NUMBERS, EDGE_SCHEMA) as kept_out, \
            ThreadPoolExecutor(threads) as pool:
        for chunk in read_ranges(engine, CANDIDATES, "ia, ib, strength", bounds):
            ia, ib = pair_ends(chunk)
            kept, common = support.supported(ia, ib, pool, threads)
            kept_out.write(kept_edges(ia, ib, chunk["strength"], kept, common))
            components.join(ia[kept], ib[kept])
    logger.info("link: %d of %d candidate edges supported, %d chunks (%.0f s)",
                kept_out.rows, total, len(bounds), time.monotonic() - began)
    return components.labels()


def components_within(engine: Engine, part: np.ndarray, chunk_edges: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The components of the kept edges (``__dw__link_edge_numbers``) whose two ends lie in
    the same part.

    Args:
        engine: Holds ``__dw__link_edge_numbers``.
        part: The part of each account number (-1: in none; its edges are left out).
        chunk_edges: Edges read at once (default ``link.compared.CHUNK_PAIRS``).

    Returns:
        (nodes, labels), as :meth:`link.support.Components.labels`.
    """
    components = Components(len(part))
    bounds, _ = ranges(engine, EDGE_NUMBERS, chunk_edges)
    for chunk in read_ranges(engine, EDGE_NUMBERS, "ia, ib", bounds):
        ia, ib = pair_ends(chunk)
        within = (part[ia] == part[ib]) & (part[ia] >= 0)
        components.join(ia[within], ib[within])
    return components.labels()


def account_numbers(engine: Engine) -> pa.Array:
    """The account id of each account number of ``__dw__link_ids`` (position = number)."""
    ids = engine.fetch_arrow(f"SELECT id, account_id FROM {IDS}", "link: account ids")
    if not ids.num_rows:
        return pa.array([], pa.string())
    return ids["account_id"].combine_chunks().take(pa.array(np.argsort(ids["id"].to_numpy())))


def named_components(names: pa.Array, nodes: np.ndarray, labels: np.ndarray) -> pa.Table:
    """``node``, ``component`` as account ids (``names``: :func:`account_numbers`)."""
    return pa.table({"node": names.take(pa.array(nodes)),
                     "component": names.take(pa.array(labels))})
