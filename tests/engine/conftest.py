"""Engine tests run once per engine (Spark joins this list with issue 4)."""

from __future__ import annotations

import pytest

ENGINES = ["duckdb"]


@pytest.fixture(params=ENGINES)
def engine(request, tmp_path):
    if request.param == "duckdb":
        from distillwatch.engine import DuckDBEngine

        made = DuckDBEngine(tmp_path / "store.duckdb", memory_limit="512MB", threads=2)
        yield made
        made.close()
