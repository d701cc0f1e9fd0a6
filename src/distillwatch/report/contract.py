"""The scan output contract: what ``campaigns.json`` and ``accounts.jsonl`` hold.

Other programs read these files (shared/schema/scan-output.md). Fields may be added, never
renamed or dropped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

SCHEMA_VERSION = "1"
DECISIONS = ("allow", "monitor", "throttle", "verify", "block")
FLAGGING_DECISIONS = frozenset({"verify", "block"})


@dataclass
class AccountResult:
    """One line of ``accounts.jsonl``."""

    account_id: str
    score: float
    decision: str
    exchanges: int
    campaign_id: str | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class CampaignResult:
    """One campaign of ``campaigns.json`` (extra keys may be added by the scanner)."""

    campaign_id: str
    confidence: float
    accounts: list[str]
    exchange_count: int
    first_seen: str
    last_seen: str
    capabilities: dict[str, float] = field(default_factory=dict)
    tactics: list[str] = field(default_factory=list)
    evidence: list[dict] = field(default_factory=list)
    indicators: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["account_count"] = len(self.accounts)
        return data


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_scan_output(
    out_dir: Path,
    *,
    window: tuple[datetime, datetime],
    total_exchanges: int,
    accounts: Iterable[AccountResult],
    campaigns: Iterable[CampaignResult] = (),
    extra: dict | None = None,
) -> None:
    """Write ``campaigns.json`` and ``accounts.jsonl``; each file appears whole or not at all.

    Args:
        out_dir: Created if missing.
        window: First and last exchange time covered by the scan.
        total_exchanges: Exchanges scanned.
        accounts: Every account seen in the window.
        campaigns: The campaigns found.
        extra: Additional top-level keys for ``campaigns.json``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    account_list = list(accounts)
    tmp = out_dir / "accounts.jsonl.partial"
    with tmp.open("wb") as handle:
        for account in account_list:
            handle.write(orjson.dumps(asdict(account)) + b"\n")
    os.replace(tmp, out_dir / "accounts.jsonl")
    document = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _utc(datetime.now(UTC)),
        "window": {"start": _utc(window[0]), "end": _utc(window[1])},
        "totals": {"exchanges": total_exchanges, "accounts": len(account_list)},
        "campaigns": [c.to_dict() for c in campaigns],
        **(extra or {}),
    }
    tmp = out_dir / "campaigns.json.partial"
    tmp.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    os.replace(tmp, out_dir / "campaigns.json")
