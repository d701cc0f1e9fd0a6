"""The link stage's pass over the candidate edges, alone: wall time and peak memory.

Usage:
    python -m benchmarks.link_edges [--edges 40700000] [--accounts 32375]
        [--memory-limit 1GB] [--dir /tmp/bench-edges]

Writes synthetic candidate edges (dense blocks of neighbours: each account linked to
accounts up to 3,000 numbers away, the shape of a hydra's heads) into a DuckDB table, then
runs ``link.edges.support_edges`` (common-neighbour support, kept edges through the sink,
connected components) and prints the time and the peak resident memory of the process
during the pass, above what it held before. The defaults are the sizes of the 31.6M-exchange
``stress`` scan (40.7M candidate edges between 32,375 accounts).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmarks.scale import TreeMemory


def main() -> None:
    from distillwatch.engine import DuckDBEngine, SqlPipeline, SqlStep
    from distillwatch.link.edges import support_edges
    from distillwatch.link.pairs_sql import CANDIDATES, EDGE_NUMBERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=40_700_000)
    parser.add_argument("--accounts", type=int, default=32_375)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-edges"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    engine = DuckDBEngine(args.dir / "edges.duckdb", memory_limit=args.memory_limit)
    rng = np.random.default_rng(1)
    ia = rng.integers(0, args.accounts, args.edges)
    ib = (ia + rng.integers(1, 3000, args.edges)) % args.accounts
    engine.register("__dw__bench_edges", pa.table({
        "ia": pa.array(np.minimum(ia, ib), pa.int32()),
        "ib": pa.array(np.maximum(ia, ib), pa.int32()),
        "strength": rng.random(args.edges)}))
    del ia, ib
    # A table the engine holds (as the link stage's), not the registered Arrow data.
    engine.run(SqlPipeline.of([SqlStep("SELECT * FROM __dw__bench_edges", CANDIDATES)]))
    engine.drop(engine.frame("__dw__bench_edges"))
    with TreeMemory(0.05) as before:
        pass
    began = time.perf_counter()
    with TreeMemory(0.05) as during:
        nodes, _ = support_edges(engine, args.accounts, 0.05)
    seconds = time.perf_counter() - began
    kept = engine.frame(EDGE_NUMBERS).count()
    print(f"{args.edges:,} candidate edges, {args.accounts:,} accounts: {kept:,} kept, "
          f"{len(nodes):,} accounts with an edge")
    print(f"support and components: {seconds:.1f} s ({args.edges / seconds:,.0f} edges/s); "
          f"RSS before {before.peak / 1e9:.2f} GB, peak during {during.peak / 1e9:.2f} GB "
          f"(+{(during.peak - before.peak) / 1e9:.2f} GB), DuckDB limit {args.memory_limit}")
    engine.close()
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
