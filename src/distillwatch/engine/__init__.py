"""The only code that talks to a database: engines, their dialects, SQL pipelines.

``DuckDBEngine`` is the embedded default; ``SparkEngine`` (and ``export_store``, which writes
a DuckDB store for it) are loaded lazily, so ``import distillwatch`` never needs PySpark.
"""

from distillwatch.engine.base import Engine
from distillwatch.engine.dialects import Dialect
from distillwatch.engine.frame import EngineFrame
from distillwatch.engine.pipeline import SqlPipeline, SqlStep

__all__ = ["Dialect", "Engine", "EngineFrame", "SqlPipeline", "SqlStep"]


def __getattr__(name: str):
    if name == "DuckDBEngine":
        from distillwatch.engine.duckdb import DuckDBEngine

        return DuckDBEngine
    if name == "SparkEngine":
        try:
            from distillwatch.engine.spark import SparkEngine
        except ImportError as error:
            raise ImportError(
                "SparkEngine cannot be imported because its dependencies are not installed "
                f"({error}); install pyspark and pandas<3 (pip install pyspark pandas)"
            ) from error
        return SparkEngine
    if name == "export_store":
        from distillwatch.engine.export import export_store

        return export_store
    raise AttributeError(f"module 'distillwatch.engine' has no attribute '{name}'")
