"""SparkEngine: the primitives, the store layout and a small pipeline, against DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

pytest.importorskip("pyspark")

from distillwatch.engine import DuckDBEngine, SparkEngine, SqlPipeline, export_store  # noqa: E402
from distillwatch.engine.spark import spark_memory  # noqa: E402
from distillwatch.exceptions import DistillwatchEngineError, DistillwatchInputError  # noqa: E402
from distillwatch.ingest.accounts import ACCOUNTS_SCHEMA  # noqa: E402

START = datetime(2026, 4, 20, tzinfo=UTC)
FEATURES = pa.table({
    "exchange_id": [f"e{i}" for i in range(8)],
    "account_id": ["a", "a", "a", "b", "b", "c", "c", "c"],
    "ts": pa.array([START + timedelta(hours=5 * i, microseconds=i) for i in range(8)],
                   pa.timestamp("us", tz="UTC")),
    "client_ip": ["10.0.0.1", "10.0.0.2", "10.0.1.9", "2001:db8::1", None, "10.0.0.7",
                  "10.0.0.7", "192.168.3.4"],
    "tokens": pa.array([10, 20, 5, 1, 2, 3, None, 7], pa.int64()),
    "cot": [True, False, True, None, True, False, False, True],
    "band_keys": pa.array([[1, 2], [2, 3], [], [4], None, [1], [1, 5], [9, 9]],
                          pa.list_(pa.int64())),
})
ACCOUNTS = pa.Table.from_pylist([
    {"account_id": "a", "created_at": START - timedelta(days=3), "signup_channel": "education",
     "verified": False, "payment_fingerprint": "pf-1"},
    {"account_id": "b", "created_at": START, "verified": True},
], schema=ACCOUNTS_SCHEMA)


def _duckdb_store(path=":memory:", accounts: bool = True) -> DuckDBEngine:
    duck = DuckDBEngine(path)
    duck.register("__dw__in_features", FEATURES)
    duck.execute("CREATE TABLE features AS SELECT * FROM __dw__in_features")
    if accounts:
        duck.register("__dw__in_accounts", ACCOUNTS)
        duck.execute("CREATE TABLE accounts AS SELECT * FROM __dw__in_accounts")
    duck.drop_all()
    return duck


@pytest.fixture
def engines(spark_session, tmp_path):
    """(DuckDB engine, Spark engine) over the same store."""
    duck = _duckdb_store()
    spark = SparkEngine(export_store(duck, tmp_path / "store"), spark=spark_session)
    yield duck, spark
    spark.close()
    duck.close()


def _rows(table: pa.Table, *keys: str) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: tuple((r[k] is None, r[k] or 0) for k in keys))


def test_store_tables_read_back_as_duckdb_holds_them(engines):
    duck, spark = engines
    assert {"features", "accounts"} <= spark.table_names()
    for table, key in (("features", "exchange_id"), ("accounts", "account_id")):
        ours = spark.fetch_arrow(f"SELECT * FROM {table}")
        theirs = duck.fetch_arrow(f"SELECT * FROM {table}")
        assert ours.column_names == theirs.column_names
        assert _rows(ours, key) == _rows(theirs, key)
    assert spark.fetch_arrow("SELECT ts FROM features").schema.field("ts").type == \
        pa.timestamp("us", tz="UTC")


def test_registered_arrow_round_trips(engines):
    _, spark = engines
    frame = spark.register("__dw__incoming", FEATURES)
    assert frame.physical_name.startswith("__dw__incoming_")
    back = spark.fetch_arrow("SELECT * FROM __dw__incoming")
    assert _rows(back, "exchange_id") == _rows(FEATURES, "exchange_id")
    assert frame.count() == FEATURES.num_rows
    empty = spark.register("__dw__empty", ACCOUNTS.schema.empty_table())
    assert empty.count() == 0
    assert spark.fetch_arrow("SELECT * FROM __dw__empty").column_names == ACCOUNTS.column_names


def _portable_pipeline(engine) -> SqlPipeline:
    """Steps that use every dialect function and the portable forms of stage SQL."""
    d = engine.dialect
    pipeline = SqlPipeline()
    pipeline.enqueue(f"""
SELECT account_id, exchange_id, {d.epoch_seconds('ts')} AS epoch_s,
       CAST(floor({d.epoch_seconds('ts')} / 86400) AS BIGINT) AS day,
       concat('t', CAST(tokens AS {d.string_type})) AS token,
       {d.epoch_seconds('ts')} - lag({d.epoch_seconds('ts')})
           OVER (PARTITION BY account_id ORDER BY ts, exchange_id) AS gap_s,
       cot, tokens
FROM features
WHERE ts < {d.timestamp_literal((START + timedelta(hours=26)).isoformat())}
""", "__dw__t_exchanges")
    pipeline.enqueue(f"""
SELECT account_id, count(*) AS exchanges,
       avg(CASE WHEN cot THEN 1 ELSE 0 END) AS cot_rate,
       avg(gap_s) AS mean_gap_s,
       stddev_pop(gap_s) / nullif(avg(gap_s), 0) AS gap_cv,
       {d.median('tokens')} AS median_tokens, min(token) AS first_token
FROM __dw__t_exchanges GROUP BY account_id
""", "__dw__t_accounts")
    pipeline.enqueue(f"""
SELECT a.*, k.keys, p.created_days
FROM __dw__t_accounts a
LEFT JOIN (SELECT account_id, count(DISTINCT key) AS keys
           FROM (SELECT account_id, {d.explode('band_keys')} AS key FROM features)
           GROUP BY account_id) k ON k.account_id = a.account_id
LEFT JOIN (SELECT account_id,
                  (SELECT min({d.epoch_seconds('ts')}) FROM features)
                  - {d.epoch_seconds('created_at')} AS created_days
           FROM accounts) p ON p.account_id = a.account_id
""", "__dw__t_result")
    return pipeline


@pytest.mark.parametrize("debug_mode", [False, True], ids=["ctes", "step_by_step"])
def test_a_pipeline_gives_the_same_arrow_as_duckdb(engines, debug_mode):
    duck, spark = engines
    spark.debug_mode = duck.debug_mode = debug_mode
    ours = spark.run(_portable_pipeline(spark)).to_arrow()
    theirs = duck.run(_portable_pipeline(duck)).to_arrow()
    assert ours.column_names == theirs.column_names
    assert ours.num_rows == theirs.num_rows == 3
    for mine, other in zip(_rows(ours, "account_id"), _rows(theirs, "account_id"), strict=True):
        assert mine.keys() == other.keys()
        for name, value in mine.items():
            if isinstance(value, float):
                assert value == pytest.approx(float(other[name]), rel=1e-12, abs=1e-12), name
            else:
                assert value == other[name], name


def test_rerunning_a_step_replaces_its_table(engines):
    _, spark = engines
    first = spark.run(_portable_pipeline(spark))
    second = spark.run(_portable_pipeline(spark))
    assert spark.frame("__dw__t_result") is second
    names = spark.table_names()
    assert second.physical_name in names and first.physical_name not in names


def test_views_tables_and_registered_data_are_listed_then_dropped(engines):
    _, spark = engines
    view = SqlPipeline()
    view.enqueue("SELECT * FROM features WHERE tokens > 4", "__dw__t_view")
    view_frame = spark.run(view, materialise=False)
    table = SqlPipeline()
    table.enqueue("SELECT account_id, count(*) AS n FROM __dw__t_view GROUP BY account_id",
                  "__dw__t_table")
    table_frame = spark.run(table)
    registered = spark.register("__dw__t_registered", FEATURES)
    assert view_frame.is_view and not table_frame.is_view
    assert table_frame.count() == 2
    names = spark.table_names()
    assert {view_frame.physical_name, table_frame.physical_name,
            registered.physical_name} <= names
    spark.drop_all()
    assert spark.table_names() == {"features", "accounts"}


def test_leftovers_of_an_interrupted_run_are_dropped(engines):
    _, spark = engines
    spark.execute("CREATE TABLE __dw__old_0123456789 USING parquet AS SELECT 1 AS x")
    kept = spark.register("__dw__kept", FEATURES)
    assert spark.drop_leftovers() == 1
    assert spark.table_names() == {"features", "accounts", kept.physical_name}


def test_failures_carry_the_sql_and_the_table(engines):
    _, spark = engines
    pipeline = SqlPipeline()
    pipeline.enqueue("SELECT nope FROM nowhere_at_all", "__dw__broken")
    with pytest.raises(DistillwatchEngineError, match="nowhere_at_all") as error:
        spark.run(pipeline)
    assert "__dw__broken" in str(error.value)


def test_a_bad_cast_raises_as_on_duckdb(engines):
    # ANSI mode: without it Spark would return NULL and a score would change quietly.
    for engine in engines:
        with pytest.raises(DistillwatchEngineError, match="exchange_id"):
            engine.fetch_arrow("SELECT CAST(exchange_id AS INTEGER) AS x FROM features")


def test_close_removes_what_the_engine_made_and_keeps_the_session(spark_session, tmp_path):
    duck = _duckdb_store(accounts=False)
    store = export_store(duck, tmp_path / "store")
    duck.close()
    engine = SparkEngine(store, spark=spark_session)
    assert "accounts" not in engine.table_names()
    database = engine._database
    engine.register("__dw__x", FEATURES)
    engine.close()
    engine.close()
    assert spark_session.sql("SELECT 1 AS one").collect()[0]["one"] == 1
    databases = {row[0] for row in spark_session.sql("SHOW DATABASES").collect()}
    assert database not in databases
    assert not [t for t in spark_session.catalog.listTables() if t.isTemporary]


def test_a_store_without_features_is_refused(spark_session, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistillwatchInputError, match="no 'features/' Parquet folder"):
        SparkEngine(tmp_path / "empty", spark=spark_session)


def test_export_refuses_to_mix_with_an_earlier_export(tmp_path):
    duck = _duckdb_store()
    export_store(duck, tmp_path / "store")
    with pytest.raises(DistillwatchInputError, match="overwrite=True"):
        export_store(duck, tmp_path / "store")
    export_store(duck, tmp_path / "store", overwrite=True)
    assert [p.name for p in (tmp_path / "store" / "features").iterdir()] == \
        ["features.parquet"]
    with pytest.raises(DistillwatchInputError, match="no 'features' table"):
        export_store(DuckDBEngine(), tmp_path / "other")


@pytest.mark.parametrize("limit, expected", [
    ("4GB", "4096m"), ("512MB", "512m"), ("1.5GB", "1536m"), ("2g", "2048m"),
    ("1TiB", "1048576m"),
])
def test_memory_limits_are_written_as_spark_reads_them(limit, expected):
    assert spark_memory(limit) == expected


def test_an_unreadable_memory_limit_is_an_error():
    from distillwatch.exceptions import DistillwatchConfigError

    with pytest.raises(DistillwatchConfigError, match="'lots'"):
        spark_memory("lots")


def test_a_sink_collects_chunks_into_one_table(engines):
    _, spark = engines
    schema = pa.schema([("exchange_id", pa.string()), ("account_id", pa.string())])
    assert not spark.appends_in_place
    with spark.sink("__dw__sunk", schema) as out:
        for start in range(0, FEATURES.num_rows, 2):
            out.write(FEATURES.slice(start, 2))
    assert out.rows == FEATURES.num_rows
    back = spark.fetch_arrow("SELECT * FROM __dw__sunk")
    assert back.schema == schema
    assert _rows(back, "exchange_id") == _rows(FEATURES.select(schema.names), "exchange_id")
