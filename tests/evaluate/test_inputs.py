"""Malformed labels and scan outputs are refused with the file, the place and the reason."""

from __future__ import annotations

import json

import pytest
from tinyworld import write_scan

from distillwatch.evaluate import load_labels, load_scan_output
from distillwatch.exceptions import DistillwatchInputError

GOOD = {"account_id": "a1", "score": 0.5, "decision": "allow", "campaign_id": None}


@pytest.mark.parametrize("line, message", [
    ('{"account_id": "a1", "score": 1.5, "decision": "allow"}', r"score.*\[0, 1\].*1.5"),
    ('{"account_id": "a1", "score": 0.5, "decision": "nuke"}', "Unknown decision 'nuke'"),
    ('{"account_id": "a1", "score": "high", "decision": "allow"}', "score.*number"),
    ('{"score": 0.5, "decision": "allow"}', "account_id"),
    ('{"account_id": "a1", "score": 0.5', "Not valid JSON"),
])
def test_bad_account_lines_name_the_line(tmp_path, line, message):
    scan = write_scan(tmp_path, campaigns=[], accounts=[GOOD])
    with (scan / "accounts.jsonl").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(DistillwatchInputError, match=message) as error:
        load_scan_output(scan)
    assert "accounts.jsonl:2" in str(error.value)


@pytest.mark.parametrize("campaign, message", [
    ({"campaign_id": "X", "confidence": 2, "accounts": []}, "confidence"),
    ({"confidence": 0.5, "accounts": []}, "campaign_id"),
    ({"campaign_id": "X", "confidence": 0.5, "accounts": "a1"}, "accounts"),
])
def test_bad_campaigns_name_the_campaign(tmp_path, campaign, message):
    scan = write_scan(tmp_path, campaigns=[campaign], accounts=[GOOD])
    with pytest.raises(DistillwatchInputError, match=message) as error:
        load_scan_output(scan)
    assert "campaigns[0]" in str(error.value)


@pytest.mark.parametrize("missing", ["campaigns.json", "accounts.jsonl"])
def test_missing_files_say_what_to_run(tmp_path, missing):
    scan = write_scan(tmp_path, campaigns=[], accounts=[GOOD])
    (scan / missing).unlink()
    with pytest.raises(DistillwatchInputError, match=f"Missing {missing}.*distillwatch scan"):
        load_scan_output(scan)


def test_missing_folder_and_wrong_schema_version(tmp_path):
    with pytest.raises(DistillwatchInputError, match="does not exist"):
        load_scan_output(tmp_path / "nowhere")
    scan = write_scan(tmp_path / "v2", campaigns=[], accounts=[])
    document = json.loads((scan / "campaigns.json").read_text())
    document["schema_version"] = "2"
    (scan / "campaigns.json").write_text(json.dumps(document))
    with pytest.raises(DistillwatchInputError, match="schema_version"):
        load_scan_output(scan)


def _labels(world):
    return json.loads((world / "labels.json").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["campaigns"]["C1"]["accounts"].pop(), "Campaign lists 2 accounts but 3"),
    (lambda d: d["accounts"]["o1"].update(campaign_id="C1"), "campaign_id"),
    (lambda d: d["accounts"]["o1"].update(label="friendly"), "Unknown label 'friendly'"),
    (lambda d: d["accounts"]["o1"].update(first_seen="2026-04-20T00:00:00"), "no UTC offset"),
    (lambda d: d["accounts"]["o1"].update(population="martians"), "martians"),
    (lambda d: d.update(schema_version="9"), "schema_version"),
])
def test_inconsistent_labels_are_refused(tiny_world, edit, message):
    data = _labels(tiny_world)
    edit(data)
    (tiny_world / "labels.json").write_text(json.dumps(data))
    with pytest.raises(DistillwatchInputError, match=message):
        load_labels(tiny_world)


def test_a_folder_that_is_not_a_world(tmp_path):
    with pytest.raises(DistillwatchInputError, match="distillwatch simulate"):
        load_labels(tmp_path)
