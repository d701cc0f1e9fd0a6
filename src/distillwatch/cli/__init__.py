"""The ``distillwatch`` command line. Only this package prints and reads the environment."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from distillwatch import __version__
from distillwatch.exceptions import DistillwatchError

console = Console(stderr=False)
err_console = Console(stderr=True)

app = typer.Typer(
    name="distillwatch",
    help=(
        "Find and stop distillation attacks on LLM APIs.\n\n"
        "Scan API logs for campaigns with `scan` (or `ingest` first, then `scan --store`); "
        "build a labelled benchmark world with `simulate` and score a scan of it with "
        "`evaluate`; or run it all on the small built-in world with `demo`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"distillwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")


def _register_all() -> None:
    from distillwatch.cli import data, demo, evaluate, ingest, scan, simulate

    for module in (demo, scan, simulate, evaluate, ingest, data):
        module.register(app)
    from distillwatch.cli import serve; serve.register(app)  # noqa: E702, I001


def main() -> None:
    """Entry point of the ``distillwatch`` command."""
    _register_all()
    try:
        app()
    except DistillwatchError as error:
        err_console.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
