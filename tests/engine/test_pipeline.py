"""SqlPipeline: CTE assembly and single use."""

from __future__ import annotations

import pytest

from distillwatch.engine import SqlPipeline


def test_one_step_is_its_own_sql():
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT 1 AS x", "__dw__a")
    assert pipeline.cte_sql() == "SELECT 1 AS x"


def test_steps_become_ctes_ending_in_the_last():
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT 1 AS x", "__dw__a")
    pipeline.enqueue("SELECT x + 1 AS y FROM __dw__a", "__dw__b")
    sql = pipeline.cte_sql()
    assert sql.startswith("WITH __dw__a AS (")
    assert sql.rstrip().endswith("SELECT * FROM __dw__b")
    assert pipeline.output == "__dw__b"


def test_a_used_pipeline_refuses_more_steps():
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT 1", "__dw__a")
    pipeline.mark_spent()
    with pytest.raises(ValueError, match="already been used"):
        pipeline.enqueue("SELECT 2", "__dw__b")
    with pytest.raises(ValueError, match="already been used"):
        pipeline.cte_sql()


def test_duplicate_and_empty():
    pipeline = SqlPipeline()
    with pytest.raises(ValueError, match="no steps"):
        _ = pipeline.output
    pipeline.enqueue("SELECT 1", "__dw__a")
    with pytest.raises(ValueError, match="already has a step named"):
        pipeline.enqueue("SELECT 2", "__dw__a")
