"""The driver's pass over the compared pairs: large tokens' evidence and lockstep overlap.

The compared pairs grow faster than the exchanges (38.7M pairs for the first 10M exchanges of
``stress``, 8.6M for the first 3M): held at once as Arrow strings with their index arrays and
results they took most of a 13 GB peak. Here every account has a number (``__dw__link_ids``),
the per-account bit rows are built once (``link.large_tokens``, ``link.lockstep``), and the
pairs are read in chunks of about ``CHUNK_PAIRS``, by ranges of their first account's number;
each chunk's results go straight into the engine through a sink. The driver holds the bit rows
(accounts x words) and one chunk, however many pairs there are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from distillwatch.engine import Engine
from distillwatch.link.large_tokens import LARGE_SHARED_SCHEMA, LargeTokens
from distillwatch.link.lockstep import CO_ACTIVE_SCHEMA, ActiveBuckets
from distillwatch.link.pairs_sql import (
    BUCKETS,
    BURST_KINDS,
    CO_ACTIVE,
    COMPARED,
    IDS,
    LARGE_SHARED,
    LARGE_TOKENS,
)
from distillwatch.workers import cores, on_slices

logger = logging.getLogger(__name__)
CHUNK_PAIRS = 4_000_000
# The driver's working set per pair of a chunk (fetched ends, bit-row gathers on two threads,
# the results before the sink takes them): ~1.3 GB for 4M pairs on 31.6M exchanges of
# `stress`. The engine lends this much of its memory budget for the driver's passes
# (``Engine.lend_memory``), so the scan's peak does not grow with the window.
DRIVER_BYTES_PER_PAIR = 384


def chunk_bounds(first: np.ndarray, counts: np.ndarray, per_chunk: int) -> list[tuple[int, int]]:
    """Ranges ``[lo, hi)`` of first-account numbers holding about ``per_chunk`` pairs each.

    Args:
        first: The distinct first-account numbers, ascending ...
        counts: ... and how many pairs each begins.
        per_chunk: Pairs wanted per chunk; an account's pairs are never split, so a chunk
            holds more when one account begins more.
    """
    bounds: list[tuple[int, int]] = []
    lo, held = None, 0
    for number, count in zip(first.tolist(), counts.tolist(), strict=True):
        if lo is None:
            lo = number
        held += count
        if held >= per_chunk:
            bounds.append((lo, number + 1))
            lo, held = None, 0
    if lo is not None:
        bounds.append((lo, int(first[-1]) + 1))
    return bounds


def ranges(engine: Engine, table: str, per_chunk: int | None = None
           ) -> tuple[list[tuple[int, int]], int]:
    """Ranges of first-account numbers (``ia``) holding about ``per_chunk`` rows of
    ``table`` each (:func:`chunk_bounds`), and the rows in all."""
    starts = engine.fetch_arrow(f"SELECT ia, count(*) AS n FROM {table} GROUP BY ia "
                                "ORDER BY ia", f"link: rows of {table} per account")
    counts = starts["n"].to_numpy()
    return (chunk_bounds(starts["ia"].to_numpy(), counts, per_chunk or CHUNK_PAIRS),
            int(np.sum(counts)))


def read_ranges(engine: Engine, table: str, columns: str, bounds: list[tuple[int, int]]
                ) -> Iterator[pa.Table]:
    """``columns`` of ``table``, one range of first-account numbers at a time."""
    for lo, hi in bounds:
        yield engine.fetch_arrow(f"SELECT {columns} FROM {table} WHERE ia >= {lo} AND ia < {hi}",
                                 f"link: a range of {table}")


def pair_evidence(engine: Engine, chunk_pairs: int | None = None) -> list[tuple[int, int]]:
    """Register ``__dw__link_large_shared`` and ``__dw__link_co_active`` for the compared
    pairs; returns the ranges of first-account numbers they were read in (``chunk_bounds``).

    Reads ``__dw__link_ids``, ``__dw__link_candidate_pairs``, ``__dw__link_big_tokens`` (kinds
    whose strength is a sum of idf; bursts stay in SQL) and ``__dw__link_buckets``.

    Args:
        engine: Holds those tables.
        chunk_pairs: Pairs read at once (bounds the driver's memory; default
            :data:`CHUNK_PAIRS`).
    """
    accounts = engine.frame(IDS).count()
    bursts = ", ".join(f"'{kind}'" for kind in BURST_KINDS)
    large = LargeTokens(engine.fetch_arrow(
        f"SELECT id AS holder, kind, family, token, idf FROM {LARGE_TOKENS} "
        f"WHERE kind NOT IN ({bursts})", "link: large tokens"), accounts)
    active = ActiveBuckets(engine.fetch_arrow(
        f"SELECT id AS holder, bucket FROM {BUCKETS}", "link: active buckets"), accounts)
    bounds, total = ranges(engine, COMPARED, chunk_pairs)
    began, done, threads = time.monotonic(), 0, cores()
    with engine.lend_memory(DRIVER_BYTES_PER_PAIR * (chunk_pairs or CHUNK_PAIRS)), \
            engine.sink(LARGE_SHARED, LARGE_SHARED_SCHEMA) as shared, \
            engine.sink(CO_ACTIVE, CO_ACTIVE_SCHEMA) as together, \
            ThreadPoolExecutor(threads) as pool:
        for number, chunk in enumerate(read_ranges(engine, COMPARED, "ia, ib", bounds), 1):
            left, right = pair_ends(chunk)
            shared.write(pa.concat_tables(
                on_slices(pool, threads, large.evidence, left, right)))
            together.write(pa.concat_tables(
                on_slices(pool, threads, active.co_active, left, right)))
            done += len(left)
            logger.info("link: compared pairs, chunk %d/%d: %d of %d pairs (%.0f s)",
                        number, len(bounds), done, total, time.monotonic() - began)
    logger.info("link: %s has %d rows, %s has %d rows", LARGE_SHARED, shared.rows,
                CO_ACTIVE, together.rows)
    return bounds


def pair_ends(chunk: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The ``ia`` and ``ib`` columns of a chunk of pairs, as int64 arrays."""
    return chunk["ia"].to_numpy().astype(np.int64), chunk["ib"].to_numpy().astype(np.int64)
