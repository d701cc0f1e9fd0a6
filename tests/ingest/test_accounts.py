"""Account files in three formats: checked, bad rows rejected, later rows replace earlier."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwatch.ingest.accounts import read_accounts, store_accounts
from distillwatch.ingest.rejects import RejectSink

GOOD = {"account_id": "a1", "created_at": "2026-03-01T10:00:00Z", "signup_channel":
        "education", "verified": False, "payment_fingerprint": "pf-1", "crm_segment": "smb"}


def _write(tmp_path, fmt, rows):
    path = tmp_path / f"accounts.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "csv":
        keys = sorted({k for r in rows for k in r})

        def cell(value) -> str:
            if value is None:
                return ""
            return str(value).lower() if isinstance(value, bool) else str(value)

        lines = [",".join(keys)] + [",".join(cell(r.get(k)) for k in keys) for r in rows]
        path.write_text("\n".join(lines) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_formats_give_the_same_accounts(tmp_path, fmt):
    bad = {**GOOD, "account_id": "a2", "signup_channel": "wormhole"}
    path = _write(tmp_path, fmt, [GOOD, bad, {**GOOD, "account_id": "a3", "created_at": None}])
    sink = RejectSink(tmp_path / "rejected.jsonl")
    stats, rows = read_accounts(path, sink)
    sink.close()
    assert [r["account_id"] for r in rows] == ["a1", "a3"]
    assert rows[0]["verified"] is False and rows[0]["signup_channel"] == "education"
    assert json.loads(rows[0]["extra_json"]) == {"crm_segment": "smb"}
    assert stats.rejected == 1
    assert "unknown signup_channel 'wormhole'" in (tmp_path / "rejected.jsonl").read_text()


@pytest.mark.parametrize("change, reason", [
    ({"account_id": ""}, "account_id"),
    ({"created_at": "2026-03-01 10:00"}, "no UTC offset"),
    ({"verified": "maybe"}, "'verified' must be true or false"),
])
def test_bad_rows(tmp_path, change, reason):
    path = _write(tmp_path, "jsonl", [{**GOOD, **change}])
    sink = RejectSink(tmp_path / "rejected.jsonl")
    _, rows = read_accounts(path, sink)
    sink.close()
    assert rows == [] and reason in (tmp_path / "rejected.jsonl").read_text()


def test_a_later_row_replaces_the_earlier(engine, tmp_path):
    sink = RejectSink(tmp_path / "r.jsonl")
    _, first = read_accounts(_write(tmp_path, "jsonl", [GOOD]), sink)
    store_accounts(engine, first)
    (tmp_path / "more").mkdir()
    _, second = read_accounts(_write(tmp_path / "more", "jsonl",
                                     [{**GOOD, "verified": True}]), sink)
    store_accounts(engine, second)
    assert engine.fetch_arrow("SELECT account_id, verified FROM accounts").to_pylist() == [
        {"account_id": "a1", "verified": True}]
