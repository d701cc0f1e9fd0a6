"""Read and check a scan's output folder against the contract (shared/schema/scan-output.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.report.contract import DECISIONS, FLAGGING_DECISIONS


@dataclass(frozen=True)
class ReportedCampaign:
    campaign_id: str
    confidence: float
    accounts: tuple[str, ...]


@dataclass(frozen=True)
class ScannedAccount:
    score: float
    decision: str
    campaign_id: str | None


@dataclass(frozen=True)
class ScanOutput:
    """What a scan reported."""

    campaigns: tuple[ReportedCampaign, ...]
    accounts: dict[str, ScannedAccount]

    def flagged(self) -> set[str]:
        """Accounts in a reported campaign, or decided ``verify`` / ``block``."""
        flagged = {a for c in self.campaigns for a in c.accounts}
        flagged |= {a for a, s in self.accounts.items() if s.decision in FLAGGING_DECISIONS}
        return flagged


def _unit(value: object, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DistillwatchInputError(f"'{key}' must be a number in [0, 1], got {value!r}", where)
    if not 0.0 <= float(value) <= 1.0:
        raise DistillwatchInputError(f"'{key}' must be in [0, 1], got {value}", where)
    return float(value)


def load_scan_output(scan_dir: Path) -> ScanOutput:
    """Load ``campaigns.json`` and ``accounts.jsonl`` from a scan's output folder.

    Raises:
        DistillwatchInputError: If a file is missing or breaks the contract; the message names
            the file, the line or campaign, and the problem.
    """
    if not scan_dir.is_dir():
        raise DistillwatchInputError("Scan output folder does not exist", str(scan_dir))
    campaigns_path = scan_dir / "campaigns.json"
    accounts_path = scan_dir / "accounts.jsonl"
    for path in (campaigns_path, accounts_path):
        if not path.is_file():
            raise DistillwatchInputError(
                f"Missing {path.name}: run `distillwatch scan --out {scan_dir}` first",
                str(scan_dir))
    try:
        document = orjson.loads(campaigns_path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise DistillwatchInputError(f"Not valid JSON: {error}", str(campaigns_path)) from error
    if not isinstance(document, dict) or not isinstance(document.get("campaigns"), list):
        raise DistillwatchInputError("Expected an object with a 'campaigns' list",
                                     str(campaigns_path))
    if document.get("schema_version") != "1":
        raise DistillwatchInputError("Unsupported schema_version (expected '1')",
                                     str(campaigns_path))
    campaigns = []
    for index, entry in enumerate(document["campaigns"]):
        where = f"{campaigns_path}: campaigns[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("campaign_id"), str):
            raise DistillwatchInputError("A campaign needs a string 'campaign_id'", where)
        members = entry.get("accounts")
        if not isinstance(members, list) or not all(isinstance(a, str) for a in members):
            raise DistillwatchInputError("'accounts' must be a list of account ids", where)
        campaigns.append(ReportedCampaign(entry["campaign_id"],
                                          _unit(entry.get("confidence"), "confidence", where),
                                          tuple(members)))
    accounts = {}
    with accounts_path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{accounts_path}:{number}"
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise DistillwatchInputError(f"Not valid JSON: {error}", where) from error
            if not isinstance(entry, dict) or not isinstance(entry.get("account_id"), str):
                raise DistillwatchInputError("A line needs a string 'account_id'", where)
            decision = entry.get("decision")
            if decision not in DECISIONS:
                raise DistillwatchInputError(
                    f"Unknown decision {decision!r}; expected one of {', '.join(DECISIONS)}",
                    where)
            campaign = entry.get("campaign_id")
            if campaign is not None and not isinstance(campaign, str):
                raise DistillwatchInputError("'campaign_id' must be a string or null", where)
            accounts[entry["account_id"]] = ScannedAccount(
                _unit(entry.get("score"), "score", where), decision, campaign)
    return ScanOutput(tuple(campaigns), accounts)
