"""Per-campaign aggregates for evidence, indicators and the report, as SQL steps.

All read ``__dw__scan_members`` (account_id, campaign_id) joined to ``__dw__features``;
nothing here needs raw text (templates are the masked skeletons kept at fingerprint time).
"""

from __future__ import annotations

from distillwatch.engine import Dialect, SqlStep
from distillwatch.profile.features_sql import ANONYMISING_NETWORKS

MEMBERS = "__dw__scan_members"
_ANON = ", ".join(f"'{kind}'" for kind in ANONYMISING_NETWORKS)


def _member_exchanges(dialect: Dialect) -> str:
    day = f"CAST(floor({dialect.epoch_seconds('f.ts')} / 86400) AS BIGINT)"
    # Only the columns the totals read: a campaign's exchanges can be half of the window.
    return f"""
SELECT m.campaign_id, {day} AS day, f.account_id, f.ts, f.prompt_hash, f.client_ip,
       f.client_prefix, f.client_asn, f.client_asn_kind, f.model, f.language
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
"""


def campaign_totals_sql(dialect: Dialect) -> list[SqlStep]:
    """One row per campaign: volume, dates, capability counts, network and coverage figures."""
    totals = f"""
SELECT campaign_id,
       count(*) AS exchanges, count(DISTINCT account_id) AS accounts,
       min(ts) AS first_seen, max(ts) AS last_seen,
       CAST(count(DISTINCT prompt_hash) AS DOUBLE) / count(*) AS distinct_prompt_share,
       count(DISTINCT client_ip) AS distinct_ips,
       count(DISTINCT client_prefix) AS distinct_prefixes,
       count(DISTINCT client_asn) AS distinct_asns,
       avg(CASE WHEN client_asn_kind IN ({_ANON}) THEN 1 ELSE 0 END) AS anonymising_share,
       avg(CASE WHEN client_asn_kind = 'hosting' THEN 1 ELSE 0 END) AS hosting_share,
       count(DISTINCT model) AS models,
       CAST(count(*) AS DOUBLE)
           / count(DISTINCT concat(account_id, '|', CAST(day AS {dialect.string_type})))
           AS per_account_day
FROM __dw__scan_member_exchanges GROUP BY campaign_id
"""
    # Languages that carry at least 5 % of a campaign's exchanges (a guess on one prompt
    # can be wrong; a share cannot be by accident).
    languages = """
SELECT campaign_id, count(*) AS languages FROM (
    SELECT campaign_id, language, count(*) AS n,
           sum(count(*)) OVER (PARTITION BY campaign_id) AS total
    FROM __dw__scan_member_exchanges WHERE language IS NOT NULL
    GROUP BY campaign_id, language
) WHERE n >= 0.05 * total GROUP BY campaign_id
"""
    joined = """
SELECT t.*, coalesce(l.languages, 0) AS languages
FROM __dw__scan_campaign_base t
LEFT JOIN __dw__scan_languages l ON l.campaign_id = t.campaign_id
"""
    return [SqlStep(_member_exchanges(dialect), "__dw__scan_member_exchanges"),
            SqlStep(totals, "__dw__scan_campaign_base"),
            SqlStep(languages, "__dw__scan_languages"),
            SqlStep(joined, "__dw__scan_campaign_totals")]


def breakdown_sql(column: str, name: str, missing: str, output: str) -> list[SqlStep]:
    """Exchanges per campaign and value of one feature column (capability, country, model).

    Args:
        column: The ``__dw__features`` column.
        name: What the value column is called in the result.
        missing: The value that stands for NULL.
        output: Templated name of the result.
    """
    value = f"coalesce(f.{column}, '{missing}')"
    return [SqlStep(f"""
SELECT m.campaign_id, {value} AS {name}, count(*) AS exchanges
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
GROUP BY m.campaign_id, {value}
""", output)]


def daily_sql(dialect: Dialect) -> list[SqlStep]:
    """Exchanges, active accounts and newly active accounts per campaign and day."""
    day = f"CAST(floor({dialect.epoch_seconds('f.ts')} / 86400) AS BIGINT)"
    first = f"""
SELECT m.campaign_id, m.account_id, min({day}) AS first_day
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
GROUP BY m.campaign_id, m.account_id
"""
    daily = f"""
SELECT m.campaign_id, {day} AS day, count(*) AS exchanges,
       count(DISTINCT m.account_id) AS active_accounts
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
GROUP BY m.campaign_id, {day}
"""
    joined = """
SELECT d.campaign_id, d.day, d.exchanges, d.active_accounts,
       coalesce(n.new_accounts, 0) AS new_accounts
FROM __dw__scan_daily_raw d
LEFT JOIN (SELECT campaign_id, first_day, count(*) AS new_accounts
           FROM __dw__scan_first_days GROUP BY campaign_id, first_day) n
  ON n.campaign_id = d.campaign_id AND n.first_day = d.day
"""
    return [SqlStep(first, "__dw__scan_first_days"), SqlStep(daily, "__dw__scan_daily_raw"),
            SqlStep(joined, "__dw__scan_daily")]


def networks_sql() -> list[SqlStep]:
    sql = f"""
SELECT m.campaign_id, f.client_asn AS asn, coalesce(f.client_asn_kind, 'unknown') AS asn_kind,
       count(*) AS exchanges, count(DISTINCT m.account_id) AS accounts
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
WHERE f.client_asn IS NOT NULL
GROUP BY m.campaign_id, f.client_asn, coalesce(f.client_asn_kind, 'unknown')
"""
    return [SqlStep(sql, "__dw__scan_networks")]


def prefixes_sql() -> list[SqlStep]:
    """Network blocks (IPv4 /24, IPv6 /48) that several accounts of a campaign send from."""
    sql = f"""
SELECT m.campaign_id, f.client_prefix AS prefix,
       count(DISTINCT m.account_id) AS accounts, count(*) AS exchanges
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
WHERE f.client_prefix IS NOT NULL
GROUP BY m.campaign_id, f.client_prefix
HAVING count(DISTINCT m.account_id) >= 2
"""
    return [SqlStep(sql, "__dw__scan_prefixes")]


def identity_sql() -> list[SqlStep]:
    """Payment instruments shared inside a campaign, sign-up channels, verification."""
    payments = f"""
SELECT m.campaign_id, a.payment_fingerprint, count(*) AS accounts
FROM {MEMBERS} m JOIN __dw__accounts a ON a.account_id = m.account_id
WHERE a.payment_fingerprint IS NOT NULL
GROUP BY m.campaign_id, a.payment_fingerprint HAVING count(*) >= 2
"""
    channels = f"""
SELECT m.campaign_id, coalesce(a.signup_channel, 'unknown') AS channel, count(*) AS accounts,
       sum(CASE WHEN a.verified THEN 1 ELSE 0 END) AS verified
FROM {MEMBERS} m LEFT JOIN __dw__accounts a ON a.account_id = m.account_id
GROUP BY m.campaign_id, coalesce(a.signup_channel, 'unknown')
"""
    return [SqlStep(payments, "__dw__scan_payments"), SqlStep(channels, "__dw__scan_channels")]


def templates_sql(dialect: Dialect) -> list[SqlStep]:
    """The scaffold tokens a campaign's accounts share, and template openings (head keys
    shared by three or more of its accounts) with a masked example."""
    tokens = f"""
SELECT m.campaign_id, t.token, count(*) AS accounts, avg(t.strength) AS mean_share
FROM {MEMBERS} m JOIN __dw__link_tokens t ON t.account_id = m.account_id
WHERE t.kind = 'scaffold'
GROUP BY m.campaign_id, t.token HAVING count(*) >= 2
"""
    heads = f"""
SELECT m.campaign_id, f.head_key, count(*) AS exchanges,
       count(DISTINCT m.account_id) AS accounts, min(f.skeleton) AS masked
FROM {MEMBERS} m JOIN __dw__features f ON f.account_id = m.account_id
GROUP BY m.campaign_id, f.head_key HAVING count(DISTINCT m.account_id) >= 3
"""
    return [SqlStep(tokens, "__dw__scan_scaffold_tokens"),
            SqlStep(heads, "__dw__scan_heads")]
