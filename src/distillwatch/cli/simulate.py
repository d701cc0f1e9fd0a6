"""``distillwatch simulate``: build a labelled benchmark world from real text."""

from __future__ import annotations

from pathlib import Path

import typer

from distillwatch.cli.common import CACHE_OPTION


def simulate(
    preset: str = typer.Option(
        "ci", "--preset", "-p",
        help="World size and make-up: ci (~50k exchanges, 7 days), standard (~500k, 30 days, "
             "~5k accounts), holdout (21 days; other knobs, tactic mixes and more hard "
             "negatives than standard), stress (>=30M, 42 days, Parquet), or a path to a "
             "preset YAML file.",
    ),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed; the same seed gives the "
                                                     "same world."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the world to "
                                                      "(created; world files are replaced)."),
    fmt: str = typer.Option(None, "--format", "-f",
                            help="jsonl.gz or parquet (default: the preset's; stress uses "
                                 "parquet)."),
    cache_dir: Path = CACHE_OPTION,
) -> None:
    """Generate timestamped multi-account API traffic with ground-truth labels.

    Writes exchanges (Exchange schema), accounts.jsonl (Account schema), labels.json (ground
    truth: legit / attack / other_abuse per account, campaigns with their tactics and knobs)
    and world.json (how it was made). See docs/world-format.md.

    Example: distillwatch simulate --preset standard --seed 2 --out worlds/std-2
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from distillwatch.simulate.presets import load_preset
    from distillwatch.simulate.simulator import simulate as run
    from distillwatch.simulate.text import Corpus

    console = Console()
    loaded = load_preset(preset)
    with console.status("loading real text") as status:
        corpus = Corpus.load(cache_dir, progress=lambda msg: status.update(msg))
    with Progress(TextColumn("[bold]simulating[/] day"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[exchanges]:,} exchanges"), console=console) as bar:
        task = bar.add_task("days", total=loaded.days, exchanges=0)
        summary = run(loaded, seed, out, corpus, fmt,
                      progress=lambda day, days, n: bar.update(task, completed=day,
                                                               exchanges=n))
    console.print(
        f"[green]world written[/] to {summary.out_dir}: {summary.exchanges:,} exchanges, "
        f"{summary.accounts:,} accounts, {summary.campaigns} campaigns "
        f"({summary.attack_exchanges:,} attack exchanges) in {summary.seconds:.0f}s"
    )


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
