"""The evidence of the large tokens a compared pair shares, counted on the driver.

A token shared by more than ``max_block`` accounts is not paired sharer by sharer
(``pairs_sql``), but every pair that *is* compared has its evidence counted over every token
both accounts carry, large ones included. In SQL that is a join of the compared pairs with
both ends' large tokens: on the first 3.0M exchanges of ``stress`` (8.6M pairs, ~32 large
tokens an account) 126M joined rows and ~150 s. Here each kind's large tokens become one
bitset per account (``link.bitsets``), built once per scan, and a pair's shared tokens the AND
of its two rows: the count is a population count, the summed inverse document frequency a table
lookup per non-zero byte. The pairs come chunk by chunk (``link.compared``). The sums are
exact up to float rounding and do not depend on the order in which an engine returns rows
(tokens are numbered in sorted order), so every engine gets the same figures.

Only kinds whose strength is a sum of idf are counted here; the sign-up and activation bursts,
whose strength is the largest burst two accounts share, stay in SQL (an account has one such
token of each, so that join is small).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.link.bitsets import bit_rows

LARGE_SHARED_SCHEMA = pa.schema([
    ("ia", pa.int32()), ("ib", pa.int32()), ("kind", pa.string()), ("family", pa.string()),
    ("idf_sum", pa.float64()), ("burst", pa.float64()), ("tokens", pa.int64()),
])
_CHUNK_WORDS = 2 << 20  # bit-matrix words ANDed at once


def _byte_weights(weights: np.ndarray, words: int) -> np.ndarray:
    """(words * 8, 256): for byte ``j`` of a row and its value ``v``, the summed weight of the
    members whose bits ``v`` sets (member ``8 * j + i`` is bit ``i`` of byte ``j``)."""
    padded = np.zeros(words * 64)
    padded[:len(weights)] = weights
    per_bit = padded.reshape(words * 8, 8)
    values = np.arange(256)
    bits = (values[:, None] >> np.arange(8)) & 1  # (256, 8)
    return per_bit @ bits.T.astype(float)


def _shared(bits: np.ndarray, table: np.ndarray, left: np.ndarray, right: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (``left[k]``, ``right[k]``): how many members both rows hold, and their
    summed weight (``table``: ``_byte_weights``)."""
    counts = np.zeros(len(left), dtype=np.int64)
    sums = np.zeros(len(left))
    step = max(1, _CHUNK_WORDS // bits.shape[1])
    shifts = np.arange(0, 64, 8, dtype=np.uint64)
    for start in range(0, len(left), step):
        stop = min(start + step, len(left))
        anded = np.bitwise_and(bits[left[start:stop]], bits[right[start:stop]])
        counts[start:stop] = np.bitwise_count(anded).sum(axis=1, dtype=np.int64)
        rows, cols = np.nonzero(anded)
        if not len(rows):
            continue
        octets = ((anded[rows, cols][:, None] >> shifts) & np.uint64(0xFF)).astype(np.int64)
        weight = table[cols[:, None] * 8 + np.arange(8), octets].sum(axis=1)
        sums[start:stop] = np.bincount(rows, weights=weight, minlength=stop - start)
    return counts, sums


class LargeTokens:
    """Each kind's large tokens as one row of bits per account.

    Args:
        tokens: ``holder`` (the account's number, in ``[0, accounts)``), ``kind``,
            ``family``, ``token``, ``idf`` of the large tokens (one idf per token).
        accounts: How many accounts there are (rows of each bit matrix).
    """

    def __init__(self, tokens: pa.Table, accounts: int) -> None:
        holder = tokens["holder"].to_numpy().astype(np.int64)
        kinds = tokens["kind"].combine_chunks().cast(pa.string())
        values = tokens["token"].combine_chunks().cast(pa.string())
        idf = tokens["idf"].combine_chunks().to_numpy(zero_copy_only=False).astype(float)
        families = tokens["family"].combine_chunks().cast(pa.string())
        # (kind, family, bit rows, byte-weight table), kinds in sorted order.
        self.kinds: list[tuple[str, str, np.ndarray, np.ndarray]] = []
        for kind in sorted(pc.unique(kinds).to_pylist()):
            of_kind = np.flatnonzero(pc.equal(kinds, kind).to_numpy(zero_copy_only=False))
            chosen = pc.take(values, pa.array(of_kind))
            # Tokens numbered in sorted order, so sums never depend on the engine's row order.
            distinct = pc.unique(chosen)
            distinct = pc.take(distinct, pc.sort_indices(distinct))
            member = pc.index_in(chosen, value_set=distinct).to_numpy().astype(np.int64)
            weights = np.zeros(len(distinct))
            weights[member] = idf[of_kind]
            bits = bit_rows(holder[of_kind], member, accounts, len(distinct))
            self.kinds.append((kind, families[int(of_kind[0])].as_py(), bits,
                               _byte_weights(weights, bits.shape[1])))

    def evidence(self, left: np.ndarray, right: np.ndarray) -> pa.Table:
        """Per pair (``left[k]``, ``right[k]``: account numbers) and kind, the large tokens
        both accounts carry.

        Returns:
            ``ia``, ``ib`` (the pair), ``kind``, ``family``, ``idf_sum``, ``burst`` (0: not a
            burst kind), ``tokens`` (:data:`LARGE_SHARED_SCHEMA`), for the pairs sharing one
            or more tokens of the kind.
        """
        parts = [LARGE_SHARED_SCHEMA.empty_table()]
        for kind, family, bits, table in self.kinds:
            counts, sums = _shared(bits, table, left, right)
            hit = np.flatnonzero(counts > 0)
            parts.append(pa.table({
                "ia": pa.array(left[hit], pa.int32()), "ib": pa.array(right[hit], pa.int32()),
                # Built in Arrow: from a Python list, 0.6 s per 4M rows and column.
                "kind": pa.repeat(pa.scalar(kind, pa.string()), len(hit)),
                "family": pa.repeat(pa.scalar(family, pa.string()), len(hit)),
                "idf_sum": pa.array(sums[hit]), "burst": pa.array(np.zeros(len(hit))),
                "tokens": pa.array(counts[hit], pa.int64())}, schema=LARGE_SHARED_SCHEMA))
        return pa.concat_tables(parts)
