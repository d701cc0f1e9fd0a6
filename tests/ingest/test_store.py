"""Ingest into the engine's store: everything valid stored once, re-ingest adds nothing."""

from __future__ import annotations

import json

from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.store import FEATURES_TABLE, ingest


def _logs(tmp_path):
    rows = [{"exchange_id": f"ex-{i}", "timestamp": f"2026-04-20T08:{i:02d}:00Z",
             "account_id": f"acct-{i % 3}", "model": "m",
             "request": {"messages": [{"role": "user", "content": f"Solve {i} step by step"}]}}
            for i in range(50)]
    path = tmp_path / "logs" / "day1.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    return path.parent


def test_ingest_stores_valid_exchanges_once(engine, tmp_path):
    logs = _logs(tmp_path)
    sink = RejectSink(tmp_path / "rejected.jsonl")
    first = ingest(engine, [logs], sink, b"k", batch_size=16)
    assert first.stored == 50 and first.rejected == 1
    again = ingest(engine, [logs], sink, b"k", batch_size=16)
    assert again.stored == 0 and again.already_stored == 50
    stored = engine.fetch_arrow(f"SELECT count(*) AS n, count(DISTINCT exchange_id) AS ids, "
                                f"sum(CASE WHEN cot THEN 1 ELSE 0 END) AS cot "
                                f"FROM {FEATURES_TABLE}").to_pylist()[0]
    assert stored == {"n": 50, "ids": 50, "cot": 50}


def test_the_store_survives_reopening(tmp_path):
    from distillwatch.engine import DuckDBEngine

    logs = _logs(tmp_path)
    path = tmp_path / "store.duckdb"
    first = DuckDBEngine(path)
    ingest(first, [logs], RejectSink(tmp_path / "r.jsonl"), b"k")
    first.close()
    second = DuckDBEngine(path)
    report = ingest(second, [logs], RejectSink(tmp_path / "r.jsonl"), b"k")
    assert report.stored == 0 and report.already_stored == 50
    second.close()
