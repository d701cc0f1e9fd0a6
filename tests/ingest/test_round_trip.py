"""A simulated world reads back whole, from JSONL.gz and from Parquet, with no rejects."""

from __future__ import annotations

import gzip
import json

from distillwatch.ingest.readers import read_exchanges
from distillwatch.ingest.rejects import RejectSink
from distillwatch.simulate.writer import ExchangeWriter


def test_world_jsonl_reads_back_without_rejects(ci_world, tmp_path):
    sink = RejectSink(tmp_path / "rejected.jsonl")
    stats, records = read_exchanges(ci_world / "exchanges.jsonl.gz", sink, seen=set())
    count = sum(1 for _ in records)
    labels = json.loads((ci_world / "labels.json").read_text())
    assert count == sum(a["exchanges"] for a in labels["accounts"].values())
    assert stats.rejected == 0 and sink.count == 0


def test_world_parquet_reads_back_without_rejects(ci_world, tmp_path):
    with gzip.open(ci_world / "exchanges.jsonl.gz", "rt") as handle:
        originals = [json.loads(next(handle)) for _ in range(3000)]
    writer = ExchangeWriter(tmp_path, "parquet", seed=1)
    for record in json.loads(json.dumps(originals)):
        writer.write(record)
    writer.close()
    sink = RejectSink(tmp_path / "rejected.jsonl")
    stats, records = read_exchanges(tmp_path / "exchanges", sink)
    back = list(records)
    assert stats.rejected == 0 and len(back) == 3000
    with_tools = next(r for r in back if r["request"]["tools"])
    assert isinstance(with_tools["request"]["tools"][0]["function"]["parameters"], dict)
