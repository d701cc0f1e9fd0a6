"""The link stage: tokens -> pairs -> edges -> clusters of accounts run by one operator."""

from __future__ import annotations

import logging

from distillwatch.engine import Engine, EngineFrame, SqlPipeline
from distillwatch.link.compared import pair_evidence
from distillwatch.link.components import connected_components
from distillwatch.link.pairs_sql import (
    EDGE_NUMBERS,
    EDGES,
    IDS,
    candidate_edge_sql,
    named_edge_sql,
    pair_sqls,
)
from distillwatch.link.support import supported_edges
from distillwatch.link.tokens_sql import SCAFFOLD_USE_SOURCES, token_sqls
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
    for steps in token_sqls(engine.dialect, settings):
        _run(engine, steps)
    for source in SCAFFOLD_USE_SOURCES:  # counted into __dw__link_scaffold_uses
        engine.drop(engine.frame(source))
    for steps in (*pairs.compared, pairs.buckets):
        _run(engine, steps)
    # The large tokens' evidence and the lockstep overlap of the compared pairs, on the
    # driver in chunks of pairs (link/compared.py).
    pair_evidence(engine)
    _run(engine, pairs.evidence)
    _run(engine, pairs.timing)
    frame = _run(engine, [candidate_edge_sql(settings)])
    accounts = engine.frame(IDS).count()
    engine.register(EDGE_NUMBERS, supported_edges(frame.to_arrow(), accounts,
                                                  settings.edge_min_support))
    _run(engine, [named_edge_sql()])
    return connected_components(engine, EDGES)


def _run(engine: Engine, steps: list) -> EngineFrame:
    pipeline = SqlPipeline()
    pipeline.extend(steps)
    frame = engine.run(pipeline)
    logger.info("link: %s has %d rows", frame.templated_name, frame.count())
    return frame
