"""One unit of ingest work: a chunk of a log file in, fingerprinted features and rejects out.

A *task* names a chunk — a Parquet row group (read by the worker itself) or a list of JSONL
lines (read by the main process, which owns the decompression). ``run_task`` is a pure
function of its task, so worker processes run them on every core while the main process only
reads and stores.

Each chunk takes the fast path when it can: Arrow parses the whole chunk in the Exchange
Arrow layout (``io/arrow_layout.py``) and checks it column by column. Rows the fast path
cannot take — invalid records, provider log lines, content given as a list of parts, another
Parquet layout, over-long messages — go through the record path one by one
(``readers.accept``), which names the record and the reason for every reject.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from distillwatch.fingerprint.arrays import whole
from distillwatch.fingerprint.features import FEATURES_SCHEMA, features_from_arrow
from distillwatch.ingest.validate import MAX_MESSAGE_CHARS, OPERATIONS, ROLES
from distillwatch.io.arrow_layout import EXCHANGE_ARROW_SCHEMA, timestamps, to_arrow

# RFC 3339 date-time with a UTC offset (what ``validate.parse_timestamp`` accepts for sure).
_RFC3339 = (r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
            r"(?:[Zz]|[+-]\d{2}:?\d{2})$")
# Rows fingerprinted at a time: large enough that per-call overheads vanish, small enough
# that a worker's memory stays near 1 GB. (Each distinct prompt of a batch is fingerprinted
# once; on `stress`, 50,000 rows were 1.5-8 % faster per core than 20,000, for 0.6-0.8 GB
# more per worker: a two-worker ingest beside DuckDB's 5 GB reached 8.05 GB.)
BATCH_ROWS = 20_000
_PARSE = pajson.ParseOptions(explicit_schema=EXCHANGE_ARROW_SCHEMA,
                             unexpected_field_behavior="ignore")


@dataclass(frozen=True)
class Task:
    """A chunk of one input file.

    Attributes:
        source: The file, as reported in rejects.
        kind: ``parquet`` (``row_group`` of ``source``) or ``jsonl`` (``lines``).
        lines: (line number, raw line) pairs of a JSONL chunk.
        since: Skip (without fingerprinting) exchanges before this instant.
    """

    source: str
    kind: str
    row_group: int = 0
    lines: tuple[tuple[int, bytes], ...] = ()
    since: datetime | None = None


@dataclass
class Outcome:
    """What one task gave: features of its valid records, and the rest as rejects."""

    features: pa.Table
    locations: list[str]
    rejects: list[tuple[str, str, str | None, bytes]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # each feature row's index in the chunk
    read: int = 0
    capped: int = 0
    before_since: int = 0


def _valid_rows(table: pa.Table) -> np.ndarray:
    """Rows of a table in the Arrow layout that pass every Exchange check."""
    def present(column: pa.Array) -> np.ndarray:
        return pc.fill_null(pc.greater(pc.utf8_length(column), 0), False).to_numpy(
            zero_copy_only=False)

    ok = present(whole(table.column("exchange_id")))
    ok &= present(whole(table.column("account_id")))
    ok &= present(whole(table.column("model")))
    stamp = whole(table.column("timestamp"))
    ok &= pc.fill_null(pc.match_substring_regex(stamp, _RFC3339), False).to_numpy(
        zero_copy_only=False)
    operation = whole(table.column("operation"))
    ok &= pc.fill_null(pc.is_in(operation, pa.array(sorted(OPERATIONS))), True).to_numpy(
        zero_copy_only=False) | ~pc.is_valid(operation).to_numpy(zero_copy_only=False)
    request = whole(table.column("request"))
    messages = pc.struct_field(request, "messages")
    counts = pc.fill_null(pc.list_value_length(messages), 0).to_numpy(zero_copy_only=False)
    ok &= counts > 0
    offsets = messages.offsets.to_numpy().astype(np.int64)
    flat = messages.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    rows = np.repeat(np.arange(len(table)), np.diff(offsets))
    role_ok = pc.fill_null(pc.is_in(pc.struct_field(flat, "role"), pa.array(sorted(ROLES))),
                           False).to_numpy(zero_copy_only=False)
    content = pc.struct_field(flat, "content")
    content_ok = pc.is_valid(content).to_numpy(zero_copy_only=False)
    # Over-long messages are capped on the record path.
    content_ok &= pc.fill_null(pc.less_equal(pc.utf8_length(content), MAX_MESSAGE_CHARS),
                               True).to_numpy(zero_copy_only=False)
    bad = np.bincount(rows[~(role_ok & content_ok)], minlength=len(table))
    return ok & (bad == 0)


def _record_path(raws: list[tuple[int, str, bytes | dict]], outcome: Outcome,
                 since: datetime | None, key: bytes) -> list[dict]:
    from distillwatch.ingest.readers import accept
    from distillwatch.ingest.validate import parse_timestamp

    kept = []
    for row, location, raw in raws:
        record, problem = accept(raw, key)
        if problem is not None:
            outcome.rejects.append((location, problem[1], problem[0],
                                    raw if isinstance(raw, bytes) else orjson.dumps(
                                        raw, default=str)))
            continue
        if since is not None and parse_timestamp(record["timestamp"]) < since:
            outcome.before_since += 1
            continue
        if record.get("truncated"):
            outcome.capped += 1
        kept.append(record)
        outcome.locations.append(location)
        outcome.rows.append(row)
    return kept


def _features(fast: pa.Table | None, slow: list[dict], key: bytes) -> pa.Table:
    parts = []
    if fast is not None and fast.num_rows:
        parts.append(features_from_arrow(fast.combine_chunks(), key))
    if slow:
        parts.append(features_from_arrow(to_arrow(slow), key))
    if not parts:
        return FEATURES_SCHEMA.empty_table()
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def _conform(table: pa.Table) -> pa.Table | None:
    """The table in the Arrow layout, or None when its layout differs (the record path)."""
    try:
        return table.select(EXCHANGE_ARROW_SCHEMA.names).cast(EXCHANGE_ARROW_SCHEMA)
    except (KeyError, ValueError, pa.ArrowException):
        return None


def _split(table: pa.Table, names: list[str], outcome: Outcome, since: datetime | None
           ) -> tuple[pa.Table, list[int]]:
    """The valid rows of ``table`` from ``since`` on (their locations noted), and the indices
    of the rows for the record path."""
    valid = _valid_rows(table)
    good = np.flatnonzero(valid)
    if since is not None and len(good):
        stamps = timestamps(table.column("timestamp").take(pa.array(good)))
        recent = pc.greater_equal(stamps, pa.scalar(since, pa.timestamp("us", tz="UTC")))
        recent = recent.to_numpy(zero_copy_only=False)
        outcome.before_since += int((~recent).sum())
        good = good[recent]
    outcome.locations.extend(names[i] for i in good)
    outcome.rows.extend(good.tolist())
    return table.take(pa.array(good, pa.int64())), np.flatnonzero(~valid).tolist()


def process_table(table: pa.Table, names: list[str], key: bytes,
                  since: datetime | None = None) -> Outcome:
    """Validate and fingerprint rows read from a columnar file (Parquet, or Spark's batches).

    Args:
        table: Raw rows; in the Arrow layout they take the fast path.
        names: Each row's location, as rejects report it ("part-00003.parquet row 17").
        key: The fingerprint key.
        since: Skip (without fingerprinting) exchanges before this instant.
    """
    outcome = Outcome(FEATURES_SCHEMA.empty_table(), [], read=table.num_rows)
    conformed = _conform(table)
    if conformed is not None:
        fast, rest = _split(conformed, names, outcome, since)
    else:
        fast, rest = None, list(range(table.num_rows))
    rows = table.take(pa.array(rest, pa.int64())).to_pylist() if rest else []
    slow = _record_path([(i, names[i], row) for i, row in zip(rest, rows, strict=True)],
                        outcome, since, key)
    outcome.features = _features(fast, slow, key)
    return outcome


def _parquet(task: Task, key: bytes) -> Outcome:
    handle = pq.ParquetFile(task.source)
    start = sum(handle.metadata.row_group(i).num_rows for i in range(task.row_group))
    name = task.source.rsplit("/", 1)[-1]
    outcomes = []
    for batch in handle.iter_batches(batch_size=BATCH_ROWS, row_groups=[task.row_group]):
        names = [f"{name} row {start + i + 1}" for i in range(batch.num_rows)]
        start += batch.num_rows
        outcomes.append(process_table(pa.Table.from_batches([batch]), names, key, task.since))
    return _combine(outcomes)


def _combine(outcomes: list[Outcome]) -> Outcome:
    if len(outcomes) == 1:
        return outcomes[0]
    offsets = np.cumsum([0, *(o.read for o in outcomes)])
    return Outcome(
        features=pa.concat_tables([o.features for o in outcomes]) if outcomes
        else FEATURES_SCHEMA.empty_table(),
        locations=[name for o in outcomes for name in o.locations],
        rejects=[reject for o in outcomes for reject in o.rejects],
        rows=[int(start + row) for o, start in zip(outcomes, offsets, strict=False)
              for row in o.rows],
        read=sum(o.read for o in outcomes), capped=sum(o.capped for o in outcomes),
        before_since=sum(o.before_since for o in outcomes))


def _jsonl(task: Task, key: bytes) -> Outcome:
    outcome = Outcome(FEATURES_SCHEMA.empty_table(), [], read=len(task.lines))
    names = [f"line {number}" for number, _ in task.lines]
    try:
        table = pajson.read_json(io.BytesIO(b"\n".join(raw for _, raw in task.lines)),
                                 parse_options=_PARSE)
    except pa.ArrowException:
        table = None
    if table is not None and table.num_rows == len(task.lines):
        fast, rest = _split(table, names, outcome, task.since)
    else:
        fast, rest = None, list(range(len(task.lines)))
    slow = _record_path([(i, names[i], task.lines[i][1]) for i in rest], outcome, task.since,
                        key)
    outcome.features = _features(fast, slow, key)
    return outcome


def run_task(task: Task, key: bytes) -> Outcome:
    """Validate and fingerprint one chunk (runs in a worker process)."""
    try:
        return _parquet(task, key) if task.kind == "parquet" else _jsonl(task, key)
    finally:
        # Arrow keeps freed buffers for reuse; give them back so an idle worker is small.
        pa.default_memory_pool().release_unused()
