"""Per-account behaviour features as SQL steps over ``__dw__features`` (FEATURES_SCHEMA).

One row per account: volume and pacing, round-the-clock activity, conversation shape,
elicitation rates, harvest parameters, template concentration against payload diversity, and
networks. Stages describe the work; the engine runs it (DuckDB or Spark, via the dialect).
"""

from __future__ import annotations

from distillwatch.engine import Dialect, SqlStep

FEATURES_TABLE = "__dw__features"
OUTPUT = "__dw__profile_features"
UNTRUSTED_NETWORKS = ("hosting", "proxy", "vpn", "tor")
# Networks whose purpose is to hide who is behind them (hosting is where services run).
ANONYMISING_NETWORKS = ("proxy", "vpn", "tor")
# A max_tokens this large asks for whole traces, not answers.
LONG_MAX_TOKENS = 8000
IDENTITY_OUTPUT = "__dw__profile_accounts"
WINDOWS_OUTPUT = "__dw__profile_windows"


def account_feature_sqls(dialect: Dialect) -> list[SqlStep]:
    """The steps that build ``__dw__profile_features`` (one row per account)."""
    epoch = dialect.epoch_seconds("ts")
    untrusted = ", ".join(f"'{kind}'" for kind in UNTRUSTED_NETWORKS)
    anonymising = ", ".join(f"'{kind}'" for kind in ANONYMISING_NETWORKS)
    per_exchange = f"""
SELECT
    account_id, ts, client_ip, client_asn, client_asn_kind, client_country, model,
    head_key, prompt_hash, cot, grading, tool_trace, user_turns, n, logprobs, reasoning_budget,
    max_tokens, output_tokens, capability,
    {epoch} AS epoch_s,
    CAST(floor({epoch} / 86400) AS BIGINT) AS day,
    CAST(floor({epoch} / 3600) AS BIGINT) % 24 AS hour_utc,
    {epoch} - lag({epoch}) OVER (PARTITION BY account_id ORDER BY ts, exchange_id) AS gap_s,
    client_prefix AS ip_prefix
FROM {FEATURES_TABLE}
"""
    per_account = f"""
SELECT
    account_id,
    count(*) AS exchanges,
    count(DISTINCT day) AS active_days,
    count(*) / count(DISTINCT day) AS exchanges_per_active_day,
    count(DISTINCT hour_utc) AS active_hours_of_day,
    min(ts) AS first_seen,
    max(ts) AS last_seen,
    avg(gap_s) AS mean_gap_s,
    stddev_pop(gap_s) / nullif(avg(gap_s), 0) AS gap_cv,
    avg(CASE WHEN user_turns <= 1 THEN 1 ELSE 0 END) AS single_turn_share,
    avg(CASE WHEN cot THEN 1 ELSE 0 END) AS cot_rate,
    avg(CASE WHEN grading THEN 1 ELSE 0 END) AS grading_rate,
    avg(CASE WHEN tool_trace THEN 1 ELSE 0 END) AS tool_trace_rate,
    avg(CASE WHEN n > 1 THEN 1 ELSE 0 END) AS multi_sample_rate,
    avg(CASE WHEN logprobs THEN 1 ELSE 0 END) AS logprobs_rate,
    avg(CASE WHEN reasoning_budget > 0 THEN 1 ELSE 0 END) AS reasoning_budget_rate,
    avg(CASE WHEN max_tokens IS NOT NULL AND output_tokens >= max_tokens
             THEN 1 ELSE 0 END) AS max_tokens_saturation,
    CAST(count(DISTINCT head_key) AS DOUBLE) / count(*) AS distinct_opening_share,
    CAST(count(DISTINCT prompt_hash) AS DOUBLE) / count(*) AS distinct_prompt_share,
    avg(CASE WHEN max_tokens >= {LONG_MAX_TOKENS} THEN 1 ELSE 0 END) AS long_max_tokens_rate,
    avg(CASE WHEN capability = 'coding' THEN 1 ELSE 0 END) AS coding_share,
    avg(CASE WHEN capability = 'agentic_tool_use' THEN 1 ELSE 0 END) AS agentic_share,
    avg(CASE WHEN capability = 'reasoning_cot' THEN 1 ELSE 0 END) AS reasoning_share,
    avg(CASE WHEN capability = 'grading' THEN 1 ELSE 0 END) AS grading_share,
    avg(CASE WHEN capability = 'writing' THEN 1 ELSE 0 END) AS writing_share,
    avg(CASE WHEN client_asn_kind IN ({untrusted}) THEN 1 ELSE 0 END)
        AS untrusted_network_share,
    avg(CASE WHEN client_asn_kind = 'hosting' THEN 1 ELSE 0 END) AS hosting_share,
    avg(CASE WHEN client_asn_kind IN ({anonymising}) THEN 1 ELSE 0 END)
        AS anonymising_share,
    count(DISTINCT client_ip) AS distinct_ips,
    count(DISTINCT ip_prefix) AS distinct_prefixes,
    count(DISTINCT client_asn) AS distinct_asns,
    count(DISTINCT client_country) AS distinct_countries,
    CAST(count(DISTINCT client_ip) AS DOUBLE) / count(*) AS ip_churn,
    count(DISTINCT model) AS distinct_models
FROM __dw__profile_exchanges
GROUP BY account_id
"""
    return [SqlStep(per_exchange, "__dw__profile_exchanges"), SqlStep(per_account, OUTPUT)]


def account_window_sqls(dialect: Dialect) -> list[SqlStep]:
    """Steps that build ``__dw__profile_windows``: behaviour per day and around model releases.

    Per account: the busiest day, the days active round the clock (20 or more distinct UTC
    hours: a script, or a relay of operators), and, of its exchanges sent after the first
    model release in the logs, the share sent to released models (pivoting to a model as soon
    as it is out). A model is released when it first appears a day or more after the logs
    begin.
    """
    epoch = dialect.epoch_seconds("ts")
    days = f"""
SELECT account_id, CAST(floor({epoch} / 86400) AS BIGINT) AS day, count(*) AS exchanges,
       count(DISTINCT CAST(floor({epoch} / 3600) AS BIGINT) % 24) AS hours
FROM {FEATURES_TABLE} GROUP BY account_id, CAST(floor({epoch} / 86400) AS BIGINT)
"""
    releases = f"""
SELECT model, min({epoch}) AS released FROM {FEATURES_TABLE}
WHERE model IS NOT NULL GROUP BY model
HAVING min({epoch}) >= (SELECT min({epoch}) FROM {FEATURES_TABLE}) + 86400
"""
    pivots = f"""
SELECT f.account_id,
       avg(CASE WHEN r.released IS NOT NULL THEN 1 ELSE 0 END) AS release_window_share
FROM {FEATURES_TABLE} f LEFT JOIN __dw__profile_releases r ON r.model = f.model
WHERE {dialect.epoch_seconds('f.ts')} >= (SELECT min(released) FROM __dw__profile_releases)
GROUP BY f.account_id
"""
    windows = """
SELECT d.account_id, max(d.exchanges) AS max_exchanges_per_day,
       sum(CASE WHEN d.hours >= 20 THEN 1 ELSE 0 END) AS round_the_clock_days,
       max(p.release_window_share) AS release_window_share
FROM __dw__profile_days d LEFT JOIN __dw__profile_pivots p ON p.account_id = d.account_id
GROUP BY d.account_id
"""
    return [SqlStep(days, "__dw__profile_days"), SqlStep(releases, "__dw__profile_releases"),
            SqlStep(pivots, "__dw__profile_pivots"), SqlStep(windows, WINDOWS_OUTPUT)]


def account_identity_sqls(dialect: Dialect) -> list[SqlStep]:
    """Steps that add what the provider knows of each account to ``__dw__profile_features``.

    Reads ``__dw__profile_features``, ``__dw__profile_windows``, ``__dw__features`` and
    ``__dw__accounts`` (the account file, possibly empty) and builds
    ``__dw__profile_accounts``: every behaviour and window column plus
    sign-up channel, verification, organisation, account age at first exchange and the share
    of exchanges sent from a country other than the billing country.
    """
    epoch_first = dialect.epoch_seconds("p.first_seen")
    epoch_created = dialect.epoch_seconds("a.created_at")
    countries = f"""
SELECT f.account_id,
       avg(CASE WHEN a.billing_country IS NULL OR f.client_country IS NULL THEN NULL
                WHEN f.client_country <> a.billing_country THEN 1 ELSE 0 END)
           AS geo_mismatch_share
FROM {FEATURES_TABLE} f LEFT JOIN __dw__accounts a ON a.account_id = f.account_id
GROUP BY f.account_id
"""
    joined = f"""
SELECT p.*, c.geo_mismatch_share,
       w.max_exchanges_per_day, w.round_the_clock_days, w.release_window_share,
       a.organization_id, a.signup_channel, a.verified, a.billing_country,
       a.payment_fingerprint, a.email_domain, a.created_at,
       ({epoch_first} - {epoch_created}) / 86400.0 AS age_days_at_first_seen
FROM {OUTPUT} p
LEFT JOIN __dw__profile_countries c ON c.account_id = p.account_id
LEFT JOIN __dw__profile_windows w ON w.account_id = p.account_id
LEFT JOIN __dw__accounts a ON a.account_id = p.account_id
"""
    return [SqlStep(countries, "__dw__profile_countries"), SqlStep(joined, IDENTITY_OUTPUT)]
