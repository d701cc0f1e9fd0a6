"""The link stage: tokens -> pairs -> edges -> clusters of accounts run by one operator."""

from __future__ import annotations

import logging

from distillwatch.engine import Engine, EngineFrame, SqlPipeline
from distillwatch.link.components import connected_components
from distillwatch.link.large_tokens import large_token_evidence
from distillwatch.link.lockstep import co_active
from distillwatch.link.pairs_sql import (
    BUCKETS,
    BURST_KINDS,
    CO_ACTIVE,
    COMPARED,
    EDGES,
    LARGE_SHARED,
    LARGE_TOKENS,
    PIVOT,
    candidate_edge_sql,
    pair_sqls,
)
from distillwatch.link.support import supported_edges
from distillwatch.link.tokens_sql import token_sqls
from distillwatch.settings import LinkSettings

logger = logging.getLogger(__name__)


def link_accounts(engine: Engine, settings: LinkSettings,
                  disabled_families: tuple[str, ...] = ()) -> EngineFrame:
    """Cluster the accounts of ``__dw__features`` / ``__dw__accounts``.

    Leaves ``__dw__link_tokens``, ``__dw__link_pairs`` and ``__dw__link_edges`` in the engine
    for the evidence of the score stage.

    Args:
        engine: Holds the scan's features and accounts.
        settings: Link settings.
        disabled_families: Families of evidence to ignore (ablation studies).

    Returns:
        ``__dw__link_components`` (node, component) for every account with an edge.
    """
    pairs = pair_sqls(engine.dialect, settings, disabled_families)
    for steps in (token_sqls(engine.dialect, settings), *pairs.compared):
        _run(engine, steps)
    # The large tokens' evidence of the compared pairs on the driver: bitsets per kind
    # (link/large_tokens.py).
    bursts = ", ".join(f"'{kind}'" for kind in BURST_KINDS)
    large = large_token_evidence(
        engine.fetch_arrow(f"SELECT a, b FROM {COMPARED}", "link: compared pairs"),
        engine.fetch_arrow(f"SELECT account_id, kind, family, token, idf FROM {LARGE_TOKENS} "
                           f"WHERE kind NOT IN ({bursts})", "link: large tokens"))
    engine.register(LARGE_SHARED, large)
    logger.info("link: %s has %d rows", LARGE_SHARED, large.num_rows)
    for steps in (pairs.evidence, pairs.buckets):
        _run(engine, steps)
    # Lockstep overlap on the driver: bitsets of active buckets (link/lockstep.py).
    overlap = co_active(engine.fetch_arrow(f"SELECT a, b FROM {PIVOT}", "link: pair ends"),
                        engine.fetch_arrow(f"SELECT account_id, bucket FROM {BUCKETS}",
                                           "link: active buckets"))
    engine.register(CO_ACTIVE, overlap)
    logger.info("link: %s has %d rows", CO_ACTIVE, overlap.num_rows)
    _run(engine, pairs.timing)
    frame = _run(engine, [candidate_edge_sql(settings)])
    edges = supported_edges(frame.to_arrow(), settings.edge_min_support)
    engine.register(EDGES, edges)
    logger.info("link: %s has %d rows", EDGES, edges.num_rows)
    return connected_components(engine, EDGES)


def _run(engine: Engine, steps: list) -> EngineFrame:
    pipeline = SqlPipeline()
    pipeline.extend(steps)
    frame = engine.run(pipeline)
    logger.info("link: %s has %d rows", frame.templated_name, frame.count())
    return frame
