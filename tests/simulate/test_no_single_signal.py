"""No simple signal separates every campaign from every legitimate heavy user.

For each signal, a threshold that flagged at least half the accounts of every campaign (the
campaign-recall rule) would have to sit at or below the lowest campaign median; the test asserts
that some heavy-user account reaches that value, so any such threshold blocks a good customer.
"""

from __future__ import annotations

import gzip
import json
import re
import statistics
from collections import Counter, defaultdict

import pytest

COT = re.compile(r"step[ -]by[ -]step|think (?:it )?through|show (?:all of )?your (?:full )?"
                 r"reasoning|chain[ -]of[ -]thought|<reasoning>|<thinking>", re.IGNORECASE)


def _text(content) -> str:
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content)
    return content or ""


@pytest.fixture(scope="module")
def signals(ci_world):
    labels = json.loads((ci_world / "labels.json").read_text())
    volume: Counter[str] = Counter()
    days: dict[str, set[str]] = defaultdict(set)
    cot: Counter[str] = Counter()
    hosting: Counter[str] = Counter()
    frames: dict[str, Counter[str]] = defaultdict(Counter)
    frame_accounts: dict[str, set[str]] = defaultdict(set)
    with gzip.open(ci_world / "exchanges.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            exchange = json.loads(line)
            account = exchange["account_id"]
            request = exchange["request"]
            last_user = next(_text(m["content"]) for m in reversed(request["messages"])
                             if m["role"] == "user")
            volume[account] += 1
            days[account].add(exchange["timestamp"][:10])
            cot[account] += bool(COT.search(last_user) or (request.get("reasoning") or {})
                                 .get("enabled"))
            hosting[account] += exchange["client"]["asn_kind"] == "hosting"
            # A template fingerprint a naive detector would use: system prompt + prompt opening.
            frame = f"{request.get('system') or ''}|{last_user[:40]}"
            frames[account][frame] += 1
            frame_accounts[frame].add(account)
    table = {}
    for account in labels["accounts"]:
        shared = sum(n for f, n in frames[account].items() if len(frame_accounts[f]) >= 3)
        table[account] = {
            "volume_per_day": volume[account] / len(days[account]),
            "template_sharing": shared / volume[account],
            "cot_rate": cot[account] / volume[account],
            "hosting_share": hosting[account] / volume[account],
        }
    return labels, table


@pytest.mark.parametrize("signal", ["volume_per_day", "template_sharing", "cot_rate",
                                    "hosting_share"])
def test_no_threshold_on_one_signal_catches_every_campaign_without_a_heavy_user(signals, signal):
    labels, table = signals
    heavy = {p for p, e in labels["populations"].items() if e["heavy"]}
    lowest_campaign_median = min(
        statistics.median(table[a][signal] for a in campaign["accounts"])
        for campaign in labels["campaigns"].values()
    )
    highest_heavy = max(table[a][signal] for a, e in labels["accounts"].items()
                        if e["population"] in heavy)
    assert highest_heavy >= lowest_campaign_median, (
        f"{signal}: a threshold in ({highest_heavy:.3f}, {lowest_campaign_median:.3f}] "
        "catches every campaign and no heavy user"
    )
