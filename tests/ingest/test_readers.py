"""Bad input becomes rejects with reasons; the good records around it are kept."""

from __future__ import annotations

import gzip
import json

import pytest

from distillwatch.ingest.readers import input_files, read_exchanges
from distillwatch.ingest.rejects import RejectSink

SECRET = "PROMPT-SECRET-7731"


def good(i: int, **overrides) -> dict:
    record = {"exchange_id": f"ex-{i}", "timestamp": "2026-04-20T08:00:00.000Z",
              "account_id": "acct-1", "model": "m",
              "request": {"messages": [{"role": "user", "content": f"{SECRET} question {i}"}]}}
    record.update(overrides)
    return record


def line(record) -> bytes:
    return json.dumps(record).encode() + b"\n"


def run(path, tmp_path):
    sink = RejectSink(tmp_path / "out" / "rejected.jsonl")
    stats, records = read_exchanges(path, sink)
    kept = list(records)
    sink.close()
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejected.jsonl").read_text()
               .splitlines()]
    return stats, kept, rejects


BAD_LINES = [
    ("invalid JSON", b'{"exchange_id": "x", "timestamp": \n', "invalid JSON"),
    ("wrong type", line(good(9, model=42)), "'model' must be a non-empty string"),
    ("missing field", line({k: v for k, v in good(9).items() if k != "account_id"}),
     "missing required field 'account_id'"),
    ("no offset", line(good(9, timestamp="2026-04-20T08:00:00")), "has no UTC offset"),
    ("bad timestamp", line(good(9, timestamp="yesterday")), "is not RFC 3339"),
    ("empty messages", line(good(9, request={"messages": []})), "non-empty list"),
    ("unknown role", line(good(9, request={"messages": [{"role": "wizard", "content": "x"}]})),
     "unknown role 'wizard'"),
    ("n as string", line(good(9, request={"messages": [{"role": "user", "content": "x"}],
                                          "n": "4"})), "'request.n' must be an integer"),
    ("not an object", b'["a list"]\n', "not a JSON object"),
    ("non-UTF-8", b'{"exchange_id": "x", "model": "caf\xe9"}\n', "not valid UTF-8"),
]


@pytest.mark.parametrize("name, bad, reason", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_a_bad_line_is_rejected_and_its_neighbours_kept(tmp_path, name, bad, reason):
    path = tmp_path / "logs.jsonl"
    path.write_bytes(line(good(1)) + bad + line(good(2)))
    stats, kept, rejects = run(path, tmp_path)
    assert [r["exchange_id"] for r in kept] == ["ex-1", "ex-2"]
    assert len(rejects) == 1 and reason in rejects[0]["reason"]
    assert rejects[0]["location"] == "line 2" and rejects[0]["source"] == str(path)
    assert stats.rejected == 1 and stats.accepted == 2


def test_empty_file_gives_nothing_and_no_error(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    stats, kept, rejects = run(tmp_path / "empty.jsonl", tmp_path)
    assert kept == [] and rejects == [] and stats.read == 0


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    whole = gzip.compress(b"".join(line(good(i)) for i in range(2000)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    stats, kept, rejects = run(path, tmp_path)
    assert 0 < len(kept) < 2000 and stats.truncated_stream
    assert [r["exchange_id"] for r in kept] == [f"ex-{i}" for i in range(len(kept))]
    assert "truncated" in rejects[-1]["reason"]


def test_a_ten_megabyte_prompt_is_accepted_and_capped(tmp_path):
    huge = good(1, request={"messages": [{"role": "user", "content": "word " * 2_000_000}]})
    (tmp_path / "big.jsonl").write_bytes(line(huge) + line(good(2)))
    stats, kept, rejects = run(tmp_path / "big.jsonl", tmp_path)
    assert len(kept) == 2 and not rejects and stats.capped == 1
    assert kept[0]["truncated"] and len(kept[0]["request"]["messages"][0]["content"]) < 300_000


def test_duplicate_exchange_ids_are_rejected_after_the_first(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_bytes(line(good(1)) + line(good(1)) + line(good(2)))
    sink = RejectSink(tmp_path / "rejected.jsonl")
    stats, records = read_exchanges(path, sink, seen=set())
    assert [r["exchange_id"] for r in records] == ["ex-1", "ex-2"]
    assert stats.duplicates == 1


def test_rejects_never_contain_prompt_text(tmp_path):
    path = tmp_path / "logs.jsonl"
    bad = [good(i, timestamp="2026-04-20 08:00") for i in range(3)]
    path.write_bytes(b"".join(line(r) for r in bad)
                     + b'{"exchange_id": "x", "request": {"messages": [{"content": "'
                     + (SECRET * 50).encode() + b'\n')
    run(path, tmp_path)
    text = (tmp_path / "out" / "rejected.jsonl").read_text()
    assert text.count("\n") == 4 and SECRET not in text


def test_input_files_expand_folders_and_skip_hidden(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jsonl").write_text("")
    (tmp_path / "a" / ".hidden.jsonl").write_text("")
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "part-00001.parquet").write_text("")
    (tmp_path / "parts" / "part-00000.parquet").write_text("")
    (tmp_path / "parts" / "_SUCCESS").write_text("")
    assert input_files([tmp_path / "a", tmp_path / "parts"]) == [
        tmp_path / "a" / "x.jsonl", tmp_path / "parts" / "part-00000.parquet",
        tmp_path / "parts" / "part-00001.parquet"]


STAMPS = {  # as written by the log -> the instant
    "2026-05-02T10:00:01Z": "2026-05-02T10:00:01",
    "2026-05-02T10:00:01.123456789Z": "2026-05-02T10:00:01.123456",   # a nanosecond clock
    "2026-05-02t10:00:01.5z": "2026-05-02T10:00:01.500000",
    "2026-05-02 12:00:01+0200": "2026-05-02T10:00:01",
    "2026-05-02T10:00Z": "2026-05-02T10:00:00",
}
ISO_ONLY = {  # forms only the record path reads (ISO 8601 beyond RFC 3339)
    "20260502T100001Z": "2026-05-02T10:00:01",
    "2026-W18-6T10:00:01Z": "2026-05-02T10:00:01",
    "2026-05-02T10:00:01,25Z": "2026-05-02T10:00:01.250000",
}


@pytest.mark.parametrize("stamps", [STAMPS, {**STAMPS, **ISO_ONLY}])
def test_every_timestamp_form_validation_accepts_is_fingerprinted(stamps):
    from distillwatch.ingest.batches import Task, run_task

    lines = tuple((n + 1, json.dumps({
        "exchange_id": f"e{n}", "timestamp": stamp, "account_id": "a", "model": "m",
        "request": {"messages": [{"role": "user", "content": "hi"}]}}).encode())
        for n, stamp in enumerate(stamps))
    outcome = run_task(Task(source="log.jsonl", kind="jsonl", lines=lines), b"k")
    assert not outcome.rejects
    got = [t.isoformat() for t in outcome.features.column("ts").to_pylist()]
    assert got == [f"{instant}+00:00" for instant in stamps.values()]


def test_json_documents_of_records_are_read_and_others_skipped(tmp_path):
    from tests.ingest.test_formats import OPENAI_CHAT, litellm_payload

    from distillwatch.ingest.readers import sniff_kind

    logs = tmp_path / "logs"
    (logs / "litellm" / "2026-05-02").mkdir(parents=True)
    # LiteLLM's bucket logging: one call per object, on one line or pretty-printed.
    for n in range(2):
        payload = litellm_payload("acompletion", [{"role": "user", "content": f"q{n}"}],
                                  id=f"call-{n}")
        (logs / "litellm" / "2026-05-02" / f"time-10-00-0{n}_{n}.json").write_text(
            json.dumps(payload, indent=2 if n else None))
    # An export: an array of provider log lines, plain and gzipped.
    export = [{**OPENAI_CHAT, "request_id": f"req-{n}"} for n in range(3)]
    (logs / "export.json").write_text(json.dumps(export))
    with gzip.open(logs / "export-2.json.gz", "wt") as handle:
        json.dump([{**OPENAI_CHAT, "request_id": f"req-{n}"} for n in range(3, 5)], handle)
    # Not logs: a world's labels, a scan's accounts.
    (logs / "labels.json").write_text(json.dumps({"accounts": {}, "campaigns": {}}, indent=2))
    (logs / "accounts.jsonl").write_text(json.dumps(
        {"account_id": "a", "score": 0.1, "decision": "allow", "reasons": []}) + "\n")
    kinds = {p.name: sniff_kind(p) for p in input_files([logs])}
    assert kinds == {"time-10-00-00_0.json": "exchanges", "time-10-00-01_1.json": "exchanges",
                     "export.json": "exchanges", "export-2.json.gz": "exchanges",
                     "labels.json": "other", "accounts.jsonl": "other"}
    ids = []
    for path in input_files([logs]):
        if kinds[path.name] == "exchanges":
            stats, records, rejects = run(path, tmp_path)
            ids += [r["exchange_id"] for r in records]
            assert stats.rejected == 0 and not rejects, path
    assert sorted(ids) == ["call-0", "call-1", "req-0", "req-1", "req-2", "req-3", "req-4"]
