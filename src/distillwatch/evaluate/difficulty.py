"""How hard a world is for naive detectors: can one simple signal separate the campaigns?

Four signals a first detector would try, per account: exchanges per active day, the share of
exchanges whose template (system prompt + prompt opening) at least three accounts send, the
share that asks for a reasoning trace, and the share sent from hosting networks. A signal
separates the world if some threshold flags at least half the accounts of every campaign and
no heavy legitimate user: that is, if every campaign's median lies above every heavy user.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from distillwatch.evaluate.baselines import COT_PATTERN, last_user_text
from distillwatch.evaluate.labels import WorldLabels
from distillwatch.io import find_exchange_files, iter_exchanges

SIGNALS = ("volume_per_day", "template_sharing", "cot_rate", "hosting_share")
SHARED_BY = 3
OPENING_CHARS = 40


def simple_signals(world_dir: Path) -> dict[str, dict[str, float]]:
    """The four naive signals of every account of a world."""
    volume: Counter[str] = Counter()
    days: dict[str, set[str]] = defaultdict(set)
    cot: Counter[str] = Counter()
    hosting: Counter[str] = Counter()
    templates: dict[str, Counter[str]] = defaultdict(Counter)
    senders: dict[str, set[str]] = defaultdict(set)
    for exchange in iter_exchanges(find_exchange_files(world_dir)):
        account = exchange["account_id"]
        request = exchange["request"]
        text = last_user_text(request)
        volume[account] += 1
        days[account].add(exchange["timestamp"][:10])
        cot[account] += bool(COT_PATTERN.search(text)
                             or (request.get("reasoning") or {}).get("enabled"))
        hosting[account] += (exchange.get("client") or {}).get("asn_kind") == "hosting"
        template = f"{request.get('system') or ''}|{text[:OPENING_CHARS]}"
        templates[account][template] += 1
        senders[template].add(account)
    return {
        account: {
            "volume_per_day": n / len(days[account]),
            "template_sharing": sum(c for t, c in templates[account].items()
                                    if len(senders[t]) >= SHARED_BY) / n,
            "cot_rate": cot[account] / n,
            "hosting_share": hosting[account] / n,
        }
        for account, n in volume.items()
    }


@dataclass(frozen=True)
class Separability:
    signal: str
    lowest_campaign_median: float
    lowest_campaign: str
    highest_heavy_user: float
    highest_heavy_population: str

    @property
    def separable(self) -> bool:
        """True if a threshold catches every campaign and no heavy user."""
        return self.lowest_campaign_median > self.highest_heavy_user


def separability(labels: WorldLabels, table: dict[str, dict[str, float]]) -> list[Separability]:
    """For each signal, the weakest campaign's median against the strongest heavy user."""
    heavy = {a: e.population for a, e in labels.accounts.items()
             if e.label == "legit" and labels.populations[e.population].heavy}
    out = []
    for signal in SIGNALS:
        medians = {c: statistics.median(table[a][signal] for a in campaign.accounts)
                   for c, campaign in labels.campaigns.items()}
        weakest = min(medians, key=medians.get)
        top = max(heavy, key=lambda a: table[a][signal])
        out.append(Separability(signal, medians[weakest], weakest, table[top][signal],
                                heavy[top]))
    return out
