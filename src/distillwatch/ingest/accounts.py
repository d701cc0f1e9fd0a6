"""Account files (``shared/schema/account.schema.json``): JSONL, CSV or Parquet.

Optional as a whole; where given, every row is checked, bad rows become rejects, unknown
fields are kept (as JSON text), and a later file's row for an account replaces the earlier one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.engine import Engine
from distillwatch.ingest.readers import FileStats
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.validate import parse_timestamp

SIGNUP_CHANNELS = {"self_serve", "education", "startup_program", "research_program",
                   "enterprise", "partner", "reseller", "unknown"}
_STRINGS = ("organization_id", "billing_country", "payment_fingerprint", "email_domain", "tier")
ACCOUNTS_TABLE = "accounts"
ACCOUNTS_SCHEMA = pa.schema([
    ("account_id", pa.string()),
    ("organization_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("signup_channel", pa.string()),
    ("billing_country", pa.string()),
    ("payment_fingerprint", pa.string()),
    ("email_domain", pa.string()),
    ("verified", pa.bool_()),
    ("tier", pa.string()),
    ("extra_json", pa.string()),
])
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _rows(path: Path) -> Iterator[tuple[str, dict | bytes]]:
    if path.suffix == ".parquet":
        for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield f"row {number}", row
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                yield f"line {number}", {k: (v if v != "" else None) for k, v in row.items()}
    else:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"line {number}", line


def normalise_account(row: dict) -> dict | tuple[str, str]:
    """The canonical account row, or (field, reason) when the row cannot be used."""
    account_id = row.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        return "account_id", "missing or empty 'account_id'"
    created: datetime | None = None
    if row.get("created_at") is not None:
        parsed = parse_timestamp(row["created_at"] if isinstance(row["created_at"], str)
                                 else str(row["created_at"]))
        if isinstance(parsed, str):
            return "created_at", parsed.replace("timestamp", "created_at")
        created = parsed
    channel = row.get("signup_channel")
    if channel is not None and channel not in SIGNUP_CHANNELS:
        return "signup_channel", f"unknown signup_channel {channel!r}"
    verified = row.get("verified")
    if isinstance(verified, str):
        lowered = verified.strip().lower()
        if lowered not in _TRUE | _FALSE:
            return "verified", f"'verified' must be true or false, got {verified!r}"
        verified = lowered in _TRUE
    elif verified is not None and not isinstance(verified, bool):
        return "verified", "'verified' must be true or false"
    out = {"account_id": account_id, "created_at": created, "signup_channel": channel,
           "verified": verified}
    for field in _STRINGS:
        value = row.get(field)
        out[field] = None if value is None else str(value)
    extra = {k: v for k, v in row.items() if k not in out}
    out["extra_json"] = orjson.dumps(extra, default=str).decode() if extra else None
    return out


def read_accounts(path: Path, rejects: RejectSink) -> tuple[FileStats, list[dict]]:
    """Every usable account row of a file (account files are small: read whole)."""
    stats, rows = FileStats(str(path)), []
    for location, raw in _rows(path):
        stats.read += 1
        if isinstance(raw, bytes):
            try:
                raw_row = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                stats.rejected += 1
                rejects.add(stats.source, location, f"invalid JSON: {error}", None, raw)
                continue
        else:
            raw_row = raw
        result = normalise_account(raw_row) if isinstance(raw_row, dict) else (
            "$", "row is not an object")
        if isinstance(result, tuple):
            stats.rejected += 1
            rejects.add(stats.source, location, result[1], result[0],
                        orjson.dumps(raw_row, default=str))
            continue
        stats.accepted += 1
        rows.append(result)
    return stats, rows


def store_accounts(engine: Engine, rows: list[dict]) -> int:
    """Insert or replace accounts by ``account_id``; returns how many rows were written."""
    empty = engine.register("__dw__accounts_template", pa.Table.from_pylist([],
                                                                             ACCOUNTS_SCHEMA))
    engine.execute(f"CREATE TABLE IF NOT EXISTS {ACCOUNTS_TABLE} AS "
                   "SELECT * FROM __dw__accounts_template WHERE false", "create accounts")
    engine.drop(empty)
    if not rows:
        return 0
    latest = {row["account_id"]: row for row in rows}
    incoming = engine.register("__dw__incoming_accounts",
                               pa.Table.from_pylist(list(latest.values()), ACCOUNTS_SCHEMA))
    engine.execute(f"DELETE FROM {ACCOUNTS_TABLE} WHERE account_id IN "
                   "(SELECT account_id FROM __dw__incoming_accounts)", "replace accounts")
    engine.execute(f"INSERT INTO {ACCOUNTS_TABLE} SELECT * FROM __dw__incoming_accounts",
                   "insert accounts")
    engine.drop(incoming)
    return len(latest)
