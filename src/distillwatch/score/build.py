"""Reported clusters -> campaign results: figures, evidence in words, tactics, indicators."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from distillwatch.engine import Engine, SqlPipeline, SqlStep
from distillwatch.report import details_sql as q
from distillwatch.report.contract import CampaignResult
from distillwatch.score.scorer import FamilyScores
from distillwatch.signals.builtin.identity import RISKY_CHANNELS

TOP_TEMPLATES, TOP_PREFIXES = 50, 100
# Exchanges per account per active day at or below which a campaign paces itself to pass
# under per-account limits (the public cases average ~26).
LOW_AND_SLOW_PER_DAY = 12.0
# Share of a campaign's exchanges on a just-released model that marks a pivot (and at least
# twice the share of all accounts).
PIVOT_SHARE = 0.3


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scaffold_fingerprint(token: str) -> str:
    """The shareable form of a scaffold token: ``sk-`` and the keyed hash as 16 hex digits."""
    return f"sk-{int(token[1:]) & 0xFFFFFFFFFFFFFFFF:016x}"


def template_opening(skeleton: str | None, words: int = 8) -> str:
    """The opening words of a masked skeleton: the part of a template its accounts share.

    Only the opening (what the head key hashes) is common to the accounts that share the
    head; the rest of one exchange's skeleton can carry that exchange's payload.
    """
    opening = (skeleton or "").split()
    return " ".join(opening[:words]) + (" …" if len(opening) > words else "")


def _in_order(rows: list[dict]) -> list[dict]:
    """Rows sorted on all their columns: engines return rows in no set order, and the lists
    below are cut after sorting on one figure, where ties must fall the same way."""
    return sorted(rows, key=lambda row: tuple((value is None, 0 if value is None else value)
                                              for value in row.values()))


def _run(engine: Engine, steps) -> dict[str, list[dict]]:
    pipeline = SqlPipeline()
    pipeline.extend(steps)
    rows = _in_order(engine.run(pipeline).to_pylist())
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row.pop("campaign_id")].append(row)
    return grouped


def build_campaigns(engine: Engine, ids: np.ndarray, campaign_of: np.ndarray,
                    info: dict[str, tuple[float, float, float, dict[str, float]]],
                    families: FamilyScores,
                    exchanges: np.ndarray, explainers: dict[str, Callable[[float], str]],
                    profile: dict[str, np.ndarray] | None = None
                    ) -> tuple[list[CampaignResult], dict]:
    """Campaign results and report details for every reported campaign.

    Args:
        engine: Holds the scan's features, accounts and link tables.
        ids: Account ids (profile row order).
        campaign_of: Campaign id per account, or None.
        info: (confidence, intent, concealment, campaign-scale strength of each intent
            signal) per campaign id.
        families: Per-account signal evidence.
        exchanges: Exchanges per account.
        explainers: Each signal's ``explain``, for the evidence lines.
        profile: The per-account profile (window columns feed pacing and pivot evidence).
    """
    if not info:
        return [], {"campaigns": {}}
    members = [(str(a), c) for a, c in zip(ids, campaign_of, strict=True) if c is not None]
    engine.register(q.MEMBERS, pa.table({"account_id": [m[0] for m in members],
                                         "campaign_id": [m[1] for m in members]}))
    dialect = engine.dialect
    totals = {r["campaign_id"]: r for r in _flat(engine, q.campaign_totals_sql(dialect))}
    capabilities = _run(engine, q.breakdown_sql("capability", "capability", "other",
                                                "__dw__scan_capabilities"))
    daily = _run(engine, q.daily_sql(dialect))
    networks = _run(engine, q.networks_sql())
    prefixes = _run(engine, q.prefixes_sql())
    countries = _run(engine, q.breakdown_sql("client_country", "country", "??",
                                             "__dw__scan_countries"))
    models = _run(engine, q.breakdown_sql("model", "model", "unknown", "__dw__scan_models"))
    steps = q.identity_sql()
    payments = _run(engine, steps[:1])
    channels = _run(engine, steps[1:])
    steps = q.templates_sql(dialect)
    tokens = _run(engine, steps[:1])
    heads = _run(engine, steps[1:])
    sync = {r["campaign_id"]: r for r in _flat(engine, [_member_ids_step(), _sync_step()])}

    results, details = [], {}
    for campaign_id, (confidence, intent, concealment, signature) in info.items():
        mask = campaign_of == campaign_id
        total = totals[campaign_id]
        n_accounts = int(mask.sum())
        caps = capabilities.get(campaign_id, [])
        cap_total = sum(r["exchanges"] for r in caps) or 1
        capability_share = {r["capability"]: round(r["exchanges"] / cap_total, 4)
                            for r in sorted(caps, key=lambda r: -r["exchanges"])}
        weights = exchanges[mask]
        means = {name: float(np.average(values[mask], weights=weights))
                 for name, values in families.evidence.values.items()}
        # Intent is judged on the campaign's scale (its signature); concealment signals by
        # the members' own strengths.
        strengths = {name: float(np.average(s[mask], weights=weights))
                     for name, s in families.evidence.strengths.items()}
        strengths.update(signature)
        shared_tokens = sorted(tokens.get(campaign_id, []), key=lambda r: -r["accounts"])
        template_tokens = [r for r in shared_tokens
                           if r["accounts"] >= max(2, 0.2 * n_accounts)][:TOP_TEMPLATES]
        shared_prefixes = sorted(prefixes.get(campaign_id, []), key=lambda r: -r["accounts"])
        shared_payments = sorted(payments.get(campaign_id, []), key=lambda r: -r["accounts"])
        nets = sorted(networks.get(campaign_id, []), key=lambda r: -r["exchanges"])
        chans = channels.get(campaign_id, [])
        evidence = _evidence(n_accounts, total, means, strengths, template_tokens,
                             shared_prefixes, shared_payments, chans, sync.get(campaign_id),
                             explainers)
        windows = _window_evidence(profile, mask, weights)
        evidence.extend(windows)
        tactics = _tactics(n_accounts, total, means, strengths, template_tokens,
                           shared_payments, sync.get(campaign_id), chans)
        if any(item["kind"] == "model_pivot" for item in windows):
            tactics.append("model_pivot")
        asns = sorted({r["asn"] for r in nets if r["asn_kind"] in ("proxy", "vpn", "tor",
                                                                    "hosting")
                       and r["accounts"] >= max(2, 0.2 * n_accounts)})
        results.append(CampaignResult(
            campaign_id=campaign_id,
            confidence=round(confidence, 4),
            accounts=sorted(str(a) for a in ids[mask]),
            exchange_count=int(total["exchanges"]),
            first_seen=_iso(total["first_seen"]),
            last_seen=_iso(total["last_seen"]),
            capabilities=capability_share,
            tactics=tactics,
            evidence=evidence,
            indicators={
                "templates": [scaffold_fingerprint(r["token"]) for r in template_tokens],
                "ip_prefixes": [r["prefix"] for r in shared_prefixes[:TOP_PREFIXES]],
                "asns": asns,
                "payment_fingerprints": [r["payment_fingerprint"] for r in shared_payments],
            },
        ))
        details[campaign_id] = {
            "daily": [{"day": datetime.fromtimestamp(r["day"] * 86400, UTC).date().isoformat(),
                       "exchanges": r["exchanges"], "active_accounts": r["active_accounts"],
                       "new_accounts": r["new_accounts"]}
                      for r in sorted(daily.get(campaign_id, []), key=lambda r: r["day"])],
            "networks": nets[:20],
            "countries": sorted(countries.get(campaign_id, []),
                                key=lambda r: -r["exchanges"])[:20],
            "payments": shared_payments[:20],
            "signup_channels": sorted(({"channel": r["channel"], "accounts": r["accounts"]}
                                       for r in chans), key=lambda r: -r["accounts"]),
            "templates": [{"fingerprint": f"hk-{r['head_key'] & 0xFFFFFFFFFFFFFFFF:016x}",
                           "masked": template_opening(r["masked"]), "accounts": r["accounts"],
                           "exchanges": r["exchanges"]}
                          for r in sorted(heads.get(campaign_id, []),
                                          key=lambda r: -r["exchanges"])[:10]],
            "models": sorted(models.get(campaign_id, []), key=lambda r: -r["exchanges"]),
            "intent": round(intent, 4), "concealment": round(concealment, 4),
        }
    return results, {"campaigns": details}


def _flat(engine: Engine, steps) -> list[dict]:
    pipeline = SqlPipeline()
    pipeline.extend(steps)
    return engine.run(pipeline).to_pylist()


def _sync_step() -> SqlStep:
    return SqlStep("""
SELECT ma.campaign_id, count(*) AS pairs,
       avg(p.sync_jaccard) AS mean_sync,
       sum(CASE WHEN p.s_timing > 0 THEN 1 ELSE 0 END) AS lockstep_pairs
FROM __dw__link_pairs p
JOIN __dw__scan_member_ids ma ON ma.id = p.ia
JOIN __dw__scan_member_ids mb ON mb.id = p.ib AND mb.campaign_id = ma.campaign_id
GROUP BY ma.campaign_id
""", "__dw__scan_sync")


def _member_ids_step() -> SqlStep:
    """Campaign members by account number (``__dw__link_ids``), as pairs are keyed."""
    return SqlStep(f"""
SELECT m.campaign_id, i.id FROM {q.MEMBERS} m JOIN __dw__link_ids i ON i.account_id = m.account_id
""", "__dw__scan_member_ids")


def _evidence(n_accounts, total, means, strengths, templates, prefixes, payments, channels,
              sync, explainers) -> list[dict]:
    out = []
    per_account = total["exchanges"] / max(n_accounts, 1)
    out.append({"kind": "linked_accounts", "weight": 1.0, "detail": (
        f"{n_accounts:,} accounts linked by at least two independent kinds of evidence; "
        f"{total['exchanges']:,} exchanges, {per_account:,.0f} per account, "
        f"{total['per_account_day']:.0f} per account per active day")})
    if templates:
        top = templates[0]["accounts"]
        out.append({"kind": "shared_template", "weight": round(min(1.0, top / n_accounts), 3),
                    "detail": (f"{top:,} of {n_accounts:,} accounts send prompts built on one "
                               f"scaffold; {len(templates)} scaffold fingerprints are shared by "
                               "a fifth of the accounts or more")})
    coverage = total["distinct_prompt_share"]
    if coverage >= 0.95 and total["exchanges"] >= 50:
        out.append({"kind": "coverage_sweep", "weight": round(coverage, 3), "detail": (
            f"{coverage:.1%} of the campaign's {total['exchanges']:,} prompts are distinct: "
            "each task asked once across all its accounts")})
    for name, explain in explainers.items():
        if name != "templated_sweep" and strengths.get(name, 0.0) >= 0.3:
            out.append({"kind": name, "weight": round(strengths[name], 3),
                        "detail": explain(means[name])})
    if prefixes or total["distinct_ips"]:
        shared = len(prefixes)
        out.append({"kind": "shared_network", "weight": round(min(1.0, shared / 10), 3),
                    "detail": (
                        f"{total['distinct_ips']:,} client IPs in {total['distinct_prefixes']:,} "
                        f"/24 prefixes (IPv6: /64s in /48s) across {total['distinct_asns']:,} "
                        f"ASNs; {shared:,} prefixes used by two or more of its accounts; "
                        f"{total['anonymising_share']:.0%} "
                        f"proxy/VPN/Tor, {total['hosting_share']:.0%} hosting")})
    if payments:
        paying = sum(r["accounts"] for r in payments)
        out.append({"kind": "shared_payment", "weight": round(min(1.0, paying / n_accounts), 3),
                    "detail": f"{paying:,} accounts pay with {len(payments):,} instruments each "
                              "shared by two or more of them"})
    known = [r for r in channels if r["channel"] != "unknown"]
    if known:
        accounts = sum(r["accounts"] for r in known)
        risky = sum(r["accounts"] for r in known if r["channel"] in RISKY_CHANNELS)
        verified = sum(r["verified"] or 0 for r in known)
        out.append({"kind": "signup_channel", "weight": round(risky / accounts, 3), "detail": (
            f"{risky / accounts:.0%} opened through education / startup / research programmes; "
            f"{verified / accounts:.0%} verified")})
    if sync and sync["lockstep_pairs"]:
        out.append({"kind": "lockstep", "weight": round(sync["mean_sync"], 3), "detail": (
            f"{sync['lockstep_pairs']:,} account pairs active in the same 10-minute buckets "
            f"(mean Jaccard {sync['mean_sync']:.2f})")})
    return out


def _window_evidence(profile: dict[str, np.ndarray] | None, mask: np.ndarray,
                     weights: np.ndarray) -> list[dict]:
    """Evidence from the per-day profile: round-the-clock days, release-day pivots."""
    if profile is None or "release_window_share" not in profile:
        return []
    out = []
    pivot = np.nan_to_num(profile["release_window_share"].astype(float))
    share = float(np.average(pivot[mask], weights=weights))
    baseline = float(np.average(pivot, weights=profile["exchanges"]))
    if share >= PIVOT_SHARE and share >= 2 * baseline:
        out.append({"kind": "model_pivot", "weight": round(min(1.0, share), 3), "detail": (
            f"{share:.0%} of its exchanges since the first model release went to newly "
            f"released models (all accounts: {baseline:.0%})")})
    days = np.nan_to_num(profile["round_the_clock_days"].astype(float))
    active = np.maximum(np.nan_to_num(profile["active_days"].astype(float)), 1.0)
    clock = float(np.average((days / active)[mask], weights=weights))
    if clock >= 0.3:
        out.append({"kind": "round_the_clock", "weight": round(clock, 3), "detail": (
            f"{clock:.0%} of its accounts' active days span 20 or more hours")})
    return out


def _tactics(n_accounts, total, means, strengths, templates, payments, sync, channels
             ) -> list[str]:
    tactics = []
    risky = sum(r["accounts"] for r in channels if r["channel"] in RISKY_CHANNELS)
    if n_accounts >= 10 or risky >= 0.5 * n_accounts:
        tactics.append("hydra_cluster")
    if means.get("ip_rotation", 0) >= 0.5:
        tactics.append("proxy_rotation")
    if total["anonymising_share"] >= 0.3 and means.get("ip_rotation", 0) < 0.5:
        tactics.append("vpn_exits")
    if total["hosting_share"] >= 0.5 and total["distinct_ips"] < n_accounts:
        tactics.append("shared_hosting")
    if payments:
        tactics.append("payment_sharing")
    if templates:
        tactics.append("template_sweep")
    for name in ("cot_elicitation", "tool_trace_elicitation", "grading_elicitation",
                 "harvest_params"):
        if strengths.get(name, 0) >= 0.5:
            tactics.append(name)
    if total["distinct_prompt_share"] >= 0.98 and total["exchanges"] >= 50:
        tactics.append("coverage_partition")
    if total["per_account_day"] <= LOW_AND_SLOW_PER_DAY:
        tactics.append("low_and_slow")
    if sync and sync["mean_sync"] >= 0.3:
        tactics.append("synchronized_schedule")
    if total["languages"] >= 3:
        tactics.append("multilingual")
    return tactics
