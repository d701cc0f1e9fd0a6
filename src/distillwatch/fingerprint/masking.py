"""Masked skeletons: a prompt with its variable parts replaced by typed placeholders.

Two prompts built from one template differ in their payloads — numbers, names, quoted text,
code, URLs — and agree in the frame around them. Masking the payload-like spans makes the
frames comparable, and the masked text is what reports may show instead of customers' prompts.

Examples (input -> skeleton):
    "Solve: Leah had 32 chocolates"        -> "Solve: Leah had <NUM> chocolates"
    "see https://x.io/a?b=1 or mail a@b.co" -> "see <URL> or mail <EMAIL>"
    'Translate "Bonjour" into English'     -> 'Translate <QUOTE> into English'
    "```python\\nprint(1)\\n```"             -> "<CODE>"

The work is done a column at a time (``mask_texts``, ``skeletons``: Arrow's RE2 kernels);
``mask`` and ``skeleton_lines`` are the same functions on one text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.fingerprint.arrays import flat_values, list_offsets, texts

# (pattern, placeholder, trigger): RE2 syntax, applied in order, each only to the texts that
# contain its trigger (a cheap search first: most prompts have no code, URL or quote, and few a
# run of spaces). Runs of spaces and tabs become one space (a single space is left alone:
# replacing it with itself would cost a substitution per word).
_RULES: tuple[tuple[str, str, str | None], ...] = (
    (r"(?s)```.*?(?:```|\z)", "<CODE>", "```"),
    (r"https?://\S+|www\.\S+", "<URL>", r"https?://|www\."),
    (r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b", "<EMAIL>", "@"),
    (r"\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»", "<QUOTE>", r"[\"“«]"),
    (r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<ID>",
     r"(?i)[0-9a-f]{8}-"),
    (r"\b\d+(?:[.,:/-]\d+)*\b", "<NUM>", None),
    (r"[ \t]{2,}|\t", " ", r"[ \t]{2}|\t"),
)
# The triggers of the rules before the first without one are searched for at once: texts
# with none of them skip those rules.
_FIRST = next(i for i, (_, _, trigger) in enumerate(_RULES) if trigger is None)
# A line much longer than a frame line is payload (a pasted document, a task statement).
PAYLOAD_LINE_WORDS = 60
PAYLOAD = "<TEXT>"
EXCERPT_CHARS = 160


def mask_texts(values: pa.Array) -> pa.Array:
    """The masked skeleton of every text (payload-like spans replaced by placeholders)."""
    masked = texts(values)
    # A placeholder never makes a trigger (it holds none and sits between < and >), so the
    # texts without any of the first rules' triggers skip them all.
    first = _RULES[:_FIRST]
    any_trigger = pc.match_substring_regex(
        masked, "|".join(f"(?:{trigger})" for _, _, trigger in first))
    if pc.any(any_trigger).as_py():
        chosen = masked.filter(any_trigger)
        for rule in first:
            chosen = _replaced(chosen, *rule)
        masked = pc.replace_with_mask(masked, any_trigger, chosen)
    for rule in _RULES[_FIRST:]:
        masked = _replaced(masked, *rule)
    return pc.utf8_trim_whitespace(masked)


def _replaced(values: pa.Array, pattern: str, placeholder: str, trigger: str | None
              ) -> pa.Array:
    """``values`` with ``pattern`` replaced, searched only in the texts holding ``trigger``."""
    if trigger is None:
        return pc.replace_substring_regex(values, pattern, placeholder)
    hit = pc.match_substring_regex(values, trigger)
    if not pc.any(hit).as_py():
        return values
    replaced = pc.replace_substring_regex(values.filter(hit), pattern, placeholder)
    return pc.replace_with_mask(values, hit, replaced)


def skeletons(masked: pa.Array) -> pa.ListArray:
    """Per text, its non-empty masked lines, with very long lines collapsed to ``<TEXT>``.

    Frames are made of short instruction lines; payloads are long. Keeping the short lines
    and collapsing the long ones leaves the scaffold of a templated prompt.
    """
    # Line breaks: \n, \r\n and \r (the rarer Unicode separators are not frames' breaks).
    unified = pc.replace_substring(pc.replace_substring(masked, "\r\n", "\n"), "\r", "\n")
    split = pc.split_pattern(unified, "\n")
    offsets = list_offsets(split)
    lines = pc.utf8_trim_whitespace(flat_values(split))
    rows = np.repeat(np.arange(len(masked)), np.diff(offsets))
    keep = pc.greater(pc.utf8_length(lines), 0).to_numpy(zero_copy_only=False)
    lines = lines.filter(pa.array(keep))
    rows = rows[keep]
    # Masking left single spaces between words (tabs and runs collapsed), so spaces count words,
    # and a line of more than PAYLOAD_LINE_WORDS words has more than twice as many characters:
    # only those lines are counted.
    chars = pc.utf8_length(lines).to_numpy(zero_copy_only=False)
    wide = np.flatnonzero(chars > 2 * PAYLOAD_LINE_WORDS)
    payload = np.zeros(len(lines), dtype=bool)
    if len(wide):
        words = pc.count_substring(pc.take(lines, pa.array(wide)), " ").to_numpy(
            zero_copy_only=False) + 1
        payload[wide] = words > PAYLOAD_LINE_WORDS
    lines = pc.if_else(pa.array(payload), PAYLOAD, lines)
    counts = np.bincount(rows, minlength=len(masked))
    new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(new_offsets), lines)


def excerpts(skeleton: pa.ListArray, limit: int = EXCERPT_CHARS) -> pa.Array:
    """Short masked excerpts safe to show in reports (never raw prompt text)."""
    joined = pc.binary_join(skeleton, " / ")
    long = pc.greater(pc.utf8_length(joined), limit)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(joined, 0, limit - 1), "…", "")
    return pc.if_else(long, cut, joined)


def mask(text: str) -> str:
    """The masked skeleton of ``text``."""
    return mask_texts(pa.array([text]))[0].as_py()


def skeleton_lines(text: str, masked: str | None = None) -> list[str]:
    """The skeleton lines of ``text`` (``masked``: ``mask(text)`` if the caller has it)."""
    return skeletons(pa.array([mask(text) if masked is None else masked]))[0].as_py()


def masked_excerpt(text: str, limit: int = EXCERPT_CHARS, lines: list[str] | None = None) -> str:
    """A short masked excerpt of ``text`` (or of its skeleton ``lines``)."""
    lines = skeleton_lines(text) if lines is None else lines
    return excerpts(pa.array([lines], pa.list_(pa.string())), limit)[0].as_py()
