"""The benchmark's difficulty on record: one-signal baselines on `standard` worlds.

Usage:
    python -m benchmarks.baselines --seeds 1 2 3 --worlds /tmp/worlds

Builds (or reuses) one `standard` world per seed, runs each baseline through the same evaluator
as any scan, with a daily replay for time to detection, and prints a Markdown table of the
metrics plus world generation times. Results are also written as JSON next to the worlds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path

import orjson

from distillwatch.evaluate import evaluate, load_labels, load_scan_output
from distillwatch.evaluate.replay import replay
from distillwatch.evaluate.scanners import get_scanner
from distillwatch.simulate.presets import load_preset
from distillwatch.simulate.simulator import simulate
from distillwatch.simulate.text import Corpus

CACHE = Path(os.environ.get("DISTILLWATCH_CACHE", Path.home() / ".cache" / "distillwatch"))
BASELINES = ("volume_baseline", "cot_rate_baseline")


def world_for(seed: int, root: Path, preset: str, corpus: Corpus) -> tuple[Path, float | None]:
    path = root / f"{preset}-{seed}"
    meta = path / "world.json"
    if meta.is_file():
        info = orjson.loads(meta.read_bytes())
        if info.get("preset") == preset and info.get("seed") == seed:
            return path, info.get("generation_seconds")
    summary = simulate(load_preset(preset), seed, path, corpus)
    return path, summary.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--worlds", type=Path, default=Path("worlds"))
    parser.add_argument("--preset", default="standard")
    args = parser.parse_args()

    corpus = Corpus.load(CACHE)
    rows, generation = [], []
    for seed in args.seeds:
        started = time.perf_counter()
        world, seconds = world_for(seed, args.worlds, args.preset, corpus)
        generation.append((seed, seconds or time.perf_counter() - started))
        labels = load_labels(world)
        for name in BASELINES:
            scanner = get_scanner(name)
            out = world / f"scan-{name}"
            scanner.scan(world, out)
            result = evaluate(labels, load_scan_output(out)).to_dict()
            detections = [d.to_dict() for d in replay(world, labels, scanner,
                                                      timedelta(days=1))]
            result["time_to_detection"] = detections
            (out / "evaluation.json").write_bytes(orjson.dumps(result,
                                                               option=orjson.OPT_INDENT_2))
            rows.append((seed, name, result))
            print(f"seed {seed} {name}: recall {result['campaign_recall']:.2f}", flush=True)

    print("\n| seed | baseline | campaign recall | precision | recall | coverage | PR-AUC "
          "| heavy-user FPR (populations hit) | ordinary FPR | other abuse | median exchanges "
          "before detection |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for seed, name, r in rows:
        heavy_hit = ", ".join(f"{p['population']} {p['flagged']}/{p['accounts']}"
                              for p in r["populations"] if p["heavy"] and p["flagged"])
        ordinary = next(p for p in r["populations"] if p["population"] == "ordinary")
        before = [d["exchanges_before"] for d in r["time_to_detection"] if d["detected"]]
        missed = sum(not d["detected"] for d in r["time_to_detection"])
        print(f"| {seed} | {name} | {r['campaign_recall']:.2f} "
              f"({r['campaigns_found']}/{r['campaigns_total']}) | "
              f"{_f(r['account_precision'])} | {_f(r['account_recall'])} | "
              f"{_f(r['exchange_coverage'])} | {_f(r['pr_auc'])} | "
              f"{_f(r['heavy_fpr'])} ({heavy_hit or 'none'}) | {_f(ordinary['fpr'])} | "
              f"{_f(r['other_abuse_flagged_rate'])} | "
              f"{statistics.median(before) if before else 'n/a'} ({missed} never) |")
    print("\n| seed | generation seconds |")
    print("|---|---|")
    for seed, seconds in generation:
        print(f"| {seed} | {seconds:.0f} |")


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
