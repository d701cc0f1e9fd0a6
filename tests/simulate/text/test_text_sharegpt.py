"""ShareGPT parsing: truncated tail, chunk merging, turn normalisation, development split."""

from __future__ import annotations

import hashlib
import json

import pytest

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text import Session, Turn
from distillwatch.simulate.text.sharegpt import (
    build_sessions,
    in_development_split,
    iter_records,
    merge_chunks,
    normalise_turns,
    split_id,
)


def _record(record_id: str, *messages: tuple[str, str]) -> dict:
    return {"id": record_id, "conversations": [{"from": f, "value": v} for f, v in messages]}


def _dev_ids(count: int, development: bool = True) -> list[str]:
    """Share ids that fall in (or out of) the development split."""
    ids, n = [], 0
    while len(ids) < count:
        candidate = f"s{n}"
        if in_development_split(candidate) == development:
            ids.append(candidate)
        n += 1
    return ids


def test_when_file_is_cut_mid_record_then_complete_records_are_kept():
    records = [_record("a_0", ("human", "hi")), _record("a_1", ("gpt", "hello"))]
    text = json.dumps(records, indent=2)
    truncated = text[: text.index('"a_1"') + 20]  # inside the second record

    assert [r["id"] for r in iter_records(truncated)] == ["a_0"]


def test_when_file_is_complete_then_every_record_is_read():
    records = [_record(f"x_{k}", ("human", f"q{k}")) for k in range(5)]

    assert list(iter_records(json.dumps(records))) == records
    assert list(iter_records("  [ ]  ")) == []


def test_when_cut_right_after_a_comma_then_stops_cleanly():
    assert [r["id"] for r in iter_records('[{"id": "a_0"},\n  ')] == ["a_0"]


def test_when_malformed_before_the_end_then_raises():
    with pytest.raises(DistillwatchDataError, match="Malformed JSON"):
        list(iter_records('[{"id": "a_0"}, {"id": oops}, {"id": "c_0"}]'))


def test_when_not_an_array_then_raises():
    with pytest.raises(DistillwatchDataError, match="JSON array"):
        list(iter_records('{"id": "a_0"}'))


@pytest.mark.parametrize("record_id, expected", [
    ("QWJhYvA_0", ("QWJhYvA", 0)),
    ("QWJhYvA_12", ("QWJhYvA", 12)),
    ("a_b_3", ("a_b", 3)),
    ("noSuffix", ("noSuffix", 0)),
    ("trailing_x", ("trailing_x", 0)),
])
def test_split_id(record_id, expected):
    assert split_id(record_id) == expected


def test_when_chunks_arrive_out_of_order_then_merged_in_chunk_order():
    records = [
        _record("QWJhYvA_10", ("human", "ten")),
        _record("other_0", ("human", "other")),
        _record("QWJhYvA_2", ("human", "two")),
        _record("QWJhYvA_0", ("human", "zero")),
        _record("QWJhYvA_2", ("human", "duplicate of two")),
    ]

    merged = merge_chunks(records)

    assert list(merged) == ["QWJhYvA", "other"]
    assert [m["value"] for m in merged["QWJhYvA"]] == ["zero", "two", "ten"]


def test_normalise_turns_maps_roles_merges_and_drops():
    messages = [
        {"from": "gpt", "value": "leading assistant turn"},
        {"from": "system", "value": "be nice"},
        {"from": "human", "value": "first"},
        {"from": "human", "value": "  second  "},
        {"from": "human", "value": "   "},
        {"from": "chatgpt", "value": "answer"},
        {"from": "bard", "value": "more answer"},
        {"from": "weird", "value": "dropped"},
        {"from": "human", "value": "again"},
    ]

    assert normalise_turns(messages) == (
        Turn("user", "first\n\nsecond"),
        Turn("assistant", "answer\n\nmore answer"),
        Turn("user", "again"),
    )


def test_build_sessions_keeps_development_split_with_user_turns():
    dev, held_out = _dev_ids(3), _dev_ids(1, development=False)
    records = [
        _record(f"{dev[0]}_1", ("gpt", "part two answer"), ("human", "follow-up")),
        _record(f"{dev[0]}_0", ("human", "Bonjour, comment faire une tarte aux pommes ?"),
                ("gpt", "Voici une recette")),
        _record(f"{dev[1]}_0", ("gpt", "only an assistant")),  # no user turn: dropped
        _record(f"{dev[2]}_0", ("human", "What is the capital of France?")),
        _record(f"{held_out[0]}_0", ("human", "held out")),
    ]

    sessions = build_sessions(records)

    assert [s.session_id for s in sessions] == sorted([dev[0], dev[2]])
    first = next(s for s in sessions if s.session_id == dev[0])
    assert isinstance(first, Session)
    assert [t.role for t in first.turns] == ["user", "assistant", "user"]
    assert first.turns[1].text == "Voici une recette\n\npart two answer"
    assert first.language == "fr"


def test_development_split_rule():
    for share_id in ["QWJhYvA", "i6IyJda", "A5AbcES", "hRPPgZT"]:
        bucket = int(hashlib.sha1(share_id.encode()).hexdigest(), 16) % 10
        assert in_development_split(share_id) == (bucket < 7)
