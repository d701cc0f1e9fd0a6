"""Read and check a world's ``labels.json`` (docs/world-format.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from distillwatch.exceptions import DistillwatchInputError

LABELS = ("legit", "attack", "other_abuse")


@dataclass(frozen=True)
class AccountLabel:
    label: str
    population: str
    campaign_id: str | None
    exchanges: int
    first_seen: datetime


@dataclass(frozen=True)
class CampaignLabel:
    name: str
    tactics: tuple[str, ...]
    accounts: tuple[str, ...]
    exchanges: int


@dataclass(frozen=True)
class PopulationLabel:
    label: str
    heavy: bool
    accounts: int


@dataclass(frozen=True)
class WorldLabels:
    """The ground truth of one world."""

    window: tuple[datetime, datetime]
    accounts: dict[str, AccountLabel]
    campaigns: dict[str, CampaignLabel]
    populations: dict[str, PopulationLabel]


def parse_time(value: object, where: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware datetime."""
    if not isinstance(value, str):
        raise DistillwatchInputError(f"Expected an RFC 3339 timestamp, got {value!r}", where)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise DistillwatchInputError(f"Not an RFC 3339 timestamp: {value!r}", where) from error
    if moment.tzinfo is None:
        raise DistillwatchInputError(f"Timestamp has no UTC offset: {value!r}", where)
    return moment


def _require(entry: dict, key: str, kind: type | tuple, where: str):
    if key not in entry:
        raise DistillwatchInputError(f"Missing '{key}'", where)
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise DistillwatchInputError(f"'{key}' has the wrong type: {value!r}", where)
    return value


def _label(entry: dict, where: str) -> str:
    label = _require(entry, "label", str, where)
    if label not in LABELS:
        raise DistillwatchInputError(f"Unknown label '{label}'; expected one of "
                                     f"{', '.join(LABELS)}", where)
    return label


def load_labels(world_dir: Path) -> WorldLabels:
    """Load ``world_dir/labels.json`` and check that it is consistent.

    Raises:
        DistillwatchInputError: If it is missing, not JSON, or inconsistent; the message names
            the entry and what is wrong.
    """
    path = world_dir / "labels.json"
    if not path.is_file():
        raise DistillwatchInputError(
            "No labels.json: is this a world written by `distillwatch simulate`?", str(world_dir))
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as error:
        raise DistillwatchInputError(f"labels.json is not valid JSON: {error}",
                                     str(path)) from error
    source = str(path)
    if not isinstance(data, dict) or data.get("schema_version") != "1":
        raise DistillwatchInputError("Unsupported labels: expected schema_version '1'", source)
    window = _require(data, "window", dict, source)
    start = parse_time(window.get("start"), f"{source}: window.start")
    end = parse_time(window.get("end"), f"{source}: window.end")

    populations = {}
    for name, entry in _require(data, "populations", dict, source).items():
        where = f"{source}: populations.{name}"
        label = _label(entry, where)
        populations[name] = PopulationLabel(label, bool(_require(entry, "heavy", bool, where)),
                                            _require(entry, "accounts", int, where))

    accounts = {}
    for account_id, entry in _require(data, "accounts", dict, source).items():
        where = f"{source}: accounts.{account_id}"
        label = _label(entry, where)
        campaign = entry.get("campaign_id")
        if (label == "attack") != (campaign is not None):
            raise DistillwatchInputError(
                "An attack account needs a campaign_id and only attack accounts have one", where)
        population = _require(entry, "population", str, where)
        if population not in populations:
            raise DistillwatchInputError(f"Population '{population}' is not listed", where)
        accounts[account_id] = AccountLabel(
            label, population, campaign, _require(entry, "exchanges", int, where),
            parse_time(entry.get("first_seen"), f"{where}.first_seen"))

    campaigns = {}
    for campaign_id, entry in _require(data, "campaigns", dict, source).items():
        where = f"{source}: campaigns.{campaign_id}"
        members = tuple(_require(entry, "accounts", list, where))
        expected = {a for a, e in accounts.items() if e.campaign_id == campaign_id}
        if set(members) != expected:
            raise DistillwatchInputError(
                f"Campaign lists {len(members)} accounts but {len(expected)} accounts name it",
                where)
        campaigns[campaign_id] = CampaignLabel(
            str(entry.get("name", campaign_id)), tuple(entry.get("tactics", ())), members,
            _require(entry, "exchanges", int, where))
    orphans = {e.campaign_id for e in accounts.values() if e.campaign_id} - set(campaigns)
    if orphans:
        raise DistillwatchInputError(
            f"Accounts name campaigns that are not listed: {', '.join(sorted(orphans))}", source)
    return WorldLabels((start, end), accounts, campaigns, populations)
