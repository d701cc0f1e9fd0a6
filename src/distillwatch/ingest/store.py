"""Append fingerprinted exchanges to the engine's store, idempotently on ``exchange_id``.

The store is a durable table ``features`` (FEATURES_SCHEMA). Each batch goes in as one
statement that skips ids already stored, so re-ingesting a file adds nothing, and a run killed
mid-way keeps every batch already committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from distillwatch.engine import Engine, EngineFrame
from distillwatch.exceptions import DistillwatchInputError
from distillwatch.fingerprint.features import FEATURES_SCHEMA, exchange_features
from distillwatch.ingest.readers import FileStats, input_files, read_exchanges
from distillwatch.ingest.rejects import RejectSink

FEATURES_TABLE = "features"
BATCH_SIZE = 5_000


@dataclass
class IngestReport:
    """What an ingest run read, stored and rejected."""

    files: list[FileStats] = field(default_factory=list)
    stored: int = 0
    already_stored: int = 0

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)


def _batches(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ensure_store(engine: Engine) -> EngineFrame:
    """Create the ``features`` table if the store does not have it yet.

    Raises:
        DistillwatchInputError: If the store holds a ``features`` table of another layout.
    """
    empty = pa.Table.from_pylist([], schema=FEATURES_SCHEMA)
    engine.register("__dw__features_template", empty)
    engine.execute(f"CREATE TABLE IF NOT EXISTS {FEATURES_TABLE} AS "
                   "SELECT * FROM __dw__features_template WHERE false", "create store")
    engine.drop(engine.frame("__dw__features_template"))
    frame = engine.adopt(FEATURES_TABLE)
    columns = engine.fetch_arrow(f"SELECT * FROM {FEATURES_TABLE} LIMIT 0").schema.names
    if columns != FEATURES_SCHEMA.names:
        raise DistillwatchInputError(
            f"The store's '{FEATURES_TABLE}' table was written by another version of "
            f"distillwatch (columns differ: {sorted(set(columns) ^ set(FEATURES_SCHEMA.names))});"
            " ingest the logs into a new store file", source=str(getattr(engine, "path", "")))
    return frame


def append_features(engine: Engine, table: pa.Table) -> int:
    """Insert rows whose ``exchange_id`` the store does not hold; returns how many went in."""
    before = engine.frame(FEATURES_TABLE).count()
    incoming = engine.register("__dw__incoming_features", table)
    engine.execute(
        f"INSERT INTO {FEATURES_TABLE} SELECT * FROM __dw__incoming_features i "
        f"WHERE NOT EXISTS (SELECT 1 FROM {FEATURES_TABLE} f "
        "WHERE f.exchange_id = i.exchange_id)", "append features")
    engine.drop(incoming)
    return engine.frame(FEATURES_TABLE).count() - before


def ingest(engine: Engine, paths: Sequence[Path], rejects: RejectSink, key: bytes,
           fmt: str | None = None, batch_size: int = BATCH_SIZE,
           progress: Callable[[str, int], None] | None = None) -> IngestReport:
    """Read, validate, fingerprint and store every exchange of ``paths``.

    Args:
        engine: Holds the store.
        paths: Files or folders.
        rejects: Where unreadable records go.
        key: The fingerprint key.
        fmt: Force a format (default: detected per file).
        batch_size: Exchanges per stored batch.
        progress: Called after each batch with the file and the records read from it.
    """
    ensure_store(engine)
    report = IngestReport()
    seen: set[str] = set()
    for path in input_files(list(paths)):
        stats, records = read_exchanges(path, rejects, fmt, seen)
        report.files.append(stats)
        for batch in _batches(records, batch_size):
            added = append_features(engine, exchange_features(batch, key))
            report.stored += added
            report.already_stored += len(batch) - added
            if progress is not None:
                progress(stats.source, stats.read)
        rejects.flush()
    return report
