"""Stream Exchange records out of log files; bad records become rejects, never exceptions.

Supported: Exchange JSONL (plain, ``.gz``, ``.zst``) and Parquet (a file or a folder of
parts, nested like the JSONL; a tool's ``parameters`` may be JSON text), and provider log lines
(OpenAI Chat Completions / Responses, Anthropic Messages; see ``formats.py``) in the same
files. A truncated compressed stream keeps every record read before the break and adds one
reject naming the point of truncation.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import zstandard

from distillwatch.ingest.formats import (
    is_litellm_log,
    is_provider_log,
    litellm_line,
    to_exchange,
)
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.validate import (
    canonical_timestamp,
    cap_text,
    check_exchange,
    parse_timestamp,
)
from distillwatch.io import is_json_document, iter_lines

logger = logging.getLogger(__name__)
FORMATS = ("exchange_jsonl", "exchange_parquet")


@dataclass
class FileStats:
    """What one input file gave."""

    source: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    capped: int = 0
    truncated_stream: bool = False
    skipped: bool = False  # read by an earlier ingest (same path, size and time): not read
    before_since: int = 0  # valid exchanges older than --since: not fingerprinted


def input_files(paths: list[Path]) -> list[Path]:
    """Files named, and every non-hidden file below folders named, in a stable order.

    A folder of Parquet parts (a dataset) gives its parts, each an input of its own: a dataset
    that grows by new parts is read again for its new parts only.
    """
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            parts = sorted(path.glob("part-*.parquet"))
            if parts:
                out += parts
                continue
            out += sorted(p for p in path.rglob("*") if p.is_file()
                          and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            out.append(path)
    return out


def detect_format(path: Path) -> str:
    """``exchange_parquet`` for Parquet files and part folders, else ``exchange_jsonl``."""
    if path.is_dir() or path.suffix == ".parquet":
        return "exchange_parquet"
    return "exchange_jsonl"


def accept(raw: bytes | dict, key: bytes | None = None
           ) -> tuple[dict | None, tuple[str | None, str] | None]:
    """One raw record (a JSONL line or a Parquet row) as a valid Exchange, or its problem.

    ``key`` (the fingerprint key) names the API keys of LiteLLM logs as the gateway and the
    LiteLLM adapter do (``kid-…``); without it they keep LiteLLM's hash.

    Returns:
        (record, None) for a valid record (provider log lines converted, over-long text
        capped and marked ``truncated``), or (None, (field, reason)).
    """
    if isinstance(raw, bytes):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            return None, (None, f"not valid UTF-8 at byte {error.start}")
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            return None, (None, f"invalid JSON: {error}")
    else:
        record = raw
        _decode_tool_parameters(record)
    if isinstance(record, dict) and is_litellm_log(record):
        record = to_exchange(litellm_line(record, key))
    elif isinstance(record, dict) and is_provider_log(record):
        record = to_exchange(record)
    problem = check_exchange(record)
    if problem is not None:
        return None, problem
    # Every ISO 8601 form Python reads (week dates, basic format, a comma before the
    # fraction) becomes one form that every engine reads.
    record["timestamp"] = canonical_timestamp(parse_timestamp(record["timestamp"]))
    if cap_text(record):
        record["truncated"] = True
    return record, None


def _accept(raw: bytes | dict, stats: FileStats, rejects: RejectSink, location: str,
            seen: set[str] | None) -> dict | None:
    record, problem = accept(raw)
    if problem is not None:
        field, reason = problem
        stats.rejected += 1
        rejects.add(stats.source, location, reason, field,
                    raw if isinstance(raw, bytes) else orjson.dumps(raw, default=str))
        return None
    if seen is not None:
        if record["exchange_id"] in seen:
            stats.duplicates += 1
            stats.rejected += 1
            rejects.add(stats.source, location,
                        f"duplicate exchange_id {record['exchange_id']!r}", "exchange_id",
                        raw if isinstance(raw, bytes) else b"")
            return None
        seen.add(record["exchange_id"])
    if record.get("truncated"):
        stats.capped += 1
    stats.accepted += 1
    return record


def read_jsonl(path: Path, stats: FileStats, rejects: RejectSink,
               seen: set[str] | None = None) -> Iterator[dict]:
    """Valid records of an Exchange JSONL file."""
    number = 0
    try:
        for number, line in enumerate(iter_lines(path), start=1):
            if not line.strip():
                continue
            stats.read += 1
            accepted = _accept(line, stats, rejects, f"line {number}", seen)
            if accepted is not None:
                yield accepted
    except (EOFError, zlib.error, zstandard.ZstdError, OSError) as error:
        stats.truncated_stream = True
        stats.rejected += 1
        rejects.add(stats.source, f"after line {number}",
                    f"compressed stream is truncated or corrupt: {error}; "
                    f"the {stats.accepted} records before it were kept", None, b"")
        logger.warning("%s: truncated after line %d (%s)", path, number, error)


def read_parquet(path: Path, stats: FileStats, rejects: RejectSink,
                 seen: set[str] | None = None) -> Iterator[dict]:
    """Valid records of an Exchange Parquet file or folder of parts."""
    parts = sorted(path.glob("part-*.parquet")) if path.is_dir() else [path]
    for part in parts:
        row = 0
        for batch in pq.ParquetFile(part).iter_batches():
            for record in batch.to_pylist():
                row += 1
                stats.read += 1
                accepted = _accept(record, stats, rejects, f"{part.name} row {row}", seen)
                if accepted is not None:
                    yield accepted


def _decode_tool_parameters(record: dict) -> None:
    # Parquet keeps free-form JSON (a tool's parameters) as text. A request that is not an
    # object is left for validation to reject.
    request = record.get("request")
    tools = request.get("tools") if isinstance(request, dict) else None
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("parameters"), str):
            with contextlib.suppress(orjson.JSONDecodeError):
                function["parameters"] = orjson.loads(function["parameters"])


def read_exchanges(path: Path, rejects: RejectSink, fmt: str | None = None,
                   seen: set[str] | None = None) -> tuple[FileStats, Iterator[dict]]:
    """The stats object (filled as the iterator is consumed) and the valid records of a file."""
    stats = FileStats(str(path))
    chosen = fmt or detect_format(path)
    if chosen == "exchange_parquet":
        return stats, read_parquet(path, stats, rejects, seen)
    return stats, read_jsonl(path, stats, rejects, seen)


ACCOUNT_FILE_KEYS = frozenset({"signup_channel", "payment_fingerprint", "billing_country",
                               "created_at", "email_domain", "verified"})


def sniff_kind(path: Path) -> str:
    """What a log folder's file holds: ``exchanges``, ``accounts`` or ``other``.

    Parquet parts and JSONL whose first record looks like an Exchange or provider log line
    are exchanges; a first record with an ``account_id`` and account fields but no exchange
    id is an account file; a scan's ``accounts.jsonl`` and ``.json`` documents that hold no
    Exchange, provider or LiteLLM record (a world's ``labels.json``) are ``other``; a
    ``.json`` document of records (one object, or an array) is exchanges. Unreadable first
    lines count as exchanges, so their records are rejected with reasons rather than
    skipped.
    """
    if path.is_dir() or path.suffix == ".parquet":
        return "exchanges"
    if path.suffix == ".csv":
        return "accounts"
    document = is_json_document(path)
    try:
        for line in iter_lines(path):
            if line.strip():
                record = orjson.loads(line)
                break
        else:
            return "exchanges"
    except (orjson.JSONDecodeError, EOFError, OSError, zlib.error, zstandard.ZstdError):
        return "exchanges"
    if isinstance(record, dict) and "exchange_id" not in record and "account_id" in record \
            and ACCOUNT_FILE_KEYS & set(record):
        return "accounts"
    if isinstance(record, dict) and "exchange_id" not in record \
            and {"account_id", "decision", "score"} <= set(record):
        return "other"   # a scan's accounts.jsonl
    if document and not (isinstance(record, dict) and (
            "exchange_id" in record or is_provider_log(record) or is_litellm_log(record))):
        return "other"   # a JSON document that holds no records (a world's labels.json)
    return "exchanges"
