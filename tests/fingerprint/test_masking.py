"""Masked skeletons keep frames and hide payloads."""

from __future__ import annotations

import pyarrow as pa
import pytest

from distillwatch.fingerprint.masking import mask, mask_texts, masked_excerpt, skeleton_lines


@pytest.mark.parametrize("text, expected", [
    ("Solve: Leah had 32 chocolates and 4.5 kg", "Solve: Leah had <NUM> chocolates and <NUM> kg"),
    ("see https://x.io/a?b=1 or mail a.b@c.co now", "see <URL> or mail <EMAIL> now"),
    ('Translate "Bonjour tout le monde" into English', "Translate <QUOTE> into English"),
    ("Fix:\n```python\nprint(1)\n```\nthanks", "Fix:\n<CODE>\nthanks"),
    ("id 123e4567-e89b-12d3-a456-426614174000 on 2026-04-20", "id <ID> on <NUM>"),
    ("unterminated ```code block", "unterminated <CODE>"),
    ("Answer\tin  three   words:\t\tnow", "Answer in three words: now"),
    ('Rate  "the  answer"  from 1 to\t10', "Rate <QUOTE> from <NUM> to <NUM>"),
])
def test_mask(text, expected):
    assert mask(text) == expected


def test_a_batch_masks_each_text_as_alone():
    # Each rule runs only on the texts holding its trigger; the others must come out as alone.
    batch = ["plain words only", "two  spaces and\ttab", "see www.x.io  now", "",
             "Call 555 1234", "a \"quoted  text\" here"]
    assert mask_texts(pa.array(batch)).to_pylist() == [mask(text) for text in batch]
    assert mask_texts(pa.array(batch))[1].as_py() == "two spaces and tab"


def test_two_prompts_of_one_template_share_their_skeleton():
    frame = "Solve the problem below. Think step by step.\n\nProblem:\n{}\n\nAnswer:"
    a = frame.format("Tom has 3 apples and buys " + "more fruit " * 40 + "5 pears.")
    b = frame.format("A train leaves at 9:15 going " + "far away " * 45 + "at 80 km/h.")
    assert skeleton_lines(a) == skeleton_lines(b)
    assert "<TEXT>" in skeleton_lines(a)


def test_excerpt_never_contains_the_payload():
    secret = "my account number 99812 and the password hunter2-is-secret " * 3
    excerpt = masked_excerpt("Summarise this: \"" + secret + "\"")
    assert "hunter2" not in excerpt and "99812" not in excerpt
    assert len(masked_excerpt("word " * 500)) <= 160
