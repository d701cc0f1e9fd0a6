"""DuckDB against Spark local[2] on one world: wall time of the same scan, and the same result.

Usage:
    python -m benchmarks.engines [--preset ci] [--worlds /tmp/worlds]

Builds (or reuses) WORLDS/PRESET-pq-1 (the preset, seed 1, as Parquet), runs
``distillwatch scan`` (ingest, scan, reports) on DuckDB and on Spark local[2], and prints both
times, their ratio and whether the two found the same campaigns with the same members.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

CACHE = Path(os.environ.get("DISTILLWATCH_CACHE", Path.home() / ".cache" / "distillwatch"))


def _campaigns(out: Path) -> tuple[dict, dict]:
    document = json.loads((out / "campaigns.json").read_text())
    return ({c["campaign_id"]: sorted(c["accounts"]) for c in document["campaigns"]},
            document["totals"])


def main() -> None:
    from distillwatch.cli.scan import run_scan
    from distillwatch.simulate.presets import load_preset
    from distillwatch.simulate.simulator import simulate
    from distillwatch.simulate.text import Corpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="ci")
    parser.add_argument("--worlds", type=Path, default=Path("/tmp/worlds"))
    args = parser.parse_args()
    world = args.worlds / f"{args.preset}-pq-1"
    if not (world / "world.json").exists():
        simulate(load_preset(args.preset), 1, world, Corpus.load(CACHE), fmt="parquet")
    seconds = {}
    for engine in ("duckdb", "spark"):
        out = world / f"engines-{engine}"
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        if engine == "spark":
            run_scan([str(world / "exchanges"), str(world / "accounts.jsonl")], out,
                     engine="spark", spark_master="local[2]", memory_limit="4GB")
        else:
            run_scan([world / "exchanges", world / "accounts.jsonl"], out)
        seconds[engine] = time.perf_counter() - started
        print(f"{engine}: {seconds[engine]:.1f} s", flush=True)
    same = _campaigns(world / "engines-duckdb") == _campaigns(world / "engines-spark")
    print(f"same campaigns and members: {same}; Spark local[2] / DuckDB = "
          f"{seconds['spark'] / seconds['duckdb']:.2f}")


if __name__ == "__main__":
    main()
