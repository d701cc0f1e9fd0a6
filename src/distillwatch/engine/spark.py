"""The engine at scale: Apache Spark (PySpark), local or on a cluster.

The store is a folder of Parquet (``features/`` and, if ingested, ``accounts/``), read with
Spark's readers from any Hadoop-compatible path (a local folder, ``hdfs://``, ``s3a://``) and
exposed as the read-only temporary views ``features`` and ``accounts``. Ingest into DuckDB,
then write that layout with :func:`distillwatch.engine.export.export_store`.

How pipeline results are held: a table is a Parquet table written into a scratch database the
engine creates for itself (``CREATE TABLE ... USING parquet AS ...``); a view is a temporary
view. Written tables keep memory bounded (the data is on disk, not in the executors' cache),
cut the lineage (the connected-components loop reads and replaces its labels table every
round; a cached view would carry every earlier round's plan with it, and dropping a cached
temporary view uncaches the views built on it), and are dropped with the database when the
engine closes.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from distillwatch.engine.base import Engine
from distillwatch.engine.dialects import Dialect
from distillwatch.exceptions import DistillwatchConfigError, DistillwatchInputError
from distillwatch.ingest.accounts import ACCOUNTS_TABLE
from distillwatch.ingest.store import FEATURES_TABLE

logger = logging.getLogger(__name__)

# Settings the stage SQL relies on, applied to every session the engine runs on.
SESSION_SETTINGS = {
    # Timestamps come back to Python as UTC, as from DuckDB.
    "spark.sql.session.timeZone": "UTC",
    # Spark 4's default, made explicit: a bad cast or an overflow raises, as on DuckDB,
    # instead of quietly becoming NULL (or wrapping round) and changing a score. A division
    # by zero raises too (DuckDB gives infinity); the stage SQL guards its divisions, so a
    # raise means a bug to fix, not data to tolerate.
    "spark.sql.ansi.enabled": "true",
    # Scratch tables written with a standard timestamp type rather than the legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def spark_memory(limit: str) -> str:
    """A DuckDB-style memory limit (``"4GB"``, ``"512MB"``) in Spark's form (``"4096m"``).

    Raises:
        DistillwatchConfigError: If the limit cannot be read.
    """
    match = _MEMORY.match(limit)
    if not match:
        raise DistillwatchConfigError(
            f"Cannot read the memory limit {limit!r}; write it as e.g. '4GB' or '512MB'")
    scale = {"": 1 / 2**20, "k": 1 / 2**10, "m": 1, "g": 2**10, "t": 2**20}
    return f"{max(1, int(float(match.group(1)) * scale[match.group(2).lower()]))}m"


def _cores(master: str) -> int:
    match = re.fullmatch(r"local\[(\d+|\*)(?:,\d+)?\]", master)
    if master == "local":
        return 1
    if match and match.group(1) != "*":
        return int(match.group(1))
    return os.cpu_count() or 2


def build_session(master: str | None = "local[*]", memory_limit: str | None = None,
                  shuffle_partitions: int | None = None,
                  warehouse_dir: str | Path | None = None,
                  config: Mapping[str, str] | None = None) -> SparkSession:
    """A Spark session set up for distillwatch.

    If a session is already running in this process, that one is returned with
    ``SESSION_SETTINGS`` applied; the other arguments then have no effect (Spark reads them
    only when a session starts).

    Args:
        master: Spark master URL, e.g. ``"local[2]"``, ``"spark://host:7077"``; None keeps
            the one ``spark-submit`` configured.
        memory_limit: Driver memory, DuckDB-style (``"4GB"``); in local mode the driver is
            the whole engine. Only takes effect when this call starts the JVM.
        shuffle_partitions: Partitions after a shuffle (default: two per local core; 200,
            Spark's default, makes thousands of tiny tasks on a laptop).
        warehouse_dir: Where Spark puts managed tables (default: a temporary folder, so no
            ``spark-warehouse/`` appears in the working directory).
        config: More Spark settings, e.g. ``{"spark.executor.memory": "8g"}``.

    Example:
        >>> spark = build_session("local[2]", memory_limit="2GB")   # doctest: +SKIP
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in SESSION_SETTINGS.items():
            active.conf.set(key, value)
        return active
    partitions = shuffle_partitions or 2 * _cores(master or "local[*]")
    if warehouse_dir is None:
        warehouse = tempfile.mkdtemp(prefix="distillwatch-warehouse-")
        atexit.register(shutil.rmtree, warehouse, ignore_errors=True)
    else:
        warehouse = str(warehouse_dir)
    builder = SparkSession.builder
    if master is not None:
        builder = builder.master(master)
    builder = (builder.appName("distillwatch")
               .config("spark.sql.shuffle.partitions", str(partitions))
               .config("spark.sql.warehouse.dir", warehouse)
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    if memory_limit:
        builder = builder.config("spark.driver.memory", spark_memory(memory_limit))
    if (master or "").startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
        # Python workers (mapInArrow) run this interpreter, which has distillwatch; on a
        # cluster, PYSPARK_PYTHON names the nodes' environment. PySpark reads the variable
        # when the context starts.
        os.environ["PYSPARK_PYTHON"] = sys.executable
    for key, value in {**(config or {}), **SESSION_SETTINGS}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    return spark


def _quiet_hidden_path_warning(spark: SparkSession) -> None:
    """Silence "All paths were ignored" for the scratch tables.

    Spark takes a folder whose name starts with ``_`` for a hidden one and warns on each read
    of a table stored in one; every intermediate table is named ``__dw__...``, and the
    warning is harmless (the table's own folder is read all the same).
    """
    try:
        jvm = spark.sparkContext._jvm
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.execution.datasources.DataSource",
            jvm.org.apache.logging.log4j.Level.ERROR)
    except Exception:  # a session without a local JVM (Spark Connect)
        logger.debug("cannot set Spark's log level; scratch-table warnings stay on")


class SparkEngine(Engine):
    """Runs stage SQL on Spark.

    Args:
        store: Folder (any Hadoop-compatible path) holding ``features/`` and, optionally,
            ``accounts/`` as Parquet; None for an engine without a store (tests, tools).
        master: Spark master URL when the engine starts its own session.
        spark: A session to run on instead (it is not stopped by :meth:`close`; the engine
            sets ``SESSION_SETTINGS`` on it and switches its current database to the scratch
            database until it closes). Run one engine at a time on a session: the store
            views ``features`` and ``accounts`` are session-wide names.
        memory_limit: Driver memory, DuckDB-style (``"4GB"``), for a session the engine starts.
        shuffle_partitions: Partitions after a shuffle, for a session the engine starts
            (default: two per local core).
        scratch_dir: Where the scratch database keeps its tables (default: the session's
            warehouse folder; give a shared path such as ``hdfs:///tmp/distillwatch`` on a
            cluster if the warehouse is not shared).
        debug_mode: Materialise every pipeline step.

    Raises:
        DistillwatchInputError: If the store has no ``features`` Parquet folder.

    Example:
        >>> engine = SparkEngine("store/", master="local[2]")      # doctest: +SKIP
        >>> Watcher(engine).scan()                                  # doctest: +SKIP
    """

    def __init__(self, store: str | Path | None, master: str = "local[*]",
                 spark: SparkSession | None = None, memory_limit: str | None = None,
                 shuffle_partitions: int | None = None, scratch_dir: str | Path | None = None,
                 debug_mode: bool = False) -> None:
        super().__init__(Dialect.from_string("spark"), debug_mode)
        self.store = None if store is None else str(store).rstrip("/")
        self._closed = False
        self._warehouse: str | None = None
        if spark is None and SparkSession.getActiveSession() is not None:
            # getOrCreate would hand back the running session; it is not ours to stop.
            spark = SparkSession.getActiveSession()
        self._owns_session = spark is None
        if spark is None:
            self._warehouse = tempfile.mkdtemp(prefix="distillwatch-warehouse-")
            spark = build_session(master, memory_limit, shuffle_partitions, self._warehouse)
        else:
            if memory_limit or shuffle_partitions:
                logger.warning("memory_limit and shuffle_partitions apply to a session the "
                               "engine starts; the session passed in keeps its own")
            for key, value in SESSION_SETTINGS.items():
                spark.conf.set(key, value)
        self.spark = spark
        self._registered: dict[str, DataFrame] = {}
        self._store_views: list[str] = []
        self._database = f"dw_scratch_{uuid.uuid4().hex[:10]}"
        self._previous_database = spark.catalog.currentDatabase()
        location = (f" LOCATION '{str(scratch_dir).rstrip('/')}/{self._database}.db'"
                    if scratch_dir else "")
        spark.sql(f"CREATE DATABASE {self._database}{location}")
        spark.catalog.setCurrentDatabase(self._database)
        _quiet_hidden_path_warning(spark)
        try:
            if self.store is not None:
                self._expose_store()
        except Exception:
            self.close()
            raise

    # -- the store -----------------------------------------------------------------------
    def _read_parquet(self, table: str) -> DataFrame | None:
        """The store's Parquet folder for ``table``, or None if the store has none."""
        try:
            return self.spark.read.parquet(f"{self.store}/{table}")
        except AnalysisException as error:
            if error.getCondition() in ("PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA"):
                return None
            raise

    def _expose_store(self) -> None:
        for table in (FEATURES_TABLE, ACCOUNTS_TABLE):
            frame = self._read_parquet(table)
            if frame is None:
                if table == FEATURES_TABLE:
                    raise DistillwatchInputError(
                        f"The store has no '{FEATURES_TABLE}/' Parquet folder; ingest the logs "
                        "with DuckDB, then write the store for Spark with "
                        "distillwatch.engine.export.export_store(engine, folder)",
                        source=self.store)
                continue
            frame.createOrReplaceTempView(table)
            self._store_views.append(table)

    # -- primitives ----------------------------------------------------------------------
    def _execute(self, sql: str) -> None:
        # Commands (CREATE, DROP, INSERT) have run when spark.sql() returns; queries whose
        # rows are wanted go through _fetch_arrow.
        self.spark.sql(sql)

    def _fetch_arrow(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    def _register_arrow(self, physical_name: str, data: pa.Table | pa.RecordBatchReader
                        ) -> None:
        table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
        # One chunk per column: from a table whose columns are chunked differently (a
        # concatenation of tables, some empty) rows were lost: seen on the driver pass's
        # chunks split over threads (tests/link: the sketch and large tokens on Spark).
        frame = self.spark.createDataFrame(table.combine_chunks())
        # Kept (spilling to disk if need be) so that each query does not decode the Arrow
        # data again; registered tables are small (per account at most).
        frame.persist(StorageLevel.MEMORY_AND_DISK)
        frame.createOrReplaceTempView(physical_name)
        self._registered[physical_name] = frame

    def _create_statement(self, physical_name: str, sql: str, materialise: bool) -> str:
        if materialise:
            return f"CREATE TABLE {physical_name} USING parquet AS\n{sql}"
        # A temporary view: a permanent one may not read temporary views (the store).
        return f"CREATE TEMPORARY VIEW {physical_name} AS\n{sql}"

    def _drop_table(self, physical_name: str, is_view: bool) -> None:
        registered = self._registered.pop(physical_name, None)
        if registered is not None:
            self.spark.catalog.dropTempView(physical_name)
            registered.unpersist()
        elif is_view:
            self.spark.sql(f"DROP VIEW IF EXISTS {physical_name}")
        else:
            self.spark.sql(f"DROP TABLE IF EXISTS {physical_name}")

    def _list_tables(self) -> list[tuple[str, bool]]:
        rows = self.spark.sql(f"SHOW TABLES IN {self._database}").collect()
        return [(str(row["tableName"]), bool(row["isTemporary"])) for row in rows]

    def close(self) -> None:
        """Drop every table and view the engine made, and stop a session it started."""
        if self._closed:
            return
        self._closed = True
        self.drop_all()
        for name in list(self._registered):
            self._drop_table(name, True)
        for name in self._store_views:
            self.spark.catalog.dropTempView(name)
        self._store_views = []
        self.spark.catalog.setCurrentDatabase(self._previous_database)
        self.spark.sql(f"DROP DATABASE IF EXISTS {self._database} CASCADE")
        if self._owns_session:
            self.spark.stop()
            if self._warehouse:
                shutil.rmtree(self._warehouse, ignore_errors=True)
