"""The only code that talks to a database: engines, their dialects, SQL pipelines.

``DuckDBEngine`` is the embedded default; the Spark engine is loaded lazily where installed.
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
    raise AttributeError(f"module 'distillwatch.engine' has no attribute '{name}'")
