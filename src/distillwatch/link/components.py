"""Connected components as an iterative relational algorithm (the same SQL on every engine).

Every node starts with its own id as label; each round, a node takes the smallest label among
itself and its neighbours, then follows its label's label (pointer jumping, which shortens
long chains). When a round changes nothing, each label is the smallest node id of the
component.
"""

from __future__ import annotations

import logging

from distillwatch.engine import Engine, EngineFrame, SqlPipeline
from distillwatch.exceptions import DistillwatchEngineError

logger = logging.getLogger(__name__)
OUTPUT = "__dw__link_components"
MAX_ROUNDS = 200


def connected_components(engine: Engine, edges: str, max_rounds: int = MAX_ROUNDS
                         ) -> EngineFrame:
    """Component labels for every node of an undirected edge table.

    Args:
        engine: Holds ``edges``.
        edges: Templated name of a table with string columns ``a`` and ``b`` (one row an edge).
        max_rounds: Give up after this many rounds.

    Returns:
        ``__dw__link_components`` with columns ``node`` and ``component`` (the smallest node id
        of its component).

    Raises:
        DistillwatchEngineError: If the labels have not settled after ``max_rounds`` rounds.
    """
    start = SqlPipeline()
    start.enqueue(f"SELECT a AS x, b AS y FROM {edges} UNION SELECT b AS x, a AS y FROM {edges}",
                  "__dw__link_neighbours")
    engine.run(start)
    labels = SqlPipeline()
    labels.enqueue("SELECT DISTINCT x AS node, x AS component FROM __dw__link_neighbours",
                   "__dw__link_labels")
    engine.run(labels)
    for round_number in range(1, max_rounds + 1):
        step = SqlPipeline()
        step.enqueue(
            """
SELECT l.node, least(l.component, coalesce(min(nl.component), l.component)) AS component
FROM __dw__link_labels l
LEFT JOIN __dw__link_neighbours e ON e.x = l.node
LEFT JOIN __dw__link_labels nl ON nl.node = e.y
GROUP BY l.node, l.component
""", "__dw__link_propagated")
        step.enqueue(
            """
SELECT p.node, least(p.component, coalesce(j.component, p.component)) AS component
FROM __dw__link_propagated p
LEFT JOIN __dw__link_propagated j ON j.node = p.component
""", "__dw__link_jumped")
        new = engine.run(step)
        changed = engine.fetch_arrow(
            "SELECT count(*) AS n FROM __dw__link_jumped j JOIN __dw__link_labels l "
            "ON j.node = l.node WHERE j.component <> l.component").column("n")[0].as_py()
        rename = SqlPipeline()
        rename.enqueue("SELECT * FROM __dw__link_jumped", "__dw__link_labels")
        engine.run(rename)
        engine.drop(new)
        logger.debug("connected components: round %d changed %d labels", round_number, changed)
        if changed == 0:
            result = SqlPipeline()
            result.enqueue("SELECT node, component FROM __dw__link_labels", OUTPUT)
            frame = engine.run(result)
            engine.drop(engine.frame("__dw__link_labels"))
            engine.drop(engine.frame("__dw__link_neighbours"))
            return frame
    raise DistillwatchEngineError(
        f"Connected components did not settle in {max_rounds} rounds; raise max_rounds")
