"""Ingest on Spark (mapInArrow) stores exactly what the DuckDB ingest stores, rejects included."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

from distillwatch.engine import DuckDBEngine  # noqa: E402
from distillwatch.fingerprint.features import FEATURES_SCHEMA  # noqa: E402
from distillwatch.ingest.rejects import RejectSink  # noqa: E402
from distillwatch.ingest.spark_ingest import ingest_parquet  # noqa: E402
from distillwatch.ingest.store import ingest  # noqa: E402
from distillwatch.io.arrow_layout import to_arrow  # noqa: E402

KEY = b"spark-ingest-test-key"


@pytest.fixture(scope="module")
def parquet_logs(corpus, tmp_path_factory):
    """The ci world as Parquet parts, plus a part of bad and repeated records."""
    from distillwatch.simulate.presets import load_preset
    from distillwatch.simulate.simulator import simulate

    world = tmp_path_factory.mktemp("ci-parquet")
    simulate(load_preset("ci"), 2, world, corpus, fmt="parquet")
    parts = world / "exchanges"
    first = pq.read_table(sorted(parts.glob("part-*.parquet"))[0]).slice(0, 3).to_pylist()
    good = {**first[0], "exchange_id": "extra-1"}
    bad = [
        {**first[1], "account_id": None},                       # missing account
        {**first[2], "timestamp": "2026-04-20T10:00:00"},        # no UTC offset
        {**first[0], "request": {**first[0]["request"], "messages": []}},
        good, {**good, "model": "repeat"},                        # the same id twice
        first[1],                                                 # stored from part 0
    ]
    pq.write_table(to_arrow(bad), parts / "part-99999.parquet")
    return parts


def _rejects(path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.open()]
    return sorted((r["location"], r["reason"]) for r in rows)


def test_spark_ingest_equals_duckdb_ingest(parquet_logs, spark_session, tmp_path):
    duck = DuckDBEngine(tmp_path / "store.duckdb")
    duck_report = ingest(duck, [parquet_logs], RejectSink(tmp_path / "duck.jsonl"), KEY)
    expected = duck.fetch_arrow("SELECT * FROM features").sort_by("exchange_id")
    duck.close()

    store = str(tmp_path / "spark-store")
    spark_sink = RejectSink(tmp_path / "spark.jsonl")
    spark_report = ingest_parquet(spark_session, [str(parquet_logs)], store, KEY, spark_sink)
    spark_sink.close()
    got = pa.Table.from_batches(
        spark_session.read.parquet(f"{store}/features").toArrow().to_batches()
    ).select(FEATURES_SCHEMA.names).cast(FEATURES_SCHEMA).sort_by("exchange_id")

    assert got.num_rows == expected.num_rows == duck_report.stored == spark_report.stored
    assert got.equals(expected.cast(FEATURES_SCHEMA))
    assert _rejects(tmp_path / "spark.jsonl") == _rejects(tmp_path / "duck.jsonl")
    reasons = " ".join(reason for _, reason in _rejects(tmp_path / "spark.jsonl"))
    assert "account_id" in reasons and "UTC offset" in reasons and "duplicate" in reasons
    # A second run stores nothing new.
    again = ingest_parquet(spark_session, [str(parquet_logs)], store, KEY,
                           RejectSink(tmp_path / "again.jsonl"))
    assert again.stored == 0
    assert spark_session.read.parquet(f"{store}/features").count() == expected.num_rows


def test_scan_on_spark_writes_what_the_duckdb_scan_writes(parquet_logs, spark_session, tmp_path):
    from distillwatch.cli.scan import run_scan

    world = parquet_logs.parent
    inputs = [parquet_logs, world / "accounts.jsonl"]
    run_scan(inputs, tmp_path / "duck")
    run_scan([str(parquet_logs), str(world / "accounts.jsonl")], tmp_path / "spark",
             engine="spark", spark_master="local[2]")

    def outcome(out):
        document = json.loads((out / "campaigns.json").read_text())
        accounts = {}
        for line in (out / "accounts.jsonl").open():
            row = json.loads(line)
            accounts[row["account_id"]] = (row["score"], row["decision"])
        return ({c["campaign_id"]: sorted(c["accounts"]) for c in document["campaigns"]},
                accounts, document["totals"])

    duck, spark = outcome(tmp_path / "duck"), outcome(tmp_path / "spark")
    assert duck[0] and duck == spark
    assert _rejects(tmp_path / "spark" / "rejected.jsonl") == \
        _rejects(tmp_path / "duck" / "rejected.jsonl")
    assert json.loads((tmp_path / "spark" / "campaigns.json").read_text())["engine"] == "spark"
