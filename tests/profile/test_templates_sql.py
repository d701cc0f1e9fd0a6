"""The template share per account: built in parts of the accounts, it equals one statement."""

from __future__ import annotations

import pytest
from tests.link.test_link_stage import TEMPLATE, bystanders, load, ring

from distillwatch.engine import SqlPipeline
from distillwatch.link.tokens_sql import scaffold_use_sqls
from distillwatch.profile.templates_sql import OUTPUT, shared_key_sqls, template_share_sqls


def shares(engine, parts: int) -> dict[str, float]:
    for steps in [*scaffold_use_sqls(engine.dialect), shared_key_sqls()]:
        engine.run(SqlPipeline.of(steps))
    frame = engine.run_parts(template_share_sqls(engine.dialect, parts))
    assert frame.templated_name == OUTPUT
    return {r["account_id"]: r["template_share"] for r in frame.to_pylist()}


def test_template_share_in_parts_equals_one_statement(engine):
    # A ring on one template (every exchange templated), bystanders on their own prompts, and
    # one account that uses the template in 4 of its 12 exchanges.
    half = ring("mixed", 1, ["192.0.2.9"], TEMPLATE, exchanges=4) + [
        {**row, "exchange_id": f"own-{i}", "band_keys": [10**12 + 16 * i + b for b in range(16)],
         "head_key": 10**12 + 16 * i, "tail_key": 10**13 + i}
        for i, row in enumerate(ring("mixed", 1, ["192.0.2.9"], TEMPLATE, exchanges=8))]
    load(engine, ring("ring", 5, ["198.51.100.7"], TEMPLATE) + bystanders() + half, [])
    whole = shares(engine, 1)
    assert whole["ring0"] == 1.0 and whole["user3"] == 0.0
    assert whole["mixed0"] == pytest.approx(4 / 12)
    for parts in (2, 5):
        assert shares(engine, parts) == whole
