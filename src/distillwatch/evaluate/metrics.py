"""The benchmark's metrics (shared/BENCHMARK.md, "How it is judged").

- An account is **flagged** when it is listed in a reported campaign or decided verify / block.
- A campaign is **found** when at least half of its accounts are flagged.
- Other-abuse accounts (jailbreakers) are never counted as distillation: they are left out of
  precision, recall and PR-AUC and reported apart.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from sklearn.metrics import average_precision_score

from distillwatch.evaluate.labels import WorldLabels
from distillwatch.evaluate.scan_output import ScanOutput

FOUND_SHARE = 0.5
MAX_LISTED = 20


@dataclass
class CampaignOutcome:
    campaign_id: str
    name: str
    accounts: int
    flagged_accounts: int
    flagged_share: float
    found: bool
    exchanges: int
    covered_exchanges: int
    reported_as: dict[str, int]  # reported campaign id -> how many of its accounts


@dataclass
class PopulationOutcome:
    population: str
    heavy: bool
    accounts: int
    flagged: int
    fpr: float
    flagged_accounts: list[str]


@dataclass
class Evaluation:
    """Every metric of one scan against one world."""

    campaign_recall: float
    campaigns_found: int
    campaigns_total: int
    account_precision: float
    account_recall: float
    legit_fpr: float
    heavy_fpr: float
    exchange_coverage: float
    pr_auc: float
    other_abuse_flagged_rate: float
    flagged_accounts: int
    accounts_missing_from_scan: int
    unknown_accounts: int
    campaigns: list[CampaignOutcome] = field(default_factory=list)
    populations: list[PopulationOutcome] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready; NaN (a metric with no defined value) becomes null."""
        def clean(value):
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def evaluate(labels: WorldLabels, scan: ScanOutput) -> Evaluation:
    """Score ``scan`` against ``labels``.

    Args:
        labels: The world's ground truth.
        scan: What the scan reported.

    Returns:
        The metrics, with per-campaign and per-population detail.
    """
    flagged = scan.flagged() & set(labels.accounts)
    reported_in = {a: c.campaign_id for c in scan.campaigns for a in c.accounts}

    campaigns = []
    for campaign_id, truth in sorted(labels.campaigns.items()):
        members = truth.accounts
        hit = [a for a in members if a in flagged]
        share = _ratio(len(hit), len(members))
        campaigns.append(CampaignOutcome(
            campaign_id=campaign_id, name=truth.name, accounts=len(members),
            flagged_accounts=len(hit), flagged_share=share, found=share >= FOUND_SHARE,
            exchanges=sum(labels.accounts[a].exchanges for a in members),
            covered_exchanges=sum(labels.accounts[a].exchanges for a in hit),
            reported_as=dict(Counter(reported_in[a] for a in hit if a in reported_in)),
        ))

    attack = {a for a, e in labels.accounts.items() if e.label == "attack"}
    legit = {a for a, e in labels.accounts.items() if e.label == "legit"}
    abuse = {a for a, e in labels.accounts.items() if e.label == "other_abuse"}

    populations = []
    for name, population in labels.populations.items():
        if population.label != "legit":
            continue
        members = sorted(a for a, e in labels.accounts.items() if e.population == name)
        hit = [a for a in members if a in flagged]
        populations.append(PopulationOutcome(
            population=name, heavy=population.heavy, accounts=len(members), flagged=len(hit),
            fpr=_ratio(len(hit), len(members)), flagged_accounts=hit[:MAX_LISTED]))
    populations.sort(key=lambda p: (not p.heavy, p.population))
    heavy = {a for a in legit if labels.populations[labels.accounts[a].population].heavy}

    scored = sorted(attack | legit)
    truth = [a in attack for a in scored]
    scores = [scan.accounts[a].score if a in scan.accounts else 0.0 for a in scored]
    pr_auc = (float(average_precision_score(truth, scores)) if any(truth) and not all(truth)
              else float("nan"))
    attack_exchanges = sum(labels.accounts[a].exchanges for a in attack)
    return Evaluation(
        campaign_recall=_ratio(sum(c.found for c in campaigns), len(campaigns)),
        campaigns_found=sum(c.found for c in campaigns),
        campaigns_total=len(campaigns),
        account_precision=_ratio(len(flagged & attack), len(flagged & (attack | legit))),
        account_recall=_ratio(len(flagged & attack), len(attack)),
        legit_fpr=_ratio(len(flagged & legit), len(legit)),
        heavy_fpr=_ratio(len(flagged & heavy), len(heavy)),
        exchange_coverage=_ratio(sum(labels.accounts[a].exchanges for a in flagged & attack),
                                 attack_exchanges),
        pr_auc=pr_auc,
        other_abuse_flagged_rate=_ratio(len(flagged & abuse), len(abuse)),
        flagged_accounts=len(flagged),
        accounts_missing_from_scan=sum(a not in scan.accounts for a in labels.accounts),
        unknown_accounts=sum(a not in labels.accounts for a in scan.accounts),
        campaigns=campaigns,
        populations=populations,
    )
