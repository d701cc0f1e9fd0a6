"""Tiny hand-built worlds whose metrics can be worked out by hand."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 4, 20, tzinfo=UTC)


def at(hours: float) -> str:
    moment = START + timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def exchange(account: str, hours: float, text: str = "hello there", **request) -> dict:
    return {
        "exchange_id": f"{account}-{hours}", "timestamp": at(hours), "account_id": account,
        "model": "m", "request": {"messages": [{"role": "user", "content": text}], **request},
    }


def build_world(path: Path, accounts: dict[str, tuple], exchanges: list[dict],
                days: int = 3) -> Path:
    """Write exchanges.jsonl.gz and labels.json.

    ``accounts`` maps id -> (label, population, campaign_id, heavy).
    """
    path.mkdir(parents=True, exist_ok=True)
    exchanges = sorted(exchanges, key=lambda e: e["timestamp"])
    with gzip.open(path / "exchanges.jsonl.gz", "wt") as handle:
        for record in exchanges:
            handle.write(json.dumps(record) + "\n")
    seen: dict[str, list[str]] = defaultdict(list)
    for record in exchanges:
        seen[record["account_id"]].append(record["timestamp"])
    populations: dict[str, dict] = {}
    labels_accounts = {}
    campaigns: dict[str, dict] = {}
    for account, (label, population, campaign, heavy) in accounts.items():
        times = seen[account]
        labels_accounts[account] = {
            "label": label, "population": population, "campaign_id": campaign, "tactics": [],
            "exchanges": len(times), "first_seen": times[0], "last_seen": times[-1]}
        entry = populations.setdefault(population, {"label": label, "heavy": heavy,
                                                    "accounts": 0})
        entry["accounts"] += 1
        if campaign:
            c = campaigns.setdefault(campaign, {"name": campaign.lower(), "tactics": [],
                                                "knobs": {}, "accounts": [], "exchanges": 0})
            c["accounts"].append(account)
            c["exchanges"] += len(times)
    labels = {"schema_version": "1", "preset": "tiny", "seed": 0,
              "window": {"start": at(0), "end": at(24 * days)}, "populations": populations,
              "accounts": labels_accounts, "campaigns": campaigns}
    (path / "labels.json").write_text(json.dumps(labels))
    return path


def write_scan(path: Path, campaigns: list[dict], accounts: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "campaigns.json").write_text(json.dumps({
        "schema_version": "1", "generated_at": at(0),
        "window": {"start": at(0), "end": at(72)}, "totals": {"exchanges": 0, "accounts": 0},
        "campaigns": campaigns}))
    (path / "accounts.jsonl").write_text("".join(json.dumps(a) + "\n" for a in accounts))
    return path


# Two campaigns (3 and 2 accounts), three ordinary users, one heavy support bot, one jailbreaker.
ACCOUNTS = {
    "a1": ("attack", "campaign", "C1", False), "a2": ("attack", "campaign", "C1", False),
    "a3": ("attack", "campaign", "C1", False), "b1": ("attack", "campaign", "C2", False),
    "b2": ("attack", "campaign", "C2", False), "o1": ("legit", "ordinary", None, False),
    "o2": ("legit", "ordinary", None, False), "o3": ("legit", "ordinary", None, False),
    "s1": ("legit", "support_bot", None, True), "j1": ("other_abuse", "jailbreaker", None, False),
}
COUNTS = {"a1": 10, "a2": 10, "a3": 20, "b1": 5, "b2": 5, "o1": 2, "o2": 2, "o3": 2, "s1": 100,
          "j1": 3}


