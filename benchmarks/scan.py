"""The batch detector on `standard` worlds: acceptance figures and an ablation table.

Usage:
    python -m benchmarks.scan --seeds 1 2 3 --worlds /tmp/worlds [--ablation] [--replay]
    python -m benchmarks.scan --preset stress --worlds /tmp/worlds [--parts N]
        [--memory-limit 6GB] [--workers 2] [--engine spark]   # scale: benchmarks/scale.py

For each seed: builds (or reuses) the world, ingests it once into a store (reused when
present), runs ``distillwatch scan`` on it, evaluates against the labels and prints a
Markdown table (campaign recall, FPR per heavy-user population, ordinary-user FPR, exchange
coverage, precision / recall, PR-AUC, wall time and peak RSS per stage). ``--ablation`` reruns
the scan with each family of signals or link evidence switched off and prints, per campaign
(with its tactics), the share of its accounts still flagged. ``--replay`` adds time to
detection from a daily replay. Results are also written as JSON next to the worlds.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import timedelta
from pathlib import Path

import orjson

from benchmarks.baselines import world_for
from distillwatch.cli.scan import run_scan
from distillwatch.evaluate import evaluate, load_labels, load_scan_output
from distillwatch.simulate.text import Corpus

CACHE = Path(os.environ.get("DISTILLWATCH_CACHE", Path.home() / ".cache" / "distillwatch"))
KEY = "benchmark-fingerprint-key-0001"
SIGNAL_FAMILIES = {
    "elicitation signals": ["cot_elicitation", "grading_elicitation", "tool_trace_elicitation"],
    "harvest-parameter signal": ["harvest_params"],
    "sweep signal": ["templated_sweep"],
    "network signals": ["anonymising_network", "ip_rotation", "geo_mismatch"],
    "identity signals": ["risky_signup", "fresh_account"],
}
LINK_FAMILIES = ("scaffold", "network", "identity", "onboard", "timing")


def ablations() -> dict[str, dict]:
    out: dict[str, dict] = {"full detector": {}}
    for name, signals in SIGNAL_FAMILIES.items():
        out[f"no {name}"] = {"disabled_signals": signals}
    for family in LINK_FAMILIES:
        out[f"no {family} links"] = {"disabled_link_families": [family]}
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scan_world(world: Path, out: Path, settings: dict | None = None) -> tuple[dict, float]:
    """Scan ``world`` (ingested once into world/bench-store.duckdb); (evaluation, seconds)."""
    store = world / "bench-store.duckdb"
    logs = [] if store.exists() else [world]
    settings_path = None
    if settings:
        settings_path = out.with_suffix(".settings.yaml")
        out.parent.mkdir(parents=True, exist_ok=True)
        import yaml

        settings_path.write_text(yaml.safe_dump(settings))
    os.environ["DISTILLWATCH_FINGERPRINT_KEY"] = KEY
    started = time.perf_counter()
    run_scan(logs, out, store=store, settings=settings_path)
    seconds = time.perf_counter() - started
    result = evaluate(load_labels(world), load_scan_output(out)).to_dict()
    truth = orjson.loads((world / "labels.json").read_bytes())["campaigns"]
    result["campaign_tactics"] = {cid: sorted(c.get("tactics") or {}) for cid, c in
                                  truth.items()}
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--worlds", type=Path, default=Path("worlds"))
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--replay", action="store_true")
    parser.add_argument("--parts", type=int, default=None,
                        help="stress: scan only the first N Parquet parts (100k exchanges each)")
    parser.add_argument("--memory-limit", default=None, help="stress: DuckDB memory limit")
    parser.add_argument("--workers", type=int, default=None,
                        help="stress: fingerprinting processes (default one per core)")
    parser.add_argument("--threads", type=int, default=None,
                        help="stress: DuckDB threads, or N of Spark's local[N]")
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"],
                        help="stress: the engine to measure")
    parser.add_argument("--ingest-only", action="store_true",
                        help="stress: measure ingest alone (no scan)")
    parser.add_argument("--fingerprint-only", type=int, nargs="*", default=None,
                        metavar="PART",
                        help="stress: only the one-core raw limits and fingerprinting, on "
                             "these parts (by position; none given: the first three)")
    parser.add_argument("--max-block", type=int, default=None,
                        help="stress: link.max_block (accounts paired per block of a token)")
    args = parser.parse_args()

    corpus = Corpus.load(CACHE)
    if args.preset == "stress":
        from benchmarks.scale import print_figures, run

        world, _ = world_for(args.seeds[0], args.worlds, "stress", corpus)
        if args.fingerprint_only is not None:
            from benchmarks.scale import fingerprint_rate, raw_limits

            folder = world / "exchanges"
            limits = raw_limits(folder, args.fingerprint_only)
            rate = fingerprint_rate(folder, args.fingerprint_only)
            print(f"one core, CPU time: read {limits['read_per_s']:,.0f}/s, read + hash "
                  f"{limits['read_and_hash_per_s']:,.0f}/s, fingerprint {rate:,.0f}/s "
                  f"({rate / limits['read_and_hash_per_s']:.2f} of read + hash)")
            return
        settings = {"link": {"max_block": args.max_block}} if args.max_block else None
        print_figures(run(world, args.parts, args.memory_limit, args.workers, args.threads,
                          args.engine, settings, args.ingest_only))
        return
    rows, ablation_rows = [], []
    for seed in args.seeds:
        world, _ = world_for(seed, args.worlds, args.preset, corpus)
        fresh = not (world / "bench-store.duckdb").exists()
        result, seconds = scan_world(world, world / "scan-distillwatch")
        if args.replay:
            from distillwatch.evaluate.replay import replay
            from distillwatch.evaluate.scanners import get_scanner

            result["time_to_detection"] = [
                d.to_dict() for d in replay(world, load_labels(world),
                                            get_scanner("distillwatch"), timedelta(days=1))]
        (world / "scan-distillwatch" / "evaluation.json").write_bytes(
            orjson.dumps(result, option=orjson.OPT_INDENT_2))
        rows.append((seed, result, seconds, fresh))
        print(f"seed {seed}: recall {result['campaign_recall']:.2f}, heavy FPR "
              f"{result['heavy_fpr']:.3f} in {seconds:.0f} s", flush=True)
        if args.ablation:
            for name, settings in ablations().items():
                if not settings:
                    ablation_rows.append((seed, name, result))
                    continue
                ablated, _ = scan_world(world, world / "ablation" / name.replace(" ", "-"),
                                        settings)
                ablation_rows.append((seed, name, ablated))
                print(f"  {name}: recall {ablated['campaign_recall']:.2f}", flush=True)

    print(f"\npeak RSS of this process: {peak_rss_mb():,.0f} MB")
    print("\n| seed | campaign recall | account precision / recall | exchange coverage | PR-AUC "
          "| heavy-user FPR (populations hit) | ordinary FPR | other abuse flagged "
          "| scan seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed, r, seconds, fresh in rows:
        heavy_hit = ", ".join(f"{p['population']} {p['flagged']}/{p['accounts']}"
                              for p in r["populations"] if p["heavy"] and p["flagged"])
        ordinary = next(p for p in r["populations"] if p["population"] == "ordinary")
        print(f"| {seed} | {r['campaign_recall']:.2f} ({r['campaigns_found']}/"
              f"{r['campaigns_total']}) | {r['account_precision']:.4f} / "
              f"{r['account_recall']:.4f} | {r['exchange_coverage']:.4f} | {r['pr_auc']:.4f} "
              f"| {r['heavy_fpr']:.3f} ({heavy_hit or 'none'}) | {ordinary['fpr']:.4f} "
              f"({ordinary['flagged']}/{ordinary['accounts']}) | "
              f"{r['other_abuse_flagged_rate']:.3f} | {seconds:.0f}"
              f"{' (with ingest)' if fresh else ''} |")
    if any("time_to_detection" in r for _, r, _, _ in rows):
        print("\n| seed | campaign | detected at | attack exchanges before detection |")
        print("|---|---|---|---|")
        for seed, r, _, _ in rows:
            for d in r.get("time_to_detection", []):
                print(f"| {seed} | {d['campaign_id']} {d['name']} | {d['detected_at'] or 'never'}"
                      f" | {d['exchanges_before']:,} of {d['campaign_exchanges']:,} "
                      f"({d['share_before']:.1%}) |")
    if ablation_rows:
        _print_ablation(ablation_rows)


def _print_ablation(rows) -> None:
    campaigns = sorted({(c["campaign_id"], c["name"]) for _, _, r in rows
                        for c in r["campaigns"]})
    tactics = {}
    for _, _, r in rows:
        tactics.update(r.get("campaign_tactics", {}))
    print("\nShare of each campaign's accounts flagged (mean over seeds; **bold** = campaign "
          "lost, i.e. under 50 %), heavy-user FPR and ordinary FPR, with each family off:\n")
    header = " | ".join(f"{cid} {name}" for cid, name in campaigns)
    print(f"| switched off | {header} | heavy FPR | ordinary FPR |")
    print("|---|" + "---|" * (len(campaigns) + 2))
    names = list(dict.fromkeys(name for _, name, _ in rows))
    for name in names:
        results = [r for _, n, r in rows if n == name]
        cells = []
        for cid, _ in campaigns:
            shares = [c["flagged_share"] for r in results for c in r["campaigns"]
                      if c["campaign_id"] == cid]
            share = sum(shares) / len(shares)
            cells.append(f"**{share:.2f}**" if share < 0.5 else f"{share:.2f}")
        heavy = sum(r["heavy_fpr"] for r in results) / len(results)
        ordinary = sum(next(p["fpr"] for p in r["populations"] if p["population"] == "ordinary")
                       for r in results) / len(results)
        print(f"| {name} | {' | '.join(cells)} | {heavy:.3f} | {ordinary:.4f} |")
    if any(tactics.values()):
        print("\nCampaign tactics: " + "; ".join(
            f"{cid}: {', '.join(t)}" for cid, t in sorted(tactics.items())))


if __name__ == "__main__":
    main()
