"""Scaffold sketches: one frame with different payloads matches; unrelated prompts do not."""

from __future__ import annotations

import random

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from distillwatch.fingerprint import sketch
from distillwatch.fingerprint.sketch import (
    BANDS,
    band_overlap,
    keyed_hash,
    sketch_columns,
    sketch_many,
)

KEY = b"test-key"
WORDS = ("river", "market", "engine", "theory", "garden", "silver", "window", "planet",
         "orange", "method", "signal", "harbor", "lesson", "patient", "village", "circle")


def payload(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


FRAME = ("You are producing training data. For the task below give a detailed reasoning "
         "trace, check every step, then state the final answer.\n\nTask: {}\n\n"
         "Format: <answer>...</answer>")
INLINE = ("Explain the following in simple terms with an example for a beginner: {} "
          "Keep the answer under two hundred words.")


def test_one_frame_with_long_different_payloads_shares_band_keys():
    rng = random.Random(1)
    prompts = [FRAME.format(payload(rng, rng.randint(80, 200))) for _ in range(30)]
    sketches = sketch_many(prompts, KEY)
    overlaps = [band_overlap(sketches[0], s) for s in sketches[1:]]
    assert min(overlaps) >= 0.9


def test_inline_payload_frames_match_by_their_opening_and_closing():
    rng = random.Random(2)
    sketches = sketch_many([INLINE.format(payload(rng, 120)) for _ in range(10)], KEY)
    assert len({s.head_key for s in sketches}) == 1
    assert len({s.tail_key for s in sketches}) == 1


def test_unrelated_prompts_share_almost_nothing():
    prompts = [
        "What's a good name for a golden retriever puppy?",
        "Write a SQL query that returns the ten most recent orders per customer.",
        "Compare the economic policies of the 1930s New Deal with post-war Britain.",
        "My sourdough starter smells like acetone, what should I do?",
    ]
    sketches = sketch_many(prompts, KEY)
    pairs = [(a, b) for i, a in enumerate(sketches) for b in sketches[i + 1:]]
    assert max(band_overlap(a, b) for a, b in pairs) <= 2 / BANDS
    assert len({s.head_key for s in sketches}) == len({s.tail_key for s in sketches}) == 4


def test_keys_change_every_fingerprint_and_lines_are_hashed():
    prompt = FRAME.format("a payload")
    one, other = sketch_many([prompt], KEY)[0], sketch_many([prompt], b"other-key")[0]
    assert set(one.band_keys).isdisjoint(other.band_keys)
    assert one.line_hashes and set(one.line_hashes).isdisjoint(other.line_hashes)
    assert keyed_hash(KEY, "x") == keyed_hash(KEY, "x") != keyed_hash(KEY, "y")


# Texts whose ends decide the one-line frame, head and tail keys: long and short, with runs
# of Unicode whitespace, long unbroken tokens (a window then holds too few words) and
# non-ASCII words whose case changes.
_WORD = st.text(alphabet=st.sampled_from("abcXYZéÉİßΣσ日本<>0123"), min_size=1, max_size=40)
_GAP = st.sampled_from([" ", "  ", "\t", "\u00a0", "\u2003", " \u3000 "])
_TEXT = st.lists(st.tuples(_WORD, _GAP), max_size=120).map(
    lambda parts: "".join(word + gap for word, gap in parts).strip())


def _sketch_with_ends(prompts: pa.Array, end_chars: int):
    saved = sketch.END_CHARS
    sketch.END_CHARS = end_chars
    try:
        return sketch_columns(prompts, KEY)
    finally:
        sketch.END_CHARS = saved


@settings(max_examples=60, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=8))
# A 24-character window that ends inside the twelfth word (at either end).
@example(["a b c d e f g h i j k longword " + "m " * 40 + "end"])
@example(["start " + "m " * 40 + "wordlong k j i h g f e d c b a"])
def test_end_words_read_near_the_ends_equal_a_whole_split(texts):
    """Splitting long texts only near their ends gives the sketch of splitting them whole,
    with the default window and with one so small that long tokens overflow it."""
    prompts = pa.array(texts, pa.string())
    whole = _sketch_with_ends(prompts, 10**9)
    for end_chars in (sketch.END_CHARS, 24):
        near = _sketch_with_ends(prompts, end_chars)
        assert (near.band_keys == whole.band_keys).all()
        assert (near.head_key == whole.head_key).all()
        assert (near.tail_key == whole.tail_key).all()
        assert near.line_hashes.equals(whole.line_hashes)
