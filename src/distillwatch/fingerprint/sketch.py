"""Scaffold sketches: keyed fingerprints of a prompt's frame that survive variable payloads.

Whole-prompt similarity fails on templates whose payload is long: the frame is a small part of
the text. So the sketch is built from the *frame* only — the masked skeleton's short lines, or,
for one-paragraph prompts, the words around the payload — as word shingles, summarised by
MinHash and cut into locality-sensitive band keys. Two prompts built on one frame share band
keys even when the payloads differ entirely.

Every word and line is hashed with the provider's key (BLAKE2b) and everything else is derived
from those hashes, so fingerprints can be shared with partners holding the same key without
revealing text, and mean nothing to anyone else. ``sketch_columns`` does a batch at a time;
``sketch_many`` is the same on a list of texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rensa import RMinHash

from distillwatch.fingerprint.arrays import (
    Distinct,
    as_signed,
    domain_constant,
    flat_values,
    keyed_hash,
    keyed_hashes,
    list_offsets,
    mix,
    positions,
    sequence_hashes,
)
from distillwatch.fingerprint.masking import PAYLOAD, excerpts, mask_texts, skeletons

__all__ = ["BANDS", "Sketch", "SketchColumns", "band_overlap", "keyed_hash", "sketch_columns",
           "sketch_many"]

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
SHINGLE = 3
EDGE_WORDS = 12
# A long text's end words are read within this many characters of either end.
END_CHARS = 384
MINHASH_SEED = 1729
HEAD_WORDS = 8
TAIL_WORDS = 6
# A skeleton line shorter than this is too generic to be a scaffold line ("Answer:").
MIN_LINE_CHARS = 12


@dataclass(frozen=True)
class SketchColumns:
    """Keyed fingerprints of a batch of prompts' frames, one entry per prompt.

    Attributes:
        band_keys: (rows, BANDS) int64: LSH band keys of the frame's MinHash.
        line_hashes: Sorted distinct hashes of each skeleton's scaffold lines.
        head_key: Hash of the first words of the masked prompt (an inline frame's opening).
        tail_key: Hash of its last words (an inline frame's closing instruction).
        excerpt: The masked skeleton, shortened: what a report may show (None when not
            asked for).
    """

    band_keys: np.ndarray
    line_hashes: pa.ListArray
    head_key: np.ndarray
    tail_key: np.ndarray
    excerpt: pa.Array | None

    def rows(self, index: np.ndarray) -> SketchColumns:
        """The sketches of prompts ``index``, in that order (a batch's rows from the sketches
        of its distinct prompts)."""
        picked = pa.array(index)
        return SketchColumns(self.band_keys[index], pc.take(self.line_hashes, picked),
                             self.head_key[index], self.tail_key[index],
                             None if self.excerpt is None else pc.take(self.excerpt, picked))


def _shingles(words: np.ndarray, offsets: np.ndarray, seed: np.uint64) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Word-shingle hashes of each segment (a line) and the segment each belongs to.

    A segment of fewer than SHINGLE words is one token of all its words.
    """
    lengths = np.diff(offsets)
    segment = np.repeat(np.arange(len(lengths)), lengths)
    index = positions(offsets)
    starts = np.flatnonzero(index + SHINGLE <= lengths[segment]) + offsets[0]
    with np.errstate(over="ignore"):
        grams = mix(words[starts] * np.uint64(3) ^ mix(words[starts + 1] + seed)
                    ^ mix(words[starts + 2] * np.uint64(5) + seed))
    short = np.flatnonzero(lengths < SHINGLE)
    short_offsets = np.concatenate([[0], np.cumsum(lengths[short])]).astype(np.int64)
    short_words = words[np.repeat(offsets[short], lengths[short]) + positions(short_offsets)]
    singles = sequence_hashes(short_words, short_offsets, seed)
    tokens = np.concatenate([grams, singles])
    owners = np.concatenate([segment[starts - offsets[0]], short])
    return tokens, owners


def _line_shingles(lines: pa.Array, key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Word-shingle hashes of each line (lowercased) and the line each belongs to.

    Frame lines repeat from prompt to prompt (that is what a template is), so each distinct
    line is split and shingled once and its shingles copied to every line holding it.
    """
    distinct = Distinct.of(lines)
    words = pc.utf8_split_whitespace(pc.utf8_lower(distinct.values))
    hashes = keyed_hashes(key, b"word", flat_values(words), remember=True)
    tokens, owner = _shingles(hashes, list_offsets(words), domain_constant(key, b"shingle"))
    order = np.argsort(owner, kind="stable")
    per_value = np.bincount(owner, minlength=len(distinct.values))
    starts = np.concatenate([[0], np.cumsum(per_value)])
    counts = per_value[distinct.index]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gather = np.repeat(starts[distinct.index], counts) + positions(offsets)
    return tokens[order][gather], np.repeat(np.arange(len(lines)), counts)


def _end_words(masked: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Each text's lowercased words at its ends, and which texts have more than those.

    Returns (words, offsets, long): per text all its words when it has at most
    ``2 * EDGE_WORDS``, else its first and last ``EDGE_WORDS`` (``long``). Only these are
    ever used, so a text longer than ``2 * END_CHARS`` characters is split only within
    ``END_CHARS`` of either end; where a window holds too few words for that to be exact (a
    long unbroken token), the whole text is split.
    """
    count = len(masked)
    chars = pc.utf8_length(masked).to_numpy(zero_copy_only=False)
    wide = np.flatnonzero(chars > 2 * END_CHARS)
    if len(wide):
        chosen = pc.take(masked, pa.array(wide))
        heads = pc.utf8_split_whitespace(pc.utf8_lower(pc.utf8_slice_codeunits(
            chosen, 0, END_CHARS)))
        tails = pc.utf8_split_whitespace(pc.utf8_lower(pc.utf8_slice_codeunits(
            chosen, -END_CHARS)))
        head_offsets, tail_offsets = list_offsets(heads), list_offsets(tails)
        # A window's first (head) or last (tail) EDGE_WORDS are whole words when one more
        # token follows (precedes) them inside the window; the text then has more than
        # 2 * EDGE_WORDS words, as the two windows do not overlap.
        exact = (np.diff(head_offsets) > EDGE_WORDS) & (np.diff(tail_offsets) > EDGE_WORDS)
    else:
        exact = np.zeros(0, dtype=bool)
    whole_rows = np.ones(count, dtype=bool)
    whole_rows[wide[exact]] = False
    whole_rows = np.flatnonzero(whole_rows)
    whole = pc.utf8_split_whitespace(pc.utf8_lower(
        masked if len(whole_rows) == count else pc.take(masked, pa.array(whole_rows))))
    whole_offsets = list_offsets(whole)
    whole_lengths = np.diff(whole_offsets)

    # Per text two runs of the concatenated (whole, heads, tails) words: (start_a, length_a)
    # then (start_b, length_b).
    start_a = np.zeros(count, dtype=np.int64)
    start_b = np.zeros(count, dtype=np.int64)
    length_a = np.zeros(count, dtype=np.int64)
    length_b = np.zeros(count, dtype=np.int64)
    long = np.zeros(count, dtype=bool)
    long[whole_rows] = whole_lengths > 2 * EDGE_WORDS
    cut = long[whole_rows]
    start_a[whole_rows] = whole_offsets[:-1]
    length_a[whole_rows] = np.where(cut, EDGE_WORDS, whole_lengths)
    start_b[whole_rows] = whole_offsets[1:] - EDGE_WORDS
    length_b[whole_rows] = np.where(cut, EDGE_WORDS, 0)
    pieces = [flat_values(whole)]
    if len(wide):
        rows = wide[exact]
        long[rows] = True
        start_a[rows] = whole_offsets[-1] + head_offsets[:-1][exact]
        length_a[rows] = EDGE_WORDS
        start_b[rows] = whole_offsets[-1] + head_offsets[-1] + tail_offsets[1:][exact] - EDGE_WORDS
        length_b[rows] = EDGE_WORDS
        pieces += [flat_values(heads), flat_values(tails)]
    lengths = length_a + length_b
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    row = np.repeat(np.arange(count), lengths)
    index = positions(offsets)
    gather = np.where(index < length_a[row], start_a[row] + index,
                      start_b[row] + index - length_a[row])
    values = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
    return pc.take(values, pa.array(gather)), offsets, long


def _edge_words(offsets: np.ndarray, long: np.ndarray, marker: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the end words of each text (``_end_words``) for a one-line frame: every
    word, with one ``marker`` index (-1) between the head and the tail of a long text."""
    lengths = np.diff(offsets)
    index = positions(offsets)
    row = np.repeat(np.arange(len(lengths)), lengths)
    chosen = np.arange(offsets[0], offsets[-1], dtype=np.int64)
    # Insert the marker after the head of every long text.
    at = np.flatnonzero(long[row] & (index == EDGE_WORDS - 1))
    out = np.insert(chosen, at + 1, marker)
    out_row = np.insert(row, at + 1, row[at])
    counts = np.bincount(out_row, minlength=len(lengths))
    return out, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _minhash(tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(rows, NUM_PERM) MinHash signatures of each row's tokens, each distinct set once.

    Templated traffic repeats the same frame, so rows are grouped by an order-free hash of
    their tokens and rensa digests one row per group.
    """
    rows = len(offsets) - 1
    with np.errstate(over="ignore"):
        mixed = np.concatenate([[np.uint64(0)], np.cumsum(mix(tokens), dtype=np.uint64)])
        set_hash = (mixed[offsets[1:]] - mixed[offsets[:-1]]) ^ np.diff(offsets).astype(
            np.uint64)
    _, first, inverse = np.unique(set_hash, return_index=True, return_inverse=True)
    lengths = np.diff(offsets)[first]
    unique_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    gather = np.repeat(offsets[first], lengths) + positions(unique_offsets)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        tokens[gather], unique_offsets.astype(np.uint64), NUM_PERM, MINHASH_SEED)
    unique = np.asarray(matrix.to_rows(), dtype=np.uint64).reshape(len(first), NUM_PERM)
    return unique[inverse.reshape(rows)]


def sketch_columns(prompts: pa.Array, key: bytes, masked: pa.Array | None = None,
                   excerpt: bool = True) -> SketchColumns:
    """Sketches of a batch of prompts (``masked``: ``mask_texts(prompts)`` if at hand;
    ``excerpt``: False leaves out the excerpts, which only reports read)."""
    count = len(prompts)
    masked = mask_texts(prompts) if masked is None else masked
    skeleton = skeletons(masked)
    line_offsets = list_offsets(skeleton)
    lines = flat_values(skeleton)
    line_row = np.repeat(np.arange(count), np.diff(line_offsets))
    frame = pc.not_equal(lines, PAYLOAD).to_numpy(zero_copy_only=False)

    # Frame lines: every skeleton line but payload, for prompts with two or more.
    frame_count = np.bincount(line_row[frame], minlength=count)
    multi = frame & (frame_count[line_row] >= 2)
    line_tokens, line_owner = _line_shingles(lines.filter(pa.array(multi)), key)
    tokens_a, rows_a = line_tokens, line_row[multi][line_owner]

    # The words at either end of the masked prompt (lowercased): one-line frames, head, tail.
    words, offsets, long = _end_words(masked)
    lengths = np.diff(offsets)
    hashes = keyed_hashes(key, b"word", words, remember=True)
    single = np.flatnonzero(frame_count < 2)
    single_offsets = np.concatenate([[0], np.cumsum(lengths[single])]).astype(np.int64)
    gather = np.repeat(offsets[single], lengths[single]) + positions(single_offsets)
    marker_hash = keyed_hashes(key, b"word", pa.array([PAYLOAD.lower()]))
    pool = np.concatenate([hashes[gather], marker_hash])
    picked, picked_offsets = _edge_words(single_offsets, long[single], marker=len(pool) - 1)
    edge_tokens, edge_owner = _shingles(pool[picked], picked_offsets,
                                        domain_constant(key, b"shingle"))
    tokens = np.concatenate([tokens_a, edge_tokens])
    owners = np.concatenate([rows_a, single[edge_owner]])
    order = np.argsort(owners, kind="stable")
    tokens, owners = tokens[order], owners[order]
    token_offsets = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=count))])
    signatures = _minhash(tokens, token_offsets)
    band_keys = np.empty((count, BANDS), dtype=np.int64)
    with np.errstate(over="ignore"):
        for band in range(BANDS):
            block = signatures[:, band * ROWS:(band + 1) * ROWS]
            value = domain_constant(key, b"band" + bytes([band]))
            for column in range(ROWS):
                value = mix(value ^ (block[:, column] + np.uint64(column + 1) * np.uint64(
                    0x9E3779B97F4A7C15)))
            band_keys[:, band] = as_signed(value)

    # Scaffold lines: distinct hashes of the frame lines long enough to be specific.
    scaffold = frame & pc.greater_equal(pc.utf8_length(lines), MIN_LINE_CHARS).to_numpy(
        zero_copy_only=False)
    line_hashes = as_signed(keyed_hashes(key, b"line", lines.filter(pa.array(scaffold)),
                                            remember=True))
    owner = line_row[scaffold]
    order = np.lexsort((line_hashes, owner))
    owner, line_hashes = owner[order], line_hashes[order]
    first = np.r_[True, (owner[1:] != owner[:-1]) | (line_hashes[1:] != line_hashes[:-1])][
        :len(owner)]
    pairs = np.stack([owner[first], line_hashes[first]])
    per_row = np.bincount(pairs[0], minlength=count)
    line_lists = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)),
        pa.array(pairs[1], pa.int64()))

    head_offsets = np.concatenate([[0], np.cumsum(np.minimum(lengths, HEAD_WORDS))])
    head_index = np.repeat(offsets[:-1] - offsets[0], np.minimum(lengths, HEAD_WORDS)) + \
        positions(head_offsets)
    tail_len = np.minimum(lengths, TAIL_WORDS)
    tail_offsets = np.concatenate([[0], np.cumsum(tail_len)])
    tail_index = np.repeat(offsets[1:] - offsets[0] - tail_len, tail_len) + positions(
        tail_offsets)
    head = sequence_hashes(hashes[head_index], head_offsets, domain_constant(key, b"head"))
    tail = sequence_hashes(hashes[tail_index], tail_offsets, domain_constant(key, b"tail"))
    return SketchColumns(band_keys, line_lists, as_signed(head), as_signed(tail),
                         excerpts(skeleton) if excerpt else None)


@dataclass(frozen=True)
class Sketch:
    """Keyed fingerprints of one prompt's frame (see ``SketchColumns``)."""

    band_keys: tuple[int, ...]
    line_hashes: tuple[int, ...]
    head_key: int
    tail_key: int
    excerpt: str


def sketch_many(texts: Sequence[str], key: bytes) -> list[Sketch]:
    """Sketches of many prompts at once."""
    columns = sketch_columns(pa.array(list(texts), pa.string()), key)
    lines = columns.line_hashes.to_pylist()
    return [Sketch(tuple(int(v) for v in columns.band_keys[i]), tuple(lines[i]),
                   int(columns.head_key[i]), int(columns.tail_key[i]),
                   columns.excerpt[i].as_py()) for i in range(len(texts))]


def band_overlap(a: Sketch, b: Sketch) -> float:
    """Share of bands two sketches agree on (a noisy estimate of frame similarity)."""
    return sum(x == y for x, y in zip(a.band_keys, b.band_keys, strict=True)) / BANDS
