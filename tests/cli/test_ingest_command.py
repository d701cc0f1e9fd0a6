"""The ingest command: stores what is valid, reports and keeps what is not, idempotently."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distillwatch", *args], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_ingest_twice_with_a_bad_line(tmp_path):
    logs = tmp_path / "logs.jsonl"
    good = [{"exchange_id": f"e{i}", "timestamp": "2026-04-20T10:00:00Z", "account_id": "a",
             "model": "m", "request": {"messages": [{"role": "user", "content": "hello"}]}}
            for i in range(5)]
    logs.write_text("".join(json.dumps(r) + "\n" for r in good) + "not json\n")
    key = tmp_path / "fp.key"
    key.write_text("a-secret-key-of-enough-length")
    store = tmp_path / "store.duckdb"
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,signup_channel,verified\na,education,false\nb,space,true\n")
    first = _cli("ingest", str(logs), "--store", str(store), "--key-file", str(key),
                 "--accounts", str(accounts))
    assert first.returncode == 0, first.stderr
    assert "stored 5 new exchanges" in first.stdout and "2 rejected" in first.stdout
    # The same file again is skipped unread: nothing stored, nothing rejected twice.
    second = _cli("ingest", str(logs), "--store", str(store), "--key-file", str(key))
    assert "stored 0 new exchanges (5 were already stored)" in second.stdout
    assert "already ingested" in second.stdout
    with duckdb.connect(str(store)) as connection:
        assert connection.sql("SELECT count(*) FROM features").fetchall() == [(5,)]
        assert connection.sql("SELECT account_id, signup_channel FROM accounts").fetchall() == [
            ("a", "education")]
    rejects = (tmp_path / "rejected.jsonl").read_text().splitlines()
    assert len(rejects) == 2 and "invalid JSON" in rejects[0]
    assert "unknown signup_channel 'space'" in rejects[1]
    # A file that grew is read again: only its new exchange is stored.
    with logs.open("a") as handle:
        handle.write(json.dumps({**good[0], "exchange_id": "e5"}) + "\n")
    third = _cli("ingest", str(logs), "--store", str(store), "--key-file", str(key))
    assert "stored 1 new exchanges (5 were already stored)" in third.stdout, third.stdout
    assert len((tmp_path / "rejected.jsonl").read_text().splitlines()) == 3


def test_unkeyed_fingerprints_are_warned_about_and_missing_input_exits_2(tmp_path):
    logs = tmp_path / "empty.jsonl"
    logs.write_text("")
    result = _cli("ingest", str(logs), "--store", str(tmp_path / "s.duckdb"),
                  env={"DISTILLWATCH_FINGERPRINT_KEY": ""})
    assert result.returncode == 0 and "unkeyed" in result.stdout
    missing = _cli("ingest", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s.duckdb"))
    assert missing.returncode == 2 and "No such file or folder" in missing.stderr
