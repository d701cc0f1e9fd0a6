"""The scaffold-key counts and the template share per account: built in parts of the accounts,
each equals one statement."""

from __future__ import annotations

import pytest
from tests.link.test_link_stage import TEMPLATE, bystanders, load, ring

from distillwatch.engine import SqlPipeline
from distillwatch.link.tokens_sql import SCAFFOLD_USES, scaffold_use_sqls
from distillwatch.profile.templates_sql import OUTPUT, shared_key_sqls, template_share_sqls


def uses(engine, parts: int) -> list[tuple]:
    frame = engine.run_parts(scaffold_use_sqls(engine.dialect, parts))
    assert frame.templated_name == SCAFFOLD_USES
    return sorted((r["account_id"], r["key"], r["uses"], r["templated"])
                  for r in frame.to_pylist())


def shares(engine, parts: int) -> dict[str, float]:
    uses(engine, 1)
    engine.run(SqlPipeline.of(shared_key_sqls()))
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


def test_scaffold_uses_in_parts_equal_one_statement(engine):
    # A key carried as a band and as the head counts once per exchange of each; a system
    # prompt hash is counted but is no frame key (templated 0).
    rows = [{**row, "system_hash": 77} for row in ring("ring", 4, ["198.51.100.7"], TEMPLATE)]
    load(engine, rows + bystanders(), [])
    whole = uses(engine, 1)
    ring0 = {key: (count, templated) for account, key, count, templated in whole
             if account == "ring0"}
    assert ring0[TEMPLATE[0]] == (24, 1)  # 12 exchanges, as band and as head key
    assert ring0[TEMPLATE[1]] == (12, 1)
    assert ring0[77] == (12, 0)
    assert len({(account, key) for account, key, _, _ in whole}) == len(whole)
    for parts in (2, 3):
        assert uses(engine, parts) == whole
