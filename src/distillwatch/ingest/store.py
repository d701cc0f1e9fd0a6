"""Append fingerprinted exchanges to the engine's store, once each, on every core, crash-safe.

The store holds:
- ``features`` (FEATURES_SCHEMA): one row per stored exchange, unique on ``exchange_id``;
- ``features_staging``: rows of the run in progress, committed chunk by chunk;
- ``ingested_files``: each input file fully read (path, size, mtime), so a file given again
  is skipped without reading it;
- ``store_meta``: the fingerprint version the store was written with.

A run appends each chunk's features to the staging table as it arrives (one statement per
chunk: a run killed mid-way keeps every chunk committed), then merges staging into
``features`` in one statement that keeps the first row of every new ``exchange_id``.
A staging table left by a killed run is merged by the next ingest or scan, so nothing
ingested is lost and nothing is stored twice.

Chunks are validated and fingerprinted by worker processes (``ingest/batches.py``); the main
process reads JSONL (it owns the decompression), stores and writes rejects.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.engine import Engine, EngineFrame
from distillwatch.exceptions import DistillwatchInputError
from distillwatch.fingerprint.features import FEATURES_SCHEMA, FINGERPRINT_VERSION
from distillwatch.ingest.batches import BATCH_ROWS, Outcome, Task, run_task
from distillwatch.ingest.readers import FileStats, detect_format, input_files
from distillwatch.ingest.rejects import RejectSink
from distillwatch.io.exchange_files import iter_lines
from distillwatch.workers import cores, watch_parent

logger = logging.getLogger(__name__)

FEATURES_TABLE = "features"
STAGING_TABLE = "features_staging"
FILES_TABLE = "ingested_files"
META_TABLE = "store_meta"
BATCH_SIZE = BATCH_ROWS
# Below this much input, worker processes cost more to start than they save.
POOL_MIN_BYTES = 16 * 1024 * 1024


@dataclass
class IngestReport:
    """What an ingest run read, stored and rejected."""

    files: list[FileStats] = field(default_factory=list)
    stored: int = 0
    already_stored: int = 0
    recovered: int = 0

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)


def ensure_store(engine: Engine) -> EngineFrame:
    """Create the store's tables where missing, and check an existing store can be used.

    Raises:
        DistillwatchInputError: If the store was written by another version of the features.
    """
    empty = FEATURES_SCHEMA.empty_table()
    engine.register("__dw__features_template", empty)
    engine.execute(f"CREATE TABLE IF NOT EXISTS {FEATURES_TABLE} AS "
                   "SELECT * FROM __dw__features_template WHERE false", "create store")
    engine.execute(f"CREATE TABLE IF NOT EXISTS {STAGING_TABLE} AS SELECT *, "
                   "CAST(0 AS BIGINT) AS seq, CAST('' AS VARCHAR) AS source, "
                   "CAST('' AS VARCHAR) AS location FROM __dw__features_template WHERE false",
                   "create staging")
    engine.drop(engine.frame("__dw__features_template"))
    engine.execute(f"CREATE TABLE IF NOT EXISTS {FILES_TABLE} (source VARCHAR, size BIGINT, "
                   "mtime_ns BIGINT, accepted BIGINT, rejected BIGINT, read BIGINT)",
                   "create file log")
    engine.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (name VARCHAR, value VARCHAR)",
                   "create store metadata")
    source = str(getattr(engine, "path", ""))
    columns = engine.fetch_arrow(f"SELECT * FROM {FEATURES_TABLE} LIMIT 0").schema.names
    if columns != FEATURES_SCHEMA.names:
        raise DistillwatchInputError(
            f"The store's '{FEATURES_TABLE}' table was written by another version of "
            f"distillwatch (columns differ: {sorted(set(columns) ^ set(FEATURES_SCHEMA.names))});"
            " ingest the logs into a new store file", source=source)
    version = engine.fetch_arrow(
        f"SELECT value FROM {META_TABLE} WHERE name = 'fingerprint_version'").to_pylist()
    stored = engine.fetch_arrow(f"SELECT count(*) AS n FROM (SELECT 1 FROM {FEATURES_TABLE} "
                                "LIMIT 1)").to_pylist()[0]["n"]
    if version and version[0]["value"] != str(FINGERPRINT_VERSION) or (not version and stored):
        found = version[0]["value"] if version else "1"
        raise DistillwatchInputError(
            f"The store's fingerprints are version {found}; this distillwatch writes version "
            f"{FINGERPRINT_VERSION}, and the two cannot be compared. Ingest the logs into a new "
            "store file", source=source)
    if not version:
        engine.execute(f"INSERT INTO {META_TABLE} VALUES "
                       f"('fingerprint_version', '{FINGERPRINT_VERSION}')", "store metadata")
    return engine.adopt(FEATURES_TABLE)


def _count(engine: Engine, table: str) -> int:
    return engine.fetch_arrow(f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"]


def merge_staging(engine: Engine, rejects: RejectSink | None = None
                  ) -> tuple[int, int, Counter[str]]:
    """Move staged rows into ``features``: the first row of each new exchange id.

    Returns:
        (stored, already stored, duplicates per source): rows added, staged rows whose id was
        stored before, and repeats of an id within the staged rows (each also written to
        ``rejects``).
    """
    staged = _count(engine, STAGING_TABLE)
    if not staged:
        return 0, 0, Counter()
    before = _count(engine, FEATURES_TABLE)
    columns = ", ".join(FEATURES_SCHEMA.names)
    ranked = (f"SELECT *, row_number() OVER (PARTITION BY exchange_id ORDER BY seq) AS rank "
              f"FROM {STAGING_TABLE}")
    duplicates = engine.fetch_arrow(
        f"SELECT source, location, exchange_id FROM ({ranked}) WHERE rank > 1 "
        "ORDER BY seq", "staged duplicates")
    engine.execute("BEGIN TRANSACTION", "merge")
    try:
        engine.execute(
            f"INSERT INTO {FEATURES_TABLE} SELECT {columns} FROM ({ranked}) s WHERE rank = 1 "
            f"AND NOT EXISTS (SELECT 1 FROM {FEATURES_TABLE} f "
            "WHERE f.exchange_id = s.exchange_id)", "merge staged features")
        engine.execute(f"DELETE FROM {STAGING_TABLE}", "clear staging")
        engine.execute("COMMIT", "merge")
    except BaseException:
        engine.execute("ROLLBACK", "merge")
        raise
    per_source: Counter[str] = Counter()
    for row in duplicates.to_pylist():
        per_source[row["source"]] += 1
        if rejects is not None:
            rejects.add(row["source"], row["location"],
                        f"duplicate exchange_id {row['exchange_id']!r}", "exchange_id")
    stored = _count(engine, FEATURES_TABLE) - before
    return stored, staged - duplicates.num_rows - stored, per_source


def _file_identity(path: Path) -> tuple[str, int, int]:
    """(path as an SQL string literal's content, size, mtime): what tells a file read before."""
    if path.is_dir():
        parts = sorted(path.glob("part-*.parquet"))
        return (str(path).replace("'", "''"), sum(p.stat().st_size for p in parts),
                max((p.stat().st_mtime_ns for p in parts), default=0))
    stat = path.stat()
    return str(path).replace("'", "''"), stat.st_size, stat.st_mtime_ns


def _already_ingested(engine: Engine, path: Path) -> dict | None:
    source, size, mtime = _file_identity(path)
    rows = engine.fetch_arrow(
        f"SELECT accepted, rejected, read FROM {FILES_TABLE} WHERE source = '{source}' "
        f"AND size = {size} AND mtime_ns = {mtime}").to_pylist()
    return rows[0] if rows else None


def _log_file(engine: Engine, path: Path, stats: FileStats) -> None:
    source, size, mtime = _file_identity(path)
    engine.execute(f"DELETE FROM {FILES_TABLE} WHERE source = '{source}'", "file log")
    engine.execute(f"INSERT INTO {FILES_TABLE} VALUES ('{source}', {size}, {mtime}, "
                   f"{stats.accepted}, {stats.rejected}, {stats.read})", "file log")


def _tasks(path: Path, fmt: str | None, stats: FileStats, rejects: RejectSink,
           since: datetime | None = None) -> Iterator[Task]:
    """The chunks of one input file; JSONL is read here, Parquet by the workers."""
    if (fmt or detect_format(path)) == "exchange_parquet":
        parts = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
        for part in parts:
            try:
                groups = pq.ParquetFile(part).metadata.num_row_groups
            except (OSError, pa.ArrowException) as error:
                stats.rejected += 1
                rejects.add(stats.source, part.name, f"not a readable Parquet file: {error}")
                continue
            for group in range(groups):
                yield Task(str(part), "parquet", row_group=group, since=since)
        return
    import zlib

    import zstandard

    lines: list[tuple[int, bytes]] = []
    number = 0
    try:
        for number, line in enumerate(iter_lines(path), start=1):
            if line.strip():
                lines.append((number, line.rstrip(b"\r\n")))
                if len(lines) >= BATCH_ROWS:
                    yield Task(str(path), "jsonl", lines=tuple(lines), since=since)
                    lines = []
    except (EOFError, zlib.error, zstandard.ZstdError, OSError) as error:
        stats.truncated_stream = True
        stats.rejected += 1
        rejects.add(stats.source, f"after line {number}",
                    f"compressed stream is truncated or corrupt: {error}; the records "
                    "before it were kept")
        logger.warning("%s: truncated after line %d (%s)", path, number, error)
    if lines:
        yield Task(str(path), "jsonl", lines=tuple(lines), since=since)


# An item of the task stream: a chunk to run, or (task None) a marker passed through in order.
Item = tuple[object, Task | None]


class _Runner:
    """Runs tasks in order: inline, or in worker processes with a bounded queue."""

    def __init__(self, key: bytes, workers: int) -> None:
        self.key = key
        self.pool = (ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                         initializer=watch_parent, initargs=(os.getpid(),))
                     if workers > 1 else None)
        self.window = 2 * workers

    def map(self, items: Iterator[Item]) -> Iterator[tuple[object, Outcome | None]]:
        """(tag, outcome) of every item, in the order given; a marker's outcome is None.

        The stream runs across files, so the workers are kept busy when each file is one
        chunk (a Parquet dataset of 100k-row parts was fingerprinted one part at a time, on
        one core).
        """
        if self.pool is None:
            for tag, task in items:
                yield tag, None if task is None else run_task(task, self.key)
            return
        pending: deque[tuple[object, Future | None]] = deque()
        running = 0
        for tag, task in items:
            future = None if task is None else self.pool.submit(run_task, task, self.key)
            pending.append((tag, future))
            running += future is not None
            while pending and (pending[0][1] is None or running >= self.window):
                done_tag, done = pending.popleft()
                if done is not None:
                    running -= 1
                yield done_tag, None if done is None else done.result()
        while pending:
            done_tag, done = pending.popleft()
            yield done_tag, None if done is None else done.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _stage(engine: Engine, outcome: Outcome, source: str, seq: int) -> None:
    features = outcome.features
    count = features.num_rows
    if not count:
        return
    staged = features.append_column("seq", pa.array(range(seq, seq + count), pa.int64())) \
        .append_column("source", pa.array([source] * count, pa.string())) \
        .append_column("location", pa.array(outcome.locations, pa.string()))
    engine.append(STAGING_TABLE, staged)


def default_workers() -> int:
    """Worker processes for fingerprinting: one per core."""
    return cores()


def ingest(engine: Engine, paths: Sequence[Path], rejects: RejectSink, key: bytes,
           fmt: str | None = None, batch_size: int | None = None,
           progress: Callable[[str, int], None] | None = None,
           workers: int | None = None, since: datetime | None = None) -> IngestReport:
    """Read, validate, fingerprint and store every exchange of ``paths``.

    Args:
        engine: Holds the store.
        paths: Files or folders.
        rejects: Where unreadable records go.
        key: The fingerprint key.
        fmt: Force a format (default: detected per file).
        batch_size: Unused; chunks hold ``BATCH_ROWS`` records (kept for callers).
        progress: Called after each chunk with the file and the records read from it.
        workers: Fingerprinting processes (default: one per core; small inputs run inline).
        since: Read only exchanges from this instant on: older ones are counted and skipped
            without being fingerprinted (they are in the store from an earlier ingest).
    """
    ensure_store(engine)
    report = IngestReport()
    recovered, _, _ = merge_staging(engine, rejects)
    if recovered:
        logger.warning("merged %d exchanges staged by an interrupted ingest", recovered)
        report.recovered = recovered
    files = input_files(list(paths))
    size = sum(_file_identity(p)[1] for p in files)
    chosen = workers if workers is not None else default_workers()
    runner = _Runner(key, chosen if size >= POOL_MIN_BYTES else 1)
    def items() -> Iterator[Item]:
        """Every file's chunks, then a marker for the file (its end), one file after another."""
        for path in files:
            done = _already_ingested(engine, path) if since is None else None
            if done is not None:
                report.files.append(FileStats(str(path), read=done["read"],
                                              accepted=done["accepted"], skipped=True))
                report.already_stored += done["accepted"]
                continue
            stats = FileStats(str(path))
            report.files.append(stats)
            for task in _tasks(path, fmt, stats, rejects, since):
                yield stats, task
            yield (stats, path), None

    seq = 0
    try:
        for tag, outcome in runner.map(items()):
            if outcome is None:  # every chunk of the file is staged
                stats, path = tag
                rejects.flush()
                if since is None:  # a file read in part (--since) is not marked as read
                    _log_file(engine, path, stats)
                continue
            stats = tag
            _stage(engine, outcome, stats.source, seq)
            seq += outcome.features.num_rows
            stats.read += outcome.read
            stats.accepted += outcome.features.num_rows
            stats.capped += outcome.capped
            stats.before_since += outcome.before_since
            stats.rejected += len(outcome.rejects)
            for location, reason, field_name, raw in outcome.rejects:
                rejects.add(stats.source, location, reason, field_name, raw)
            if progress is not None:
                progress(stats.source, stats.read)
    finally:
        runner.close()
    stored, already, duplicates = merge_staging(engine, rejects)
    report.stored, report.already_stored = stored, report.already_stored + already
    for stats in report.files:
        stats.duplicates = duplicates.get(stats.source, 0)
        stats.rejected += stats.duplicates
        stats.accepted -= stats.duplicates
    return report
