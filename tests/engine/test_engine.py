"""Engines: run pipelines over registered Arrow data, resolve names, wrap errors."""

from __future__ import annotations

import pyarrow as pa
import pytest

from distillwatch.engine import Dialect, SqlPipeline
from distillwatch.exceptions import DistillwatchConfigError, DistillwatchEngineError

EXCHANGES = pa.table({"account_id": ["a", "a", "b", "c", "c", "c"],
                      "tokens": [10, 20, 5, 1, 2, 3]})


def _per_account(engine) -> None:
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT account_id, sum(tokens) AS tokens, count(*) AS n "
                     "FROM __dw__exchanges GROUP BY account_id", "__dw__per_account")
    pipeline.enqueue("SELECT * FROM __dw__per_account WHERE n > 1", "__dw__busy")
    return engine.run(pipeline)


def test_pipeline_over_registered_arrow(engine):
    engine.register("__dw__exchanges", EXCHANGES)
    busy = _per_account(engine)
    rows = sorted(busy.to_pylist(), key=lambda r: r["account_id"])
    assert rows == [{"account_id": "a", "tokens": 30, "n": 2},
                    {"account_id": "c", "tokens": 6, "n": 3}]
    assert busy.templated_name == "__dw__busy"
    assert busy.physical_name.startswith("__dw__busy_")


def test_later_pipelines_read_earlier_results_by_templated_name(engine):
    engine.register("__dw__exchanges", EXCHANGES)
    _per_account(engine)
    follow = SqlPipeline()
    follow.enqueue("SELECT count(*) AS accounts FROM __dw__busy", "__dw__busy_count")
    assert engine.run(follow).to_pylist() == [{"accounts": 2}]


def test_debug_mode_materialises_every_step(engine):
    engine.debug_mode = True
    engine.register("__dw__exchanges", EXCHANGES)
    _per_account(engine)
    assert engine.frame("__dw__per_account").count() == 3
    assert engine.frame("__dw__busy").count() == 2


def test_rerunning_a_step_replaces_its_table(engine):
    engine.register("__dw__exchanges", EXCHANGES)
    first = _per_account(engine)
    second = _per_account(engine)
    assert first.physical_name != second.physical_name
    assert engine.frame("__dw__busy") is second
    tables = engine.fetch_arrow("SELECT table_name FROM information_schema.tables")
    assert first.physical_name not in tables.column("table_name").to_pylist()


def test_failures_carry_the_sql_and_the_table(engine):
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT nope FROM nowhere_at_all", "__dw__broken")
    with pytest.raises(DistillwatchEngineError, match="nowhere_at_all") as error:
        engine.run(pipeline)
    assert "__dw__broken" in str(error.value)


def test_drop_all_removes_intermediate_tables_only(engine):
    engine.execute("CREATE TABLE durable AS SELECT 1 AS x")
    engine.adopt("durable")
    engine.register("__dw__exchanges", EXCHANGES)
    _per_account(engine)
    engine.drop_all()
    names = engine.fetch_arrow("SELECT table_name FROM information_schema.tables"
                               ).column("table_name").to_pylist()
    assert names == ["durable"]


def test_unknown_frame_and_dialect():
    from distillwatch.engine import DuckDBEngine

    with pytest.raises(DistillwatchEngineError, match="No table '__dw__x'"):
        DuckDBEngine().frame("__dw__x")
    with pytest.raises(DistillwatchConfigError, match="Dialect 'oracle' not found"):
        Dialect.from_string("oracle")


TIMESTAMP = "TIMESTAMPTZ '2026-04-20 00:00:00.5+00'"


@pytest.mark.parametrize("make_sql, expected", [
    (lambda d: f"SELECT {d.epoch_seconds(TIMESTAMP)} AS v", 1776643200.5),
    (lambda d: f"SELECT {d.array_length('[1, 2, 3]')} AS v", 3),
    (lambda d: f"SELECT {d.median('x')} AS v FROM (VALUES (1), (2), (3)) t(x)", 2.0),
], ids=["epoch_seconds", "array_length", "median"])
def test_dialect_functions_give_the_expected_answer(engine, make_sql, expected):
    value = engine.fetch_arrow(make_sql(engine.dialect)).column("v")[0].as_py()
    assert value == pytest.approx(expected)


SINK_SCHEMA = pa.schema([("account_id", pa.string()), ("tokens", pa.int64())])


def test_a_sink_writes_chunks_into_one_table(engine):
    with engine.sink("__dw__sunk", SINK_SCHEMA) as out:
        # In place, the table exists (empty) before the first chunk.
        assert engine.frame("__dw__sunk").count() == 0
        for start in range(0, EXCHANGES.num_rows, 4):
            # Columns are taken by name, and cast to the sink's types.
            chunk = EXCHANGES.slice(start, 4).select(["tokens", "account_id"])
            out.write(chunk.cast(pa.schema([("tokens", pa.int32()),
                                            ("account_id", pa.string())])))
        out.write(EXCHANGES.slice(0, 0))
    assert out.rows == EXCHANGES.num_rows
    held = engine.fetch_arrow("SELECT * FROM __dw__sunk ORDER BY account_id, tokens")
    assert held.schema == SINK_SCHEMA
    assert held.equals(EXCHANGES.sort_by([("account_id", "ascending"),
                                          ("tokens", "ascending")]))


def test_an_empty_sink_gives_an_empty_table_of_its_schema(engine):
    with engine.sink("__dw__nothing", SINK_SCHEMA):
        pass
    assert engine.fetch_arrow("SELECT * FROM __dw__nothing").schema == SINK_SCHEMA


def _limit(engine) -> int:
    from distillwatch.engine.duckdb import size_bytes

    return size_bytes(engine.connection.execute(
        "SELECT current_setting('memory_limit')").fetchall()[0][0])


@pytest.mark.parametrize("text, expected", [
    ("5GB", 5_000_000_000), ("512MB", 512_000_000), ("4.6 GiB", int(4.6 * 2**30)),
    ("1000B", 1000), ("2 TiB", 2 * 2**40), ("lots", None), ("5 parsecs", None)])
def test_sizes_are_read_in_duckdbs_units(text, expected):
    from distillwatch.engine.duckdb import size_bytes

    assert size_bytes(text) == expected


def test_duckdb_lends_memory_to_the_driver_and_takes_it_back(tmp_path):
    # A held table larger than the lowered limit is written out and read back whole.
    from distillwatch.engine import DuckDBEngine

    engine = DuckDBEngine(tmp_path / "lend.duckdb", memory_limit="400MB")
    try:
        engine.execute("CREATE TEMP TABLE held AS SELECT range AS n, md5(CAST(range AS VARCHAR))"
                       " AS h FROM range(3000000)")
        assert engine.memory_limit == 400_000_000
        with engine.lend_memory(150_000_000):
            assert 240_000_000 < _limit(engine) < 260_000_000
        assert 390_000_000 < _limit(engine) < 410_000_000
        with engine.lend_memory(10**12):  # never below half the limit
            assert 190_000_000 < _limit(engine) < 210_000_000
        assert engine.fetch_arrow("SELECT count(DISTINCT h) AS n FROM held").to_pylist() == \
            [{"n": 3000000}]
    finally:
        engine.close()
