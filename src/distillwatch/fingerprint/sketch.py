"""Scaffold sketches: keyed fingerprints of a prompt's frame that survive variable payloads.

Whole-prompt similarity fails on templates whose payload is long: the frame is a small part of
the text. So the sketch is built from the *frame* only — the masked skeleton's short lines, or,
for one-paragraph prompts, the words around the payload — as word shingles, summarised by
MinHash and cut into locality-sensitive band keys. Two prompts built on one frame share band
keys even when the payloads differ entirely.

Every hash is keyed (BLAKE2b with the provider's key), so fingerprints can be shared with
partners holding the same key without revealing text, and mean nothing to anyone else.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from rensa import RMinHash

from distillwatch.fingerprint.masking import mask, masked_excerpt, skeleton_lines

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
SHINGLE = 3
EDGE_WORDS = 12
MINHASH_SEED = 1729
_U32 = struct.Struct(f"<{ROWS}I")


def keyed_hash(key: bytes, *parts: str | bytes) -> int:
    """A signed 64-bit keyed hash (fits BIGINT in every engine)."""
    digest = hashlib.blake2b(digest_size=8, key=key)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8", "replace"))
        digest.update(b"\x1f")
    return int.from_bytes(digest.digest(), "little", signed=True)


def frame_tokens(text: str, masked: str | None = None,
                 skeleton: list[str] | None = None) -> list[str]:
    """Word shingles of the frame: skeleton lines without payload, or a paragraph's edges."""
    masked = mask(text) if masked is None else masked
    skeleton = skeleton_lines(text, masked) if skeleton is None else skeleton
    lines = [line for line in skeleton if line != "<TEXT>"]
    if len(lines) <= 1:
        words = masked.split()
        if len(words) > 2 * EDGE_WORDS:
            words = [*words[:EDGE_WORDS], "<TEXT>", *words[-EDGE_WORDS:]]
        lines = [" ".join(words)]
    tokens = []
    for line in lines:
        words = line.lower().split()
        if len(words) < SHINGLE:
            tokens.append(" ".join(words))
        tokens += [" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)]
    return tokens or ["<EMPTY>"]


HEAD_WORDS = 8
TAIL_WORDS = 6


@dataclass(frozen=True)
class Sketch:
    """Keyed fingerprints of one prompt's frame.

    Attributes:
        band_keys: LSH band keys of the frame's MinHash (shared frames share most bands).
        line_hashes: Hashes of the skeleton's short lines (scaffold lines).
        head_key: Hash of the first words of the masked prompt (an inline frame's opening).
        tail_key: Hash of its last words (an inline frame's closing instruction).
        excerpt: The masked skeleton, shortened: what a report may show.
    """

    band_keys: tuple[int, ...]
    line_hashes: tuple[int, ...]
    head_key: int
    tail_key: int
    excerpt: str


def sketch_many(texts: Sequence[str], key: bytes) -> list[Sketch]:
    """Sketches of many prompts at once (MinHash in bulk)."""
    masked = [mask(text) for text in texts]
    skeletons = [skeleton_lines(text, m) for text, m in zip(texts, masked, strict=True)]
    token_sets = [frame_tokens(t, m, s) for t, m, s in zip(texts, masked, skeletons, strict=True)]
    rows = RMinHash.digest_matrix_from_token_sets(token_sets, num_perm=NUM_PERM,
                                                  seed=MINHASH_SEED).to_rows()
    sketches = []
    for text, signature, masked_text, skeleton in zip(texts, rows, masked, skeletons,
                                                      strict=True):
        bands = tuple(
            keyed_hash(key, b"band", bytes([band]), _U32.pack(*signature[band * ROWS:
                                                                      (band + 1) * ROWS]))
            for band in range(BANDS)
        )
        lines = tuple(sorted({keyed_hash(key, b"line", line) for line in skeleton
                              if line != "<TEXT>" and len(line) >= 12}))
        words = masked_text.lower().split()
        sketches.append(Sketch(bands, lines,
                               keyed_hash(key, b"head", " ".join(words[:HEAD_WORDS])),
                               keyed_hash(key, b"tail", " ".join(words[-TAIL_WORDS:])),
                               masked_excerpt(text, lines=skeleton)))
    return sketches


def band_overlap(a: Sketch, b: Sketch) -> float:
    """Share of bands two sketches agree on (a noisy estimate of frame similarity)."""
    return sum(x == y for x, y in zip(a.band_keys, b.band_keys, strict=True)) / BANDS
