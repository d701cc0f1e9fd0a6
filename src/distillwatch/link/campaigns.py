"""The link stage: tokens -> pairs -> edges -> clusters of accounts run by one operator."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from distillwatch.engine import Engine, EngineFrame, SqlPipeline
from distillwatch.link.compared import pair_evidence
from distillwatch.link.components import OUTPUT as COMPONENTS
from distillwatch.link.edges import account_numbers, named_components, support_edges
from distillwatch.link.pairs_sql import (
    EDGE_NUMBERS,
    EDGES,
    IDS,
    PAIRS,
    PairSteps,
    candidate_edge_sql,
    named_edge_sql,
    pair_sqls,
)
from distillwatch.link.tokens_sql import FEATURES, PART_EXCHANGES, scaffold_use_sqls, token_sqls
from distillwatch.link.tokens_sql import OUTPUT as TOKENS
from distillwatch.settings import LinkSettings

logger = logging.getLogger(__name__)
PREFIX = "__dw__link_"


def link_accounts(engine: Engine, settings: LinkSettings,
                  disabled_families: tuple[str, ...] = (),
                  keep_intermediate: bool = False,
                  on_scaffold_uses: Callable[[], None] | None = None) -> EngineFrame:
    """Cluster the accounts of ``__dw__features`` / ``__dw__accounts``.

    Leaves in the engine ``__dw__link_tokens``, ``__dw__link_ids`` and ``__dw__link_pairs``
    (the score stage's evidence), ``__dw__link_edge_numbers`` (its campaign split:
    ``link.edges.components_within``) and ``__dw__link_edges`` (the kept edges by account
    id, for inspection).

    Args:
        engine: Holds the scan's features and accounts.
        settings: Link settings.
        disabled_families: Families of evidence to ignore (ablation studies).
        keep_intermediate: Keep every intermediate table of the stage for inspection (by
            default each is dropped once read: on 31.6M exchanges of `stress` they were
            hundreds of millions of rows, spilled to disk by DuckDB beyond its memory limit).
        on_scaffold_uses: Called once the per-account counts of scaffold keys
            (``SCAFFOLD_USES``) exist, before they are dropped: the template share
            counts its shared keys from them instead of exploding every exchange's keys again.

    Returns:
        ``__dw__link_components`` (node, component) for every account with an edge.
    """
    def tidy(*keep: str) -> None:
        if not keep_intermediate:
            engine.drop_held(PREFIX, keep=(*keep, COMPONENTS))

    pairs = pair_sqls(engine.dialect, settings, disabled_families,
                      clustered=engine.appends_in_place)
    exchanges = engine.frame(FEATURES).count()
    uses = engine.run_parts(scaffold_use_sqls(engine.dialect,
                                              engine.parts_for(exchanges, PART_EXCHANGES),
                                              settings.scaffold_min_prompt_chars))
    logger.info("link: %s has %d rows", uses.templated_name, uses.count())
    for steps in token_sqls(engine.dialect, settings):
        _run(engine, steps)
    if on_scaffold_uses is not None:
        on_scaffold_uses()
    tidy(TOKENS)
    for steps in (*pairs.compared, *pairs.buckets):
        _run(engine, steps)
    # The large tokens' evidence and the lockstep overlap of the compared pairs, on the
    # driver in chunks of pairs (link/compared.py), then the pairs' evidence in SQL over the
    # same ranges of pairs where the engine appends in place (one aggregation elsewhere).
    _pairs_by_range(engine, pairs, pair_evidence(engine))
    tidy(TOKENS, IDS, PAIRS)
    _run(engine, [candidate_edge_sql(settings)])
    nodes, labels = support_edges(engine, engine.frame(IDS).count(),
                                  settings.edge_min_support)
    _run(engine, [named_edge_sql()])
    tidy(TOKENS, IDS, PAIRS, EDGES, EDGE_NUMBERS)
    return _components(engine, nodes, labels)


def _components(engine: Engine, nodes: np.ndarray, labels: np.ndarray) -> EngineFrame:
    """``__dw__link_components`` (node, component: the smallest account id of its
    component), from the components counted on the driver by number (``link.edges``): the
    relational version (``link.components``) joined 81M directed edges of id strings a
    round and spilled tens of GB on 31.6M exchanges of `stress`."""
    frame = engine.register(COMPONENTS, named_components(account_numbers(engine), nodes,
                                                         labels))
    logger.info("link: %s has %d rows", COMPONENTS, frame.count())
    return frame


def _pairs_by_range(engine: Engine, pairs: PairSteps, bounds: list[tuple[int, int]]
                    ) -> EngineFrame:
    """``__dw__link_pairs``, built range by range of the pairs' first account where the
    engine appends in place, in one statement elsewhere."""
    began = time.monotonic()
    if not bounds:
        ranges = [(0, 0)]
    elif engine.appends_in_place:
        ranges = bounds
    else:
        ranges = [(bounds[0][0], bounds[-1][1])]
    frame = engine.run_parts([pairs.evidence(first, stop) for first, stop in ranges])
    logger.info("link: %s has %d rows (%d ranges, %.0f s)", PAIRS, frame.count(),
                len(ranges), time.monotonic() - began)
    return frame


def _run(engine: Engine, steps: list) -> EngineFrame:
    frame = engine.run(SqlPipeline.of(steps))
    logger.info("link: %s has %d rows", frame.templated_name, frame.count())
    return frame
