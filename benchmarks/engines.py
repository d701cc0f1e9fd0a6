"""DuckDB against Spark local[2] on one world: wall time of the same scan, same result.

Usage:
    python -m benchmarks.engines [ci]

Builds (or reuses) /tmp/worlds/ci-pq-1 (the preset as Parquet), runs ``distillwatch scan``
(ingest, scan, reports) on DuckDB and on Spark local[2], prints both times, their ratio and
whether the campaigns are the same.
"""
import json, time, shutil, sys
from pathlib import Path

def main():
    from distillwatch.cli.scan import run_scan
    from distillwatch.simulate.presets import load_preset
    from distillwatch.simulate.simulator import simulate
    from distillwatch.simulate.text import Corpus
    import os
    world = Path("/tmp/worlds/ci-pq-1")
    if not (world / "world.json").exists():
        simulate(load_preset(sys.argv[1] if len(sys.argv) > 1 else "ci"), 1, world, Corpus.load(Path.home()/".cache"/"distillwatch"), fmt="parquet")
    out = {}
    for engine in ("duckdb", "spark"):
        target = Path(f"/tmp/svd-{engine}"); shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        if engine == "spark":
            run_scan([str(world / "exchanges"), str(world / "accounts.jsonl")], target, engine="spark", spark_master="local[2]", memory_limit="4GB")
        else:
            run_scan([world / "exchanges", world / "accounts.jsonl"], target)
        out[engine] = time.perf_counter() - t
        print(engine, round(out[engine], 1), "s", flush=True)
    def outcome(o):
        d = json.loads((o / "campaigns.json").read_text())
        return {c["campaign_id"]: sorted(c["accounts"]) for c in d["campaigns"]}, d["totals"]
    print("same campaigns:", outcome(Path("/tmp/svd-duckdb")) == outcome(Path("/tmp/svd-spark")))
    print("ratio spark/duckdb", round(out["spark"] / out["duckdb"], 2))

if __name__ == "__main__":
    main()
