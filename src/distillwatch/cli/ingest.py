"""``distillwatch ingest``: read logs into the store (validate, fingerprint, keep rejects)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from distillwatch.cli.common import (
    KEY_FILE_OPTION,
    MEMORY_LIMIT_OPTION,
    SINCE_OPTION,
    WORKERS_OPTION,
    parse_since,
)
from distillwatch.exceptions import DistillwatchConfigError, DistillwatchInputError

DEFAULT_KEY = b"distillwatch-unkeyed"


def fingerprint_key(key_file: Path | None) -> tuple[bytes, bool]:
    """The fingerprint key from --key-file or $DISTILLWATCH_FINGERPRINT_KEY; (key, is_default)."""
    if key_file is not None:
        if not key_file.is_file():
            raise DistillwatchConfigError(f"Key file {key_file} does not exist")
        key = key_file.read_bytes().strip()
        if len(key) < 16:
            raise DistillwatchConfigError(f"Key in {key_file} is shorter than 16 bytes")
        return key[:64], False
    env = os.environ.get("DISTILLWATCH_FINGERPRINT_KEY")
    if env:
        return env.encode()[:64], False
    return DEFAULT_KEY, True


def ingest_command(
    logs: list[Path] = typer.Argument(..., help="Log files or folders (searched recursively; "
                                      "hidden files skipped)."),
    store: Path = typer.Option(Path("distillwatch.duckdb"), "--store", "-s",
                               help="DuckDB file holding the fingerprinted exchanges "
                                    "(created if missing; re-ingesting adds nothing)."),
    accounts: list[Path] = typer.Option([], "--accounts", "-a", help="Account file(s): "
                                        "JSONL, CSV or Parquet (account schema; repeatable). "
                                        "A later row for an account replaces the earlier."),
    fmt: str = typer.Option(None, "--format", "-f", help="Force exchange_jsonl or "
                            "exchange_parquet (default: detected per file)."),
    rejects: Path = typer.Option(None, "--rejects", help="Where unreadable records go "
                                 "(default: rejected.jsonl next to the store)."),
    key_file: Path = KEY_FILE_OPTION,
    memory_limit: str = MEMORY_LIMIT_OPTION,
    workers: int = WORKERS_OPTION,
    since: str = SINCE_OPTION,
) -> None:
    """Validate, fingerprint and store API logs; bad records go to the rejects file.

    Reads Exchange JSONL (plain, .gz, .zst) and Parquet, provider request logs (OpenAI Chat
    Completions / Responses / Completions, Anthropic Messages: one request and answer a line)
    and LiteLLM's StandardLoggingPayload records. Every record that cannot be read is
    written to the rejects file with its file, line or row and the reason (with a masked
    excerpt, never prompt text). Raw prompt text is not stored: only keyed fingerprints.
    Appends to the store: exchanges already stored are not stored again, and a file read by
    an earlier ingest (same path, size and modification time) is skipped unread. A run that is
    killed keeps what it staged; the next ingest or scan finishes storing it.

    Example: distillwatch ingest logs/2026-05/ --accounts accounts.csv --store store.duckdb
    --key-file fp.key
    """
    from rich.console import Console
    from rich.table import Table

    from distillwatch.engine import DuckDBEngine
    from distillwatch.ingest.accounts import read_accounts, store_accounts
    from distillwatch.ingest.readers import input_files
    from distillwatch.ingest.rejects import RejectSink
    from distillwatch.ingest.store import ingest

    console = Console()
    missing = [str(p) for p in [*logs, *accounts] if not p.exists()]
    if missing:
        raise DistillwatchInputError(f"No such file or folder: {', '.join(missing)}")
    if not input_files(list(logs)):
        raise DistillwatchInputError("No input files found in the given folders")
    moment = parse_since(since)
    key, unkeyed = fingerprint_key(key_file)
    if unkeyed:
        console.print("[yellow]warning:[/] no fingerprint key given (--key-file); "
                      "fingerprints are unkeyed and must not be shared")
    sink = RejectSink(rejects or store.with_name("rejected.jsonl"))
    engine = DuckDBEngine(store, memory_limit=memory_limit)
    try:
        with console.status("ingesting"):
            report = ingest(engine, logs, sink, key, fmt, workers=workers, since=moment)
            for path in accounts:
                stats, rows = read_accounts(path, sink)
                store_accounts(engine, rows)
                report.files.append(stats)
    finally:
        sink.close()
        engine.close()
    table = Table(title=f"ingested into {store}", title_justify="left")
    for column in ("file", "read", "accepted", "rejected", "note"):
        table.add_column(column, justify="left" if column in ("file", "note") else "right")
    for stats in report.files:
        note = ("already ingested (same size and time): skipped" if stats.skipped else
                "truncated stream" if stats.truncated_stream else
                f"{stats.capped} capped" if stats.capped else "")
        table.add_row(stats.source, f"{stats.read:,}", f"{stats.accepted:,}",
                      f"{stats.rejected:,}", note)
    console.print(table)
    console.print(f"stored {report.stored:,} new exchanges ({report.already_stored:,} were "
                  f"already stored); {report.rejected:,} rejected -> {sink.path}")
    older = sum(stats.before_since for stats in report.files)
    if older:
        console.print(f"{older:,} valid exchanges before --since {since} were skipped")
    if report.recovered:
        console.print(f"{report.recovered:,} exchanges staged by an interrupted run were stored")
    for reason, count in sink.reasons.most_common(5):
        console.print(f"  {count:,} × {reason}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
