"""Write a DuckDB store as the Parquet folder a Spark engine reads.

A store ingested with DuckDB (``features`` and, if ingested, ``accounts``) becomes
``<folder>/features/`` and ``<folder>/accounts/``: the layout ``SparkEngine`` reads. DuckDB's
``COPY`` streams the tables out, so memory stays bounded whatever the store's size. Copy the
folder to HDFS or S3 with the usual tools to scan it on a cluster.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.ingest.accounts import ACCOUNTS_TABLE
from distillwatch.ingest.store import FEATURES_TABLE

if TYPE_CHECKING:
    from distillwatch.engine.duckdb import DuckDBEngine

# Spark reads a Parquet file in parallel by row group: groups of this many rows let a small
# store be read by several tasks (DuckDB's default, 122,880 rows, makes one task of a
# 100,000-exchange store), at little cost in compression for a large one.
ROW_GROUP_ROWS = 16_384


def export_store(engine: DuckDBEngine, folder: str | Path, overwrite: bool = False) -> Path:
    """Write the store's ``features`` and ``accounts`` tables as Parquet under ``folder``.

    Args:
        engine: A DuckDB engine holding an ingested store.
        folder: A local folder; ``features/`` and ``accounts/`` are written inside it.
        overwrite: Replace tables an earlier export wrote there.

    Returns:
        ``folder``, to pass to ``SparkEngine``.

    Raises:
        DistillwatchInputError: If the store has no ``features`` table, or ``folder``
            already holds an export and ``overwrite`` is not set.

    Example:
        >>> export_store(DuckDBEngine("store.duckdb"), "store-parquet")   # doctest: +SKIP
        PosixPath('store-parquet')
    """
    folder = Path(folder)
    tables = engine.table_names()
    source = str(getattr(engine, "path", ""))
    if FEATURES_TABLE not in tables:
        raise DistillwatchInputError(
            f"The store has no '{FEATURES_TABLE}' table; ingest logs into it first",
            source=source)
    for table in (FEATURES_TABLE, ACCOUNTS_TABLE):
        target = folder / table
        if target.exists() and any(target.iterdir()):
            if not overwrite:
                raise DistillwatchInputError(
                    f"'{target}' already holds an export; choose an empty folder or pass "
                    "overwrite=True", source=str(folder))
            shutil.rmtree(target)
    for table in (FEATURES_TABLE, ACCOUNTS_TABLE):
        if table not in tables:
            continue
        target = folder / table
        target.mkdir(parents=True, exist_ok=True)
        path = str(target / f"{table}.parquet").replace("'", "''")
        engine.execute(f"COPY {table} TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE "
                       f"{ROW_GROUP_ROWS})", f"export {table}")
    return folder
