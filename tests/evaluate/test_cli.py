"""The evaluate command: exit code 2 and one line on bad input; JSON written on success."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tinyworld import write_scan


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "distillwatch", *args], capture_output=True,
                          text=True, env=env)


def test_missing_scan_output_exits_2_with_one_line(tiny_world, tmp_path):
    result = _cli("evaluate", "--world", str(tiny_world), "--scan", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_scan_exits_2_naming_the_line(tiny_world, tmp_path):
    scan = write_scan(tmp_path / "scan", campaigns=[], accounts=[])
    (scan / "accounts.jsonl").write_text('{"account_id": "a1", "score": 7, "decision": "allow"}\n')
    result = _cli("evaluate", "--world", str(tiny_world), "--scan", str(scan))
    assert result.returncode == 2
    assert "accounts.jsonl:1" in result.stderr


def test_scan_and_scanner_are_exclusive(tiny_world, tmp_path):
    result = _cli("evaluate", "--world", str(tiny_world))
    assert result.returncode == 2 and "exactly one of --scan" in result.stderr


def test_scanner_run_with_replay_writes_metrics(tiny_world, tmp_path):
    out = tmp_path / "out"
    result = _cli("evaluate", "--world", str(tiny_world), "--scanner", "volume_baseline",
                  "--param", "threshold=50", "--out", str(out), "--replay")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "evaluation.json").read_text())
    assert metrics["populations"][0]["population"] == "support_bot"
    assert metrics["populations"][0]["flagged"] == 1       # 100 exchanges in a day >= 50
    assert {d["campaign_id"] for d in metrics["time_to_detection"]} == {"C1", "C2"}
    assert "time to detection" in result.stdout


def test_help_documents_every_option():
    result = _cli("evaluate", "--help")
    for option in ("--world", "--scan", "--scanner", "--param", "--out", "--json", "--replay",
                   "--replay-step"):
        assert option in result.stdout
