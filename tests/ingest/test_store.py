"""Ingest into the engine's store: everything valid stored once, re-ingest adds nothing."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_a_parquet_dataset_that_grows_is_read_again_for_its_new_parts_only(engine, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (_logs(tmp_path) / "day1.jsonl").read_text()
            .splitlines()[:50]]
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for part in range(2):
        pq.write_table(pa.Table.from_pylist(rows[part * 20:(part + 1) * 20]),
                       dataset / f"part-{part:05d}.parquet")
    sink = RejectSink(tmp_path / "rejected.jsonl")
    first = ingest(engine, [dataset], sink, b"k")
    assert first.stored == 40 and first.rejected == 0
    # The new part also holds a row whose request is text, not an object: rejected, named.
    bad = {**rows[0], "exchange_id": "ex-text", "request": json.dumps(rows[0]["request"])}
    pq.write_table(pa.Table.from_pylist(rows[40:]), dataset / "part-00002.parquet")
    pq.write_table(pa.Table.from_pylist([bad]), dataset / "part-00003.parquet")
    again = ingest(engine, [dataset], sink, b"k")
    sink.close()
    assert again.stored == 10 and again.already_stored == 40 and again.rejected == 1
    (reject,) = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text()
                 .splitlines()]
    assert reject["source"].endswith("part-00003.parquet") and "request" in reject["reason"]
    read = {Path(f.source).name: (f.skipped, f.read) for f in again.files}
    assert read == {"part-00000.parquet": (True, 20), "part-00001.parquet": (True, 20),
                    "part-00002.parquet": (False, 10), "part-00003.parquet": (False, 1)}


def test_workers_run_the_chunks_of_several_files_at_once(tmp_path):
    # A dataset of one-chunk parts: the workers take the next parts while the first is still
    # being fingerprinted, and each part's end marker comes after its chunk.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillwatch.ingest.batches import Task
    from distillwatch.ingest.store import _Runner

    rows = [json.loads(line) for line in (_logs(tmp_path) / "day1.jsonl").read_text()
            .splitlines()[:50]]
    parts = []
    for part in range(4):
        path = tmp_path / f"part-{part:05d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows[part * 10:(part + 1) * 10]), path)
        parts.append(path)
    yielded, pulled_before = [], {}

    def items():
        for path in parts:
            pulled_before[path.name] = len(yielded)
            yield path.name, Task(str(path), "parquet", row_group=0)
            yield ("end", path.name), None

    runner = _Runner(b"k", 2)
    try:
        for tag, outcome in runner.map(items()):
            yielded.append((tag, None if outcome is None else outcome.features.num_rows))
    finally:
        runner.close()
    assert yielded == [item for path in parts
                       for item in ((path.name, 10), (("end", path.name), None))]
    # The second part was handed to a worker before the first part's result was taken.
    assert pulled_before["part-00001.parquet"] == 0
