"""The ci world: valid records, consistent labels, every population present."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import jsonschema
import pytest

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "shared" / "schema"
HEAVY = {"content_agency", "support_bot", "tool_product", "eval_vendor", "labelling_pipeline",
         "bilingual_team", "coding_agent_devs"}


def _exchanges(world: Path):
    with gzip.open(world / "exchanges.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


@pytest.fixture(scope="module")
def labels(ci_world):
    return json.loads((ci_world / "labels.json").read_text())


def test_exchanges_are_valid_against_the_schema(ci_world):
    schema = json.loads((SCHEMA_DIR / "exchange.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema,
                                                format_checker=jsonschema.FormatChecker())
    checked = 0
    for i, exchange in enumerate(_exchanges(ci_world)):
        if i % 25:
            continue
        errors = list(validator.iter_errors(exchange))
        assert not errors, f"{exchange['exchange_id']}: {errors[0].message}"
        checked += 1
    assert checked > 1000


def test_accounts_are_valid_against_the_schema(ci_world, labels):
    schema = json.loads((SCHEMA_DIR / "account.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    records = [json.loads(line) for line in (ci_world / "accounts.jsonl").open()]
    for record in records:
        assert not list(validator.iter_errors(record)), record
    assert set(labels["accounts"]) <= {r["account_id"] for r in records}


def test_exchanges_are_in_time_order_with_unique_ids(ci_world):
    last, ids = "", set()
    for exchange in _exchanges(ci_world):
        assert exchange["timestamp"] >= last
        last = exchange["timestamp"]
        ids.add(exchange["exchange_id"])
    assert len(ids) > 30_000


def test_labels_agree_with_the_exchanges(ci_world, labels):
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for exchange in _exchanges(ci_world):
        counts[exchange["account_id"]] += 1
        first.setdefault(exchange["account_id"], exchange["timestamp"])
    assert set(counts) == set(labels["accounts"])
    for account_id, entry in labels["accounts"].items():
        assert entry["exchanges"] == counts[account_id]
        assert entry["first_seen"] == first[account_id]
        if entry["label"] == "attack":
            assert entry["campaign_id"] in labels["campaigns"]
            assert entry["tactics"]
        else:
            assert entry["campaign_id"] is None
    for campaign_id, campaign in labels["campaigns"].items():
        members = {a for a, e in labels["accounts"].items() if e["campaign_id"] == campaign_id}
        assert set(campaign["accounts"]) == members
        assert campaign["exchanges"] == sum(counts[a] for a in members)
        assert abs(sum(campaign["capabilities"].values()) - 1) < 1e-3


def test_every_population_of_the_benchmark_is_present(labels):
    populations = labels["populations"]
    assert {p for p, e in populations.items() if e["heavy"]} >= HEAVY
    assert populations["ordinary"]["label"] == "legit"
    assert populations["jailbreaker"]["label"] == "other_abuse"
    assert len(labels["campaigns"]) >= 5
    for population, entry in populations.items():
        assert entry["accounts"] > 0, population


def test_campaigns_are_compositions_of_tactics_with_knobs(labels):
    from distillwatch.simulate.tactics import TACTICS

    for campaign in labels["campaigns"].values():
        assert len(campaign["tactics"]) >= 3
        assert set(campaign["tactics"]) <= set(TACTICS)
        assert set(campaign["tactics"]) <= set(campaign["knobs"])


def test_two_campaigns_share_almost_no_infrastructure(ci_world, labels):
    """At least one pair of campaigns shares no /24 and no payment instrument."""
    prefixes: dict[str, set[str]] = defaultdict(set)
    for exchange in _exchanges(ci_world):
        campaign = labels["accounts"][exchange["account_id"]]["campaign_id"]
        if campaign:
            prefixes[campaign].add(exchange["client"]["ip"].rsplit(".", 1)[0])
    payments: dict[str, set[str]] = defaultdict(set)
    for line in (ci_world / "accounts.jsonl").open():
        record = json.loads(line)
        entry = labels["accounts"].get(record["account_id"])
        if entry and entry["campaign_id"]:
            payments[entry["campaign_id"]].add(record["payment_fingerprint"])
    ids = sorted(prefixes)
    disjoint = [
        (a, b) for i, a in enumerate(ids) for b in ids[i + 1:]
        if not prefixes[a] & prefixes[b] and not payments[a] & payments[b]
    ]
    assert disjoint


def test_no_legitimate_session_is_used_by_two_accounts(ci_world, labels):
    """A real conversation (its opening prompt and the real reply to it) is never sent by two
    legitimate accounts. Distinct sessions may open with the same popular prompt."""

    def text(content) -> str:
        if isinstance(content, list):
            return " ".join(part.get("text", "") for part in content)
        return content or ""

    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    conversations = 0
    for exchange in _exchanges(ci_world):
        entry = labels["accounts"][exchange["account_id"]]
        if entry["population"] not in ("ordinary", "coding_agent_devs", "bilingual_team"):
            continue
        messages = exchange["request"]["messages"]
        # Greetings ("hi" -> "Hello! How can I help?") recur across real sessions.
        if len(messages) >= 3 and messages[1]["role"] == "assistant" and len(text(
                messages[0]["content"])) > 40:
            key = (text(messages[0]["content"]), text(messages[1]["content"]))
            owners[key].add(exchange["account_id"])
    conversations = len(owners)
    shared = {k[0][:60]: v for k, v in owners.items() if len(v) > 1}
    assert conversations > 300
    assert not shared
