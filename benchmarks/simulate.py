"""Benchmark world generation: exchanges/s, wall time, and resident memory day by day.

Usage:
    python -m benchmarks.simulate --preset stress --seed 1 --out /data/worlds/stress-1
    python -m benchmarks.simulate --preset standard --seed 1 --out /tmp/std-1

Prints one line per simulated day (exchanges so far, rate, current RSS) and a summary with
peak RSS, so a flat memory profile is visible as the world grows.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

from distillwatch.simulate.presets import load_preset
from distillwatch.simulate.simulator import simulate
from distillwatch.simulate.text import Corpus

CACHE = Path(os.environ.get("DISTILLWATCH_CACHE", Path.home() / ".cache" / "distillwatch"))


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", default=None)
    args = parser.parse_args()

    corpus = Corpus.load(CACHE)
    preset = load_preset(args.preset)
    started = time.perf_counter()
    print(f"{'day':>4} {'exchanges':>12} {'exch/s':>9} {'RSS MB':>8}", flush=True)

    def progress(day: int, days: int, written: int) -> None:
        elapsed = time.perf_counter() - started
        print(f"{day:>4} {written:>12,} {written / elapsed:>9,.0f} {rss_mb():>8,.0f}",
              flush=True)

    summary = simulate(preset, args.seed, args.out, corpus, args.format, progress=progress)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npreset={preset.name} seed={args.seed} exchanges={summary.exchanges:,} "
          f"accounts={summary.accounts:,} wall={summary.seconds:,.0f}s "
          f"rate={summary.exchanges / summary.seconds:,.0f}/s peak_rss={peak:,.0f}MB")


if __name__ == "__main__":
    main()
