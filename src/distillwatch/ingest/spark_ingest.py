"""Ingest on Spark: Parquet logs -> validate and fingerprint with ``mapInArrow`` -> the store.

The same code as the DuckDB path checks and fingerprints each Arrow batch
(``batches.process_table``), run by Spark's Python workers through ``mapInArrow`` (batch in,
batch out; a pandas or row UDF would convert every row). Each output row is either the
features of a valid exchange or a reject with its reason, so one pass over the logs gives
both. Features are written to the store's ``features/`` Parquet folder, keeping the first row
(by file, then row) of every exchange id the store does not hold yet — as the DuckDB store
does; rejects are few and are written to the rejects file by the driver.

Logs are read with Spark's Parquet reader from any Hadoop-compatible path (a local folder,
``hdfs://``, ``s3a://``); each file's name and row index come from Spark's ``_metadata``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime

import pyarrow as pa

from distillwatch.fingerprint.features import FEATURES_SCHEMA
from distillwatch.ingest.accounts import ACCOUNTS_SCHEMA, ACCOUNTS_TABLE
from distillwatch.ingest.readers import FileStats
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.store import FEATURES_TABLE, IngestReport
from distillwatch.io.arrow_layout import EXCHANGE_ARROW_SCHEMA

_EXTRA = [("__file", pa.string()), ("__row", pa.int64()), ("__location", pa.string()),
          ("__reason", pa.string()), ("__field", pa.string()), ("__raw", pa.binary())]
OUTPUT_SCHEMA = pa.schema([*FEATURES_SCHEMA, *_EXTRA])


def _fingerprint_batches(key: bytes, since: datetime | None):
    """The ``mapInArrow`` function: raw exchange batches in, features and rejects out."""
    from distillwatch.ingest.batches import process_table

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            files = table.column("__file").to_pylist()
            rows = table.column("__row").to_pylist()
            names = [f"{f.rsplit('/', 1)[-1]} row {r + 1}" for f, r in zip(files, rows,
                                                                           strict=True)]
            raw = table.drop_columns(["__file", "__row"])
            outcome = process_table(raw, names, key, since)
            count = outcome.features.num_rows
            kept = outcome.features
            for name, values in (
                    ("__file", [files[i] for i in outcome.rows]),
                    ("__row", [rows[i] for i in outcome.rows]),
                    ("__location", outcome.locations),
                    ("__reason", [None] * count), ("__field", [None] * count),
                    ("__raw", [None] * count)):
                kept = kept.append_column(name, pa.array(values, OUTPUT_SCHEMA.field(name).type))
            yield from kept.cast(OUTPUT_SCHEMA).to_batches()
            if outcome.rejects:
                by_name = dict(zip(names, zip(files, rows, strict=True), strict=True))
                rejected = {name: [None] * len(outcome.rejects) for name in FEATURES_SCHEMA.names}
                rejected.update({
                    "__file": [by_name[r[0]][0] for r in outcome.rejects],
                    "__row": [by_name[r[0]][1] for r in outcome.rejects],
                    "__location": [r[0] for r in outcome.rejects],
                    "__reason": [r[1] for r in outcome.rejects],
                    "__field": [r[2] for r in outcome.rejects],
                    "__raw": [r[3][:4000] for r in outcome.rejects],
                })
                yield from pa.Table.from_pydict(rejected, schema=OUTPUT_SCHEMA).to_batches()

    return run


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def ingest_parquet(spark, logs: Sequence[str], store: str, key: bytes, rejects: RejectSink,
                   since: datetime | None = None) -> IngestReport:
    """Validate, fingerprint and store the exchanges of Parquet logs on Spark.

    Args:
        spark: The session.
        logs: Parquet files or folders of parts (any Hadoop-compatible paths).
        store: The store folder; features are appended to ``STORE/features/``.
        key: The fingerprint key.
        rejects: Where unreadable records go (written by the driver).
        since: Skip (without fingerprinting) exchanges before this instant.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    frame = spark.read.schema(_spark_schema(EXCHANGE_ARROW_SCHEMA)).parquet(*logs).select(
        "*", F.col("_metadata.file_path").alias("__file"),
        F.col("_metadata.row_index").alias("__row"))
    out = frame.mapInArrow(_fingerprint_batches(key, since), _spark_schema(OUTPUT_SCHEMA))
    staging = f"{store}/_staging-{uuid.uuid4().hex[:10]}"
    out.write.parquet(staging)
    staged = spark.read.parquet(staging)
    try:
        report = IngestReport()
        per_file = {row["__file"]: (row["accepted"], row["rejected"]) for row in staged.groupBy(
            "__file").agg(F.sum(F.col("__reason").isNull().cast("long")).alias("accepted"),
                          F.sum(F.col("__reason").isNotNull().cast("long")).alias("rejected"))
            .collect()}
        for row in staged.where("__reason IS NOT NULL").orderBy("__file", "__row").select(
                "__file", "__location", "__reason", "__field", "__raw").toLocalIterator():
            rejects.add(row["__file"], row["__location"], row["__reason"], row["__field"],
                        bytes(row["__raw"] or b""))
        features = staged.where("__reason IS NULL")
        first = Window.partitionBy("exchange_id").orderBy("__file", "__row")
        ranked = features.withColumn("__rank", F.row_number().over(first))
        duplicates = ranked.where("__rank > 1").select("__file", "__location", "exchange_id") \
            .orderBy("__file", "__location").collect()
        fresh = ranked.where("__rank = 1")
        existing = _existing_ids(spark, store)
        if existing is not None:
            fresh = fresh.join(existing, "exchange_id", "left_anti")
        fresh = fresh.select(*FEATURES_SCHEMA.names)
        target = f"{store}/_fresh-{uuid.uuid4().hex[:10]}"
        fresh.write.parquet(target)  # once: the window and the anti-join run a single time
        written = spark.read.parquet(target)
        before = written.count()
        written.write.mode("append").parquet(f"{store}/{FEATURES_TABLE}")
        _remove(spark, target)
        report.stored = before
        total = sum(accepted for accepted, _ in per_file.values())
        report.already_stored = total - len(duplicates) - before
        dup_per_file: dict[str, int] = {}
        for row in duplicates:
            dup_per_file[row["__file"]] = dup_per_file.get(row["__file"], 0) + 1
            rejects.add(row["__file"], row["__location"],
                        f"duplicate exchange_id {row['exchange_id']!r}", "exchange_id")
        for source, (accepted, rejected) in sorted(per_file.items()):
            dups = dup_per_file.get(source, 0)
            report.files.append(FileStats(source, read=accepted + rejected,
                                          accepted=accepted - dups, rejected=rejected + dups,
                                          duplicates=dups))
        return report
    finally:
        _remove(spark, staging)


def _existing_ids(spark, store: str):
    from pyspark.errors import AnalysisException

    try:
        return spark.read.parquet(f"{store}/{FEATURES_TABLE}").select("exchange_id")
    except AnalysisException:
        return None


def _remove(spark, path: str) -> None:
    """Delete a folder through Hadoop's file system (works for hdfs:// and s3a:// too)."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(
        hadoop_path, True)


def store_accounts_parquet(spark, store: str, rows: list[dict]) -> int:
    """Write account rows to ``STORE/accounts/`` (a later row for an account replaces the
    earlier, and replaces what the store held)."""
    from pyspark.errors import AnalysisException

    if not rows:
        return 0
    latest = {row["account_id"]: row for row in rows}
    incoming = spark.createDataFrame(pa.Table.from_pylist(list(latest.values()),
                                                          schema=ACCOUNTS_SCHEMA))
    target = f"{store}/{ACCOUNTS_TABLE}"
    try:
        held = spark.read.parquet(target)
        merged = held.join(incoming.select("account_id"), "account_id", "left_anti") \
            .unionByName(incoming)
        merged = spark.createDataFrame(merged.toArrow())  # read fully before overwriting
    except AnalysisException:
        merged = incoming
    merged.write.mode("overwrite").parquet(target)
    return len(latest)
