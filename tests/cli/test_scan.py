"""`distillwatch scan` end to end: the ci world, the output contract, privacy, bad input."""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import stix2

from distillwatch.cli.scan import run_scan
from distillwatch.evaluate import evaluate, load_labels, load_scan_output
from distillwatch.report.contract import DECISIONS

DISTILLWATCH = [sys.executable, "-m", "distillwatch"]


@pytest.fixture(scope="module")
def ci_scan(ci_world, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ci-scan")
    run_scan([ci_world], out)
    return out


def test_every_campaign_found_and_hard_negatives_untouched(ci_world, ci_scan):
    result = evaluate(load_labels(ci_world), load_scan_output(ci_scan)).to_dict()
    assert result["campaign_recall"] == 1.0
    assert result["heavy_fpr"] == 0.0
    ordinary = next(p for p in result["populations"] if p["population"] == "ordinary")
    assert ordinary["fpr"] <= 0.001
    assert result["exchange_coverage"] >= 0.95
    assert result["other_abuse_flagged_rate"] == 0.0
    # one reported campaign per true campaign: campaigns are not merged
    reported = [set(c["reported_as"]) for c in result["campaigns"]]
    assert all(len(r) == 1 for r in reported)
    assert len(set().union(*reported)) == len(reported)


def test_campaigns_json_follows_the_contract(ci_world, ci_scan):
    document = json.loads((ci_scan / "campaigns.json").read_text())
    assert document["schema_version"] == "1"
    assert set(document["window"]) == {"start", "end"}
    accounts = [json.loads(line) for line in (ci_scan / "accounts.jsonl").open()]
    assert document["totals"]["accounts"] == len(accounts)
    assert document["campaigns"]
    for campaign in document["campaigns"]:
        assert re.fullmatch(r"C-\d{4}", campaign["campaign_id"])
        assert 0.0 <= campaign["confidence"] <= 1.0
        assert campaign["account_count"] == len(campaign["accounts"])
        assert campaign["first_seen"] <= campaign["last_seen"]
        assert sum(campaign["capabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert campaign["tactics"] and campaign["evidence"]
        for item in campaign["evidence"]:
            assert set(item) >= {"kind", "detail", "weight"} and item["detail"]
        assert set(campaign["indicators"]) == {"templates", "ip_prefixes", "asns",
                                               "payment_fingerprints"}
    members = {a for c in document["campaigns"] for a in c["accounts"]}
    by_id = {a["account_id"]: a for a in accounts}
    for account in accounts:
        assert 0.0 <= account["score"] <= 1.0
        assert account["decision"] in DECISIONS
        assert (account["campaign_id"] is not None) == (account["account_id"] in members)
    exchanges = sum(a["exchanges"] for a in accounts)
    assert exchanges == document["totals"]["exchanges"]
    for campaign in document["campaigns"]:
        assert campaign["exchange_count"] == sum(by_id[a]["exchanges"]
                                                 for a in campaign["accounts"])


def test_indicators_bundle_and_report_are_written(ci_scan):
    bundle = stix2.parse((ci_scan / "indicators.stix.json").read_text(), allow_custom=True)
    kinds = {obj.type for obj in bundle.objects}
    assert {"campaign", "indicator", "relationship", "identity"} <= kinds
    html = (ci_scan / "report.html").read_text()
    assert "C-0001" in html and "<svg" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']https?://""", html)


def _prompts(world: Path, population: str, count: int) -> list[str]:
    labels = json.loads((world / "labels.json").read_text())["accounts"]
    chosen = {a for a, v in labels.items() if v["population"] == population}
    out = []
    with gzip.open(world / "exchanges.jsonl.gz", "rt") as handle:
        for line in handle:
            record = json.loads(line)
            if record["account_id"] in chosen:
                for message in record["request"]["messages"]:
                    text = message.get("content")
                    if message["role"] == "user" and isinstance(text, str) and len(text) > 80:
                        out.append(text[20:70])
            if len(out) >= 10 * count:
                break
    return random.Random(1).sample(out, min(count, len(out)))


def test_no_customer_prompt_text_in_any_output(ci_world, ci_scan):
    outputs = "".join((ci_scan / name).read_text() for name in (
        "campaigns.json", "accounts.jsonl", "report.html", "indicators.stix.json",
        "rejected.jsonl"))
    samples = _prompts(ci_world, "ordinary", 40) + _prompts(ci_world, "coding_agent_devs", 20)
    assert len(samples) >= 30
    leaked = [s for s in samples if s in outputs]
    assert leaked == []


def _good(i: int) -> dict:
    return {"exchange_id": f"ex-{i}", "timestamp": f"2026-04-20T08:{i % 60:02d}:00Z",
            "account_id": f"acct-{i % 3}", "model": "m-1",
            "request": {"messages": [{"role": "user", "content": f"question number {i}"}]}}


def _lines(*records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_bad_input_gives_rejects_with_reasons_and_a_finished_scan(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "empty.jsonl").write_bytes(b"")
    (logs / "invalid.jsonl").write_bytes(_lines(_good(1)) + b'{"exchange_id": "x",\n'
                                         + _lines(_good(2)))
    (logs / "types.jsonl").write_bytes(_lines({**_good(3), "model": 42}))
    (logs / "missing.jsonl").write_bytes(_lines({k: v for k, v in _good(4).items()
                                                 if k != "account_id"}))
    (logs / "offset.jsonl").write_bytes(_lines({**_good(5), "timestamp": "2026-04-20T08:00:00"}))
    (logs / "latin1.jsonl").write_bytes(b'{"exchange_id": "x", "model": "caf\xe9"}\n')
    whole = gzip.compress(_lines(*[_good(i) for i in range(10, 60)]))
    (logs / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    huge = {**_good(6), "request": {"messages": [{"role": "user",
                                                  "content": "x" * 10_000_000}]}}
    (logs / "huge.jsonl").write_bytes(_lines(huge))
    out = tmp_path / "out"
    env = {**os.environ, "DISTILLWATCH_FINGERPRINT_KEY": "test-key-0123456789abcdef"}
    done = subprocess.run([*DISTILLWATCH, "scan", str(logs), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    rejects = [json.loads(line) for line in (out / "rejected.jsonl").open()]
    by_file = {}
    for reject in rejects:
        by_file.setdefault(Path(reject["source"]).name, []).append(reject["reason"])
    assert any("invalid JSON" in r for r in by_file["invalid.jsonl"])
    assert any("'model' must be" in r for r in by_file["types.jsonl"])
    assert any("missing required field 'account_id'" in r for r in by_file["missing.jsonl"])
    assert any("no UTC offset" in r for r in by_file["offset.jsonl"])
    assert any("not valid UTF-8" in r for r in by_file["latin1.jsonl"])
    assert any("truncated" in r for r in by_file["truncated.jsonl.gz"])
    document = json.loads((out / "campaigns.json").read_text())
    assert document["rejected"]["count"] == len(rejects)
    # the good records, the huge (capped) one and those before the truncation are scanned
    assert document["totals"]["exchanges"] >= 4
    for name in ("accounts.jsonl", "report.html", "indicators.stix.json"):
        assert (out / name).exists()
    assert "x" * 1000 not in (out / "rejected.jsonl").read_text()


@pytest.mark.parametrize("args, message", [
    (["scan", "no/such/logs", "--out", "{out}"], "No such file or folder"),
    (["scan", "--out", "{out}"], "Give log files or folders"),
    (["scan", "{logs}", "--out", "{out}", "--format", "csv"], "Unknown --format 'csv'"),
    (["scan", "{logs}", "--out", "{out}", "--policy", "{bad_policy}"], "decision must be one"),
    (["scan", "{logs}", "--out", "{out}", "--settings", "{bad_settings}"], "Unknown settings"),
])
def test_usage_errors_say_what_to_do(tmp_path, args, message):
    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(_lines(_good(1)))
    (tmp_path / "policy.yaml").write_text("rules: [{when: {}, decision: nuke}]")
    (tmp_path / "settings.yaml").write_text("linky: {}")
    filled = [a.format(out=tmp_path / "out", logs=logs, bad_policy=tmp_path / "policy.yaml",
                       bad_settings=tmp_path / "settings.yaml") for a in args]
    done = subprocess.run([*DISTILLWATCH, *filled], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def _outcome(out: Path) -> tuple[dict, dict]:
    """Campaigns (id -> members) and accounts (id -> (score, decision)) of a scan."""
    document = json.loads((out / "campaigns.json").read_text())
    campaigns = {c["campaign_id"]: sorted(c["accounts"]) for c in document["campaigns"]}
    accounts = {}
    for line in (out / "accounts.jsonl").open():
        row = json.loads(line)
        accounts[row["account_id"]] = (row["score"], row["decision"])
    return campaigns, accounts


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                if int(handle.read().rsplit(b")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _kill_when(command: list[str], ready) -> None:
    """Start ``command`` and SIGKILL it as soon as ``ready()`` holds (or it ends by itself);
    its worker processes must then exit by themselves."""
    import signal
    import time

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    children: list[int] = []
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            children = _children(process.pid)
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the scan ended before it could be killed"
    until = time.monotonic() + 10
    while time.monotonic() < until and any(_alive(c) for c in children):
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "orphaned workers"


def test_a_killed_scan_reruns_to_the_same_result(ci_world, ci_scan, tmp_path):
    import time

    import duckdb

    out = tmp_path / "scan"
    store = out / "store.duckdb"
    command = [*DISTILLWATCH, "scan", str(ci_world), "--out", str(out)]

    def stored_bytes() -> int:
        return sum(p.stat().st_size for p in out.glob("store.duckdb*")) if out.exists() else 0

    # Killed while ingesting: some chunks staged, nothing merged yet.
    _kill_when(command, lambda: stored_bytes() > 4_000_000)
    # Killed while scanning: every file ingested, the detector half way.
    started = time.monotonic()
    _kill_when(command, lambda: time.monotonic() - started > 12)
    run_scan([ci_world], out)
    assert _outcome(out) == _outcome(ci_scan)
    with duckdb.connect(str(store), read_only=True) as connection:
        rows, ids = connection.execute(
            "SELECT count(*), count(DISTINCT exchange_id) FROM features").fetchone()
        staged = connection.execute("SELECT count(*) FROM features_staging").fetchone()[0]
    expected = json.loads((ci_world / "world.json").read_text())["exchanges"]
    assert rows == ids == expected and staged == 0


def test_a_daily_scan_with_since_equals_a_full_rescan(ci_world, ci_scan, tmp_path):
    from datetime import UTC, datetime

    from distillwatch.engine import DuckDBEngine
    from distillwatch.ingest.rejects import RejectSink
    from distillwatch.ingest.store import ingest

    cutoff = datetime(2026, 4, 24, tzinfo=UTC)
    early = tmp_path / "early.jsonl.gz"
    with gzip.open(ci_world / "exchanges.jsonl.gz", "rb") as source, \
            gzip.open(early, "wb") as target:
        for line in source:
            if datetime.fromisoformat(json.loads(line)["timestamp"]) < cutoff:
                target.write(line)
    store = tmp_path / "store.duckdb"
    engine = DuckDBEngine(store)
    first = ingest(engine, [early], RejectSink(tmp_path / "r.jsonl"), b"distillwatch-unkeyed")
    engine.close()
    # The next day: the whole log again (it spans every day), from the cut-off on only.
    out = tmp_path / "scan"
    document = run_scan([ci_world], out, store=store, since=cutoff)
    expected = json.loads((ci_world / "world.json").read_text())["exchanges"]
    assert document["_ingest"]["stored"] == expected - first.stored
    assert 0 < first.stored < expected
    assert _outcome(out) == _outcome(ci_scan)
