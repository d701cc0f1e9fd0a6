"""The Watcher: the entry point that runs profile -> link -> score over a store.

Example:
    >>> from distillwatch.engine import DuckDBEngine
    >>> watcher = Watcher(DuckDBEngine("store.duckdb"))      # doctest: +SKIP
    >>> result = watcher.scan()                               # doctest: +SKIP
    >>> [c.campaign_id for c in result.campaigns]             # doctest: +SKIP
    ['C-0001', 'C-0002']
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from distillwatch.engine import Engine, SqlPipeline
from distillwatch.ingest.accounts import ACCOUNTS_SCHEMA, ACCOUNTS_TABLE
from distillwatch.ingest.store import FEATURES_TABLE
from distillwatch.link.campaigns import link_accounts
from distillwatch.link.edges import account_numbers, components_within, named_components
from distillwatch.link.expand_sql import (
    CLEAN,
    GROUPS,
    expansion_sqls,
    specific_token_sqls,
)
from distillwatch.link.fraudar import FAMILIES as DENSE_FAMILIES
from distillwatch.link.fraudar import background_density, dense_blocks
from distillwatch.link.tokens_sql import PART_EXCHANGES
from distillwatch.profile.features_sql import (
    IDENTITY_OUTPUT,
    account_feature_sqls,
    account_identity_sqls,
    account_window_sqls,
)
from distillwatch.profile.templates_sql import OUTPUT as TEMPLATES_OUTPUT
from distillwatch.profile.templates_sql import SHARED_KEYS, shared_key_sqls, template_share_sqls
from distillwatch.report.contract import AccountResult, CampaignResult
from distillwatch.score.build import build_campaigns
from distillwatch.score.policy import AccountFacts, Policy
from distillwatch.score.scorer import (
    FamilyScores,
    campaign_confidence,
    family_scores,
    noisy_or,
    solo_scores,
    to_profile,
)
from distillwatch.settings import Settings
from distillwatch.signals import SignalRegistry

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]
# An intent signal at this strength over a whole cluster is part of its signature behaviour,
# and an account shows that behaviour when its own fit reaches it.
SIGNATURE_STRENGTH = 0.5

# The dense-block search runs on the driver; above this many account-token edges it is skipped
# (and says so in the log) until it runs on the engine (issue 4).
MAX_DENSE_EDGES = 3_000_000


def signature_of(strengths: dict[str, float]) -> list[str]:
    """The intent signals a cluster shows strongly enough to be its signature behaviour."""
    return [name for name, strength in strengths.items() if strength >= SIGNATURE_STRENGTH]


@dataclass
class ScanResult:
    """Everything a scan found, ready for the report writers."""

    window: tuple[datetime, datetime] | None
    total_exchanges: int
    accounts: list[AccountResult]
    campaigns: list[CampaignResult]
    details: dict = field(default_factory=dict)
    # The unrounded figures behind ``AccountResult.score`` and ``CampaignResult.confidence``
    # (the output contract rounds them): for comparing engines and runs.
    account_scores: dict[str, float] = field(default_factory=dict)
    campaign_confidences: dict[str, float] = field(default_factory=dict)


class Watcher:
    """Runs a scan over the fingerprinted exchanges an engine holds.

    Args:
        engine: Holds the durable ``features`` table (and ``accounts``, if ingested).
        settings: Link and score settings.
        registry: The signals (default: every built-in signal).
        policy: Turns scores into decisions (default: the built-in policy).
        until: Scan only exchanges sent before this moment (replays, back-tests).
    """

    def __init__(self, engine: Engine, settings: Settings | None = None,
                 registry: SignalRegistry | None = None, policy: Policy | None = None,
                 until: datetime | None = None) -> None:
        self.engine = engine
        self.until = until
        self.settings = settings or Settings()
        self.registry = registry or SignalRegistry.default()
        for name in self.settings.disabled_signals:
            self.registry.remove(name)
        self.policy = policy or Policy.builtin()

    # -- stages --------------------------------------------------------------------------
    def prepare(self) -> None:
        """Expose the store as ``__dw__features`` and ``__dw__accounts``."""
        dropped = self.engine.drop_leftovers()
        if dropped:
            logger.info("dropped %d intermediate tables left by an interrupted run", dropped)
        tables = self.engine.table_names()
        where = ""
        if self.until is not None:
            moment = self.engine.dialect.timestamp_literal(self.until.astimezone(UTC).isoformat())
            where = f" WHERE ts < {moment}"
        self._view("__dw__features", f"SELECT * FROM {FEATURES_TABLE}{where}")
        if ACCOUNTS_TABLE in tables:
            self._view("__dw__accounts", f"SELECT * FROM {ACCOUNTS_TABLE}")
        else:
            self.engine.register("__dw__accounts",
                                 pa.Table.from_pylist([], schema=ACCOUNTS_SCHEMA))

    def profile(self) -> pa.Table:
        """Per-account behaviour and identity (``__dw__profile_accounts``)."""
        for steps in (account_feature_sqls(self.engine.dialect),
                      account_window_sqls(self.engine.dialect)):
            pipeline = SqlPipeline()
            pipeline.extend(steps)
            self.engine.run(pipeline)
        pipeline = SqlPipeline()
        pipeline.extend(account_identity_sqls(self.engine.dialect))
        return self.engine.run(pipeline).to_arrow()

    def link(self) -> pa.Table:
        """Clusters of linked accounts (node, component)."""
        return link_accounts(self.engine, self.settings.link,
                             self.settings.disabled_link_families,
                             on_scaffold_uses=self._shared_template_keys).to_arrow()

    def _shared_template_keys(self) -> None:
        """``__dw__profile_shared_keys`` for the template share, counted from the link stage's
        per-account key counts while they exist."""
        self.engine.run(SqlPipeline.of(shared_key_sqls()))

    def scan(self, progress: Progress | None = None) -> ScanResult:
        """Profile, link and score every account of the store.

        Args:
            progress: Called with a short message as each step starts.
        """
        say = progress or (lambda message: None)
        say("preparing")
        self.prepare()
        total = self.engine.fetch_arrow(
            "SELECT count(*) AS n, min(ts) AS first, max(ts) AS last FROM __dw__features"
        ).to_pylist()[0]
        if not total["n"]:
            return ScanResult(None, 0, [], [])
        say("profiling accounts")
        self.profile()
        say("linking accounts")
        components = self.link()
        say("scoring")
        profile = self._profile_with_templates(int(total["n"]))
        result = self._score(profile, components, say)
        result.window = (total["first"], total["last"])
        result.total_exchanges = int(total["n"])
        return result

    # -- scoring -------------------------------------------------------------------------
    def _profile_with_templates(self, exchanges: int) -> dict[str, np.ndarray]:
        parts = self.engine.parts_for(exchanges, PART_EXCHANGES)
        self.engine.run_parts(template_share_sqls(self.engine.dialect, parts))
        self.engine.drop(self.engine.frame(SHARED_KEYS))
        pipeline = SqlPipeline()
        pipeline.enqueue(f"""
SELECT p.*, coalesce(t.template_share, 0.0) AS template_share
FROM {IDENTITY_OUTPUT} p LEFT JOIN {TEMPLATES_OUTPUT} t ON t.account_id = p.account_id
""", "__dw__score_profile")
        # Rows in account order: engines return rows in no set order, and cluster sums and
        # weighted means must add up in the same order on every engine.
        return to_profile(self.engine.run(pipeline).to_arrow().sort_by("account_id"))

    def _score(self, profile: dict[str, np.ndarray], components: pa.Table,
               say: Progress) -> ScanResult:
        prior = self.settings.score.prior_exchanges
        ids = profile["account_id"]
        exchanges = profile["exchanges"]
        families = family_scores(profile, self.registry, prior)
        solo = solo_scores(families, exchanges)
        fits = {signal.NAME: signal.fit(profile) for signal in self.registry.get_signals("intent")}
        cluster = self._clusters(ids, components)
        cluster = self._split_by_signature(ids, cluster, exchanges, families, fits)
        stats = self._cluster_scores(cluster, exchanges, families)
        reported = [(index, conf, intent, conceal)
                    for index, (size, conf, intent, conceal, _) in enumerate(stats)
                    if size >= self.settings.score.min_campaign_accounts
                    and conf >= self.settings.score.min_campaign_confidence]
        reported.sort(key=lambda item: -exchanges[cluster == item[0]].sum())
        campaign_of = np.full(len(ids), None, dtype=object)
        confidence = np.zeros(len(ids))
        info, signatures = {}, {}
        for number, (index, conf, intent, conceal) in enumerate(reported, start=1):
            campaign_id = f"C-{number:04d}"
            info[campaign_id] = (conf, intent, conceal, stats[index][4])
            signatures[campaign_id] = signature_of(stats[index][4])
            members = cluster == index
            campaign_of[members] = campaign_id
            confidence[members] = conf
        added = self._expand(profile, families, campaign_of, signatures, fits)
        for i, campaign_id in added.items():
            campaign_of[i] = campaign_id
            confidence[i] = info[campaign_id][0]
        score = np.maximum(solo, confidence)
        accounts = []
        for i, account in enumerate(ids):
            facts = AccountFacts(float(score[i]), campaign_of[i] is not None,
                                 float(confidence[i]), profile["signup_channel"][i],
                                 profile["verified"][i], int(exchanges[i]))
            decision, _ = self.policy.decide(facts)
            reasons = families.evidence.reasons(i)
            if campaign_of[i] is not None:
                reasons = ["campaign_member", *reasons]
            accounts.append(AccountResult(str(account), round(float(score[i]), 6), decision,
                                          int(exchanges[i]), campaign_of[i], reasons))
        say("explaining campaigns")
        explainers = {signal.NAME: signal.explain for signal in self.registry.get_signals()
                      if signal.CAMPAIGN_EVIDENCE}
        campaigns, details = build_campaigns(self.engine, ids, campaign_of, info, families,
                                             exchanges, explainers, profile)
        say("searching dense blocks")
        details["dense_blocks"] = self._dense_blocks(campaigns)
        # Clusters that were not reported, for reviewers (and for tuning): near misses.
        reported_index = {index for index, *_ in reported}
        details["unreported_clusters"] = [
            {"accounts": size, "confidence": round(conf, 4), "intent": round(intent, 4),
             "concealment": round(conceal, 4),
             "members": sorted(str(a) for a in ids[cluster == index])[:20]}
            for index, (size, conf, intent, conceal, _) in enumerate(stats)
            if index not in reported_index and size >= 2]
        return ScanResult(None, 0, accounts, campaigns, details,
                          account_scores={str(a): float(v) for a, v in zip(ids, score,
                                                                           strict=True)},
                          campaign_confidences={c: float(v[0]) for c, v in info.items()})

    def _clean(self, profile: dict[str, np.ndarray], families: FamilyScores) -> np.ndarray:
        """Accounts that hide nothing: verified, or without concealment evidence."""
        verified = np.array([v is True for v in profile["verified"]])
        return verified | (families.concealment < self.settings.score.expand_min_concealment)

    def _specific_tokens(self, ids: np.ndarray, groups: np.ndarray, open_accounts: np.ndarray
                         ) -> None:
        """Register groups and open accounts, and build their specific template tokens."""
        grouped = np.array([g is not None and g != -1 for g in groups])
        self.engine.register(GROUPS, pa.table({
            "account_id": [str(a) for a in ids[grouped]],
            "group_id": [str(g) for g in groups[grouped]]}))
        self.engine.register(CLEAN, pa.table(
            {"account_id": [str(a) for a in ids[open_accounts & ~grouped]]},
            schema=pa.schema([("account_id", pa.string())])))
        pipeline = SqlPipeline()
        pipeline.extend(specific_token_sqls())
        self.engine.run(pipeline)

    def _expand(self, profile: dict[str, np.ndarray], families: FamilyScores,
                campaign_of: np.ndarray, signatures: dict[str, list[str]],
                fits: dict[str, np.ndarray]) -> dict[int, str]:
        """Accounts outside every campaign core that run a campaign's templates, hide like
        its accounts and show its signature behaviour: {profile row: campaign id}."""
        if not signatures:
            return {}
        ids = profile["account_id"]
        clean = self._clean(profile, families)
        self._specific_tokens(ids, campaign_of, clean)
        pipeline = SqlPipeline()
        pipeline.extend(expansion_sqls())
        # Sorted, so that an account matching two campaigns equally joins the first by id.
        rows = sorted(self.engine.run(pipeline).to_pylist(),
                      key=lambda row: (row["account_id"], row["group_id"]))
        best: dict[str, tuple[int, str]] = {}
        for row in rows:
            if row["matched"] > best.get(row["account_id"], (0, ""))[0]:
                best[row["account_id"]] = (row["matched"], row["group_id"])
        row_of = {str(a): i for i, a in enumerate(ids)}
        added = {}
        for account, (matched, campaign_id) in best.items():
            i = row_of.get(account)
            if i is None or matched < self.settings.score.expand_min_tokens:
                continue
            fit = max((fits[name][i] for name in signatures[campaign_id]), default=1.0)
            if fit >= SIGNATURE_STRENGTH and not clean[i]:
                added[i] = campaign_id
        logger.info("expansion: %d accounts joined campaigns by their templates", len(added))
        return added

    def _dense_blocks(self, campaigns: list) -> list[dict]:
        """FRAUDAR densest blocks of the account x token graph, as campaign evidence.

        A block that lies mostly inside a reported campaign adds a ``dense_block`` evidence
        line to it; the others are listed in the report's details for a reviewer.
        """
        query = f"""
SELECT t.account_id, concat(t.kind, ':', t.token) AS token
FROM __dw__link_tokens t
JOIN (SELECT kind, token FROM __dw__link_tokens GROUP BY kind, token HAVING count(*) >= 2) d
  ON d.kind = t.kind AND d.token = t.token
WHERE t.family IN ({", ".join(f"'{f}'" for f in DENSE_FAMILIES)})
"""
        # Counted before fetching, up to one past the limit (the count stops there: on the
        # first 10M exchanges of `stress` counting all 8.1M edges took 19 s): past the limit
        # the edges never reach the driver.
        count = self.engine.fetch_arrow(
            f"SELECT count(*) AS n FROM ({query} LIMIT {MAX_DENSE_EDGES + 1}) e",
            "dense-block edge count").column("n")[0].as_py()
        if count == 0 or count > MAX_DENSE_EDGES:
            logger.info("dense blocks: %s edges, skipped",
                        f"more than {MAX_DENSE_EDGES:,}" if count else "no")
            return []
        edges = self.engine.fetch_arrow(query, "dense-block edges")
        # The peeling's weight sums and tie breaks follow the edge order: make it one order.
        edges = edges.sort_by([("account_id", "ascending"), ("token", "ascending")])
        accounts = edges.column("account_id").to_pylist()
        tokens = edges.column("token").to_pylist()
        background = background_density(accounts, tokens)
        member_of = {a: c for c in campaigns for a in c.accounts}
        out = []
        for block in dense_blocks(accounts, tokens):
            inside: dict[str, int] = {}
            for account in block.accounts:
                if account in member_of:
                    inside[member_of[account].campaign_id] = inside.get(
                        member_of[account].campaign_id, 0) + 1
            campaign_id, count = max(inside.items(), key=lambda kv: kv[1], default=(None, 0))
            ratio = block.density / background if background else 0.0
            out.append({"accounts": len(block.accounts), "columns": block.columns,
                        "density": round(block.density, 4), "ratio": round(ratio, 2),
                        "campaign_id": campaign_id if count >= 0.5 * len(block.accounts)
                        else None})
            if count >= 0.5 * len(block.accounts):
                campaign = next(c for c in campaigns if c.campaign_id == campaign_id)
                campaign.evidence.insert(1, {
                    "kind": "dense_block", "weight": round(min(1.0, ratio / 4), 3),
                    "detail": (f"FRAUDAR densest-block search: a block of {len(block.accounts):,}"
                               f" accounts x {block.columns:,} shared network, payment and "
                               f"scaffold tokens ({count:,} of them in this campaign) has "
                               f"density {block.density:.2f}, {ratio:.1f}x the whole graph's; "
                               "popular tokens added as camouflage weigh almost nothing")})
        return out

    @staticmethod
    def _clusters(ids: np.ndarray, components: pa.Table) -> np.ndarray:
        """Cluster index per profile row (-1: linked to nobody), numbered in the order of the
        components' labels (their smallest account id), whatever order the engine returns."""
        components = components.sort_by([("component", "ascending"), ("node", "ascending")])
        row_of = {account: i for i, account in enumerate(ids)}
        cluster = np.full(len(ids), -1)
        labels: dict[str, int] = {}
        for node, component in zip(components.column("node").to_pylist(),
                                   components.column("component").to_pylist(), strict=True):
            if node in row_of:
                cluster[row_of[node]] = labels.setdefault(component, len(labels))
        return cluster

    def _split_by_signature(self, ids: np.ndarray, cluster: np.ndarray, exchanges: np.ndarray,
                            families: FamilyScores, fits: dict[str, np.ndarray]) -> np.ndarray:
        """Split clusters into accounts that show their signature behaviour and those that don't.

        A cluster's signature is every intent signal it shows at ``SIGNATURE_STRENGTH`` or
        more as a whole; an account fits when it shows at least one of them itself
        (``Signal.fit``). Linking evidence can join two operators (a public chain-of-thought
        wrapper both use, sign-ups the same morning) or touch a bystander (a residential /24
        a proxy network also exits from); they do not run the same script. The fitting and
        the other accounts are re-clustered apart, over the edges within each part, until no
        cluster splits (at most three rounds); the edges are read by account number, chunk by
        chunk, and joined on the driver (``link.edges.components_within``).
        """
        names, number_of = None, {}
        for _ in range(3):
            stats = self._cluster_scores(cluster, exchanges, families)
            part = np.where(cluster >= 0, cluster * 2, -1)
            split = 0
            for index, (_, _, _, _, strengths) in enumerate(stats):
                dominant = signature_of(strengths)
                if not dominant:
                    continue
                members = cluster == index
                fit = np.maximum.reduce([fits[name] for name in dominant]) >= SIGNATURE_STRENGTH
                misfits = members & ~fit
                if misfits.any():
                    part[misfits] = index * 2 + 1
                    split += 1
            if not split:
                return cluster
            logger.info("campaign split: %d of %d clusters hold accounts without their "
                        "signature", split, len(stats))
            if names is None:  # read once, on the first round that splits
                names = account_numbers(self.engine)
                number_of = {name: number for number, name in enumerate(names.to_pylist())}
            part_of = np.full(len(names), -1, dtype=np.int64)
            for row in np.flatnonzero(part >= 0):
                part_of[number_of[str(ids[row])]] = part[row]
            cluster = self._clusters(ids, named_components(
                names, *components_within(self.engine, part_of)))
        return cluster

    def _cluster_scores(self, cluster: np.ndarray, exchanges: np.ndarray,
                        families: FamilyScores
                        ) -> list[tuple[int, float, float, float, dict[str, float]]]:
        """(accounts, confidence, intent, concealment, intent signal strengths) per cluster.

        A cluster is judged over its exchanges as a whole: exchange-weighted means of the
        members' signal values, then each signal's ramp and weight.
        """
        in_cluster = cluster >= 0
        count = int(cluster.max()) + 1 if in_cluster.any() else 0
        if count == 0:
            return []
        labels = cluster[in_cluster]
        weights = np.bincount(labels, weights=exchanges[in_cluster], minlength=count)
        sizes = np.bincount(labels, minlength=count)
        merged: dict[str, dict[str, np.ndarray]] = {"intent": {}, "concealment": {}}
        for signal in self.registry.get_signals():
            values = families.evidence.values[signal.NAME]
            total = np.bincount(labels, weights=(values * exchanges)[in_cluster],
                                minlength=count)
            mean = total / np.maximum(weights, 1.0)
            merged[signal.FAMILY][signal.NAME] = signal.weight * signal.campaign_strength(mean)
        intent = noisy_or(list(merged["intent"].values())) if merged["intent"] \
            else np.zeros(count)
        conceal = noisy_or(list(merged["concealment"].values())) if merged["concealment"] \
            else np.zeros(count)
        conf = campaign_confidence(sizes.astype(float), intent, conceal, weights)
        return [(int(sizes[i]), float(conf[i]), float(intent[i]), float(conceal[i]),
                 {name: float(values[i]) for name, values in merged["intent"].items()})
                for i in range(count)]

    def _view(self, name: str, sql: str) -> None:
        pipeline = SqlPipeline()
        pipeline.enqueue(sql, name)
        self.engine.run(pipeline, materialise=False)
