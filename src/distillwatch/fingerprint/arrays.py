"""Column helpers for fingerprinting a batch at a time: keyed hashes, mixing, list segments.

Fingerprinting runs on every exchange, so it works on Arrow columns and numpy arrays, never
row by row: text kernels are Arrow's (RE2 regular expressions, UTF-8 splitting), arithmetic
is numpy's. Strings are hashed once per distinct value in a batch (templates repeat, so a
batch holds far fewer distinct lines and words than rows) with keyed BLAKE2b; everything
derived from those hashes (shingles, band keys, sequences) is mixed in numpy. So every stored
fingerprint depends on the provider's key, and none can be computed without it.

Example:
    >>> import pyarrow as pa
    >>> hashes = keyed_hashes(b"k" * 16, b"line", pa.array(["a", "b", "a"]))
    >>> bool(hashes[0] == hashes[2] != hashes[1])
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def keyed_hash(key: bytes, *parts: str | bytes) -> int:
    """A signed 64-bit keyed hash of ``parts`` (BLAKE2b; fits BIGINT in every engine)."""
    digest = hashlib.blake2b(digest_size=8, key=key)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8", "replace"))
        digest.update(b"\x1f")
    return int.from_bytes(digest.digest(), "little", signed=True)


@dataclass(frozen=True)
class Distinct:
    """A string column as its distinct values and, per row, which one it holds (-1: null).

    Long strings that repeat (system prompts, tool definitions) are then scanned and hashed
    once per batch instead of once per row.
    """

    values: pa.Array
    index: np.ndarray

    @classmethod
    def of(cls, strings: pa.Array) -> Distinct:
        encoded = pc.dictionary_encode(strings)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        return cls(encoded.dictionary, _numpy_index(encoded.indices))

    def per_row(self, per_value: np.ndarray, missing: object) -> np.ndarray:
        """``per_value[i]`` for every row holding value ``i``; ``missing`` for nulls."""
        per_value = np.asarray(per_value)
        if not len(per_value):
            return np.full(len(self.index), missing, dtype=per_value.dtype)
        out = per_value[np.maximum(self.index, 0)]
        out[self.index < 0] = missing
        return out


def _numpy_index(indices: pa.Array) -> np.ndarray:
    return pc.fill_null(indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


# Words, lines and tool definitions repeat from batch to batch, so their hashes are kept in
# the process (per key and domain) for the next batch: up to this many per domain, then all
# forgotten at once.
REMEMBERED = 1 << 18
_remembered: dict[tuple, dict[bytes | None, int]] = {}


def hash_values(key: bytes, domain: bytes, values: pa.Array,
                transform: Callable[[bytes], bytes] | None = None,
                remember: bool = False) -> np.ndarray:
    """``keyed_hash(key, domain, v)`` of each value (uint64), from the UTF-8 bytes in the Arrow
    buffer; ``transform`` rewrites each value's bytes first. ``remember`` keeps the hashes
    for later calls (for values that recur across batches)."""
    prefix = hashlib.blake2b(digest_size=8, key=key)
    prefix.update(domain)
    prefix.update(b"\x1f")

    def one(data: bytes | None) -> int:
        digest = prefix.copy()
        data = data or b""
        digest.update(transform(data) if transform else data)
        digest.update(b"\x1f")
        return int.from_bytes(digest.digest(), "little")

    data = values.cast(pa.binary()).to_pylist()
    if remember:
        known = _remembered.setdefault((key, domain, transform), {})
        if len(known) > REMEMBERED:
            known.clear()
        # Most values are known: look them all up at C speed, then hash the others.
        found = list(map(known.get, data))
        for index in [i for i, value in enumerate(found) if value is None]:
            value = data[index]
            found[index] = known[value] = one(value)
        return np.fromiter(found, dtype=np.uint64, count=len(data))
    return np.fromiter(map(one, data), dtype=np.uint64, count=len(data))


def keyed_hashes(key: bytes, domain: bytes, strings: pa.Array,
                 transform: Callable[[bytes], bytes] | None = None,
                 remember: bool = False) -> np.ndarray:
    """``keyed_hash(key, domain, s)`` of every string, as uint64; nulls hash like ``""``.

    Each distinct string is hashed once (``remember``: see ``hash_values``).
    """
    if len(strings) == 0:
        return np.zeros(0, dtype=np.uint64)
    distinct = Distinct.of(strings)
    empty = hash_values(key, domain, pa.array([""]), remember=remember)[0]
    return distinct.per_row(hash_values(key, domain, distinct.values, transform, remember),
                            empty)


def domain_constant(key: bytes, domain: bytes) -> np.uint64:
    """A keyed 64-bit constant that separates one kind of fingerprint from the others."""
    return np.uint64(keyed_hash(key, b"domain", domain) & 0xFFFF_FFFF_FFFF_FFFF)


def mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijective avalanche of uint64 values."""
    with np.errstate(over="ignore"):
        x = values ^ (values >> _S30)
        x = x * _M1
        x = x ^ (x >> _S27)
        x = x * _M2
        return x ^ (x >> _S31)


def positions(offsets: np.ndarray) -> np.ndarray:
    """Index of each element within its segment, for segments given by ``offsets``."""
    lengths = np.diff(offsets)
    starts = np.repeat(offsets[:-1], lengths)
    return np.arange(offsets[-1] - offsets[0], dtype=np.int64) + offsets[0] - starts


def sequence_hashes(values: np.ndarray, offsets: np.ndarray, seed: np.uint64) -> np.ndarray:
    """One order-sensitive hash per segment of ``values`` (uint64); empty segments get one too.

    Element ``i`` of a segment contributes ``mix(value + (i + 1) * golden)``; the segment's
    sum, with its length and ``seed``, is mixed again.
    """
    lengths = np.diff(offsets).astype(np.uint64)
    if len(values):
        with np.errstate(over="ignore"):
            index = positions(offsets).astype(np.uint64) + np.uint64(1)
            terms = mix(values[offsets[0]:offsets[-1]] + index * _GOLDEN)
            total = np.concatenate([[np.uint64(0)], np.cumsum(terms, dtype=np.uint64)])
            local = offsets - offsets[0]
            sums = total[local[1:]] - total[local[:-1]]
    else:
        sums = np.zeros(len(lengths), dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix(sums ^ mix(lengths + seed))


def list_offsets(array: pa.ListArray) -> np.ndarray:
    """The offsets of a list array as int64, from 0 (they index ``flat_values``)."""
    offsets = array.offsets.to_numpy().astype(np.int64)
    return offsets - offsets[0]


def flat_values(array: pa.ListArray) -> pa.Array:
    """The child values a list array's offsets index (its ``values``, sliced as offset)."""
    offsets = array.offsets.to_numpy()
    return array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def as_signed(values: np.ndarray) -> np.ndarray:
    """uint64 hashes as int64 (BIGINT), bit for bit."""
    return values.view(np.int64)


def whole(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array: its only chunk as it is (``combine_chunks`` copies even one)."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def texts(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A string column as one array with nulls as empty strings."""
    array = whole(array)
    if pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    return pc.fill_null(array, "") if array.null_count else array
