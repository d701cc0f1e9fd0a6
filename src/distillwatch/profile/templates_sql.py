"""Templated use per account: the share of its exchanges built on scaffolds others use too.

An exchange is *templated* when at least ``MIN_SHARED_KEYS`` of its prompt's frame keys (MinHash
bands, scaffold lines, head, tail) are carried by ``MIN_ACCOUNTS`` accounts or more. Counting
exchanges on any shared scaffold, rather than the share of the single most common one, keeps
the measure up when a campaign rotates many templates and paraphrases them. The system prompt
and tool schemas are left out: sharing them says which software sends the request, not that
the tasks come from one template.
"""

from __future__ import annotations

from distillwatch.engine import Dialect, SqlStep

FEATURES = "__dw__features"
OUTPUT = "__dw__profile_templates"
MIN_ACCOUNTS = 3
MIN_SHARED_KEYS = 2


def template_share_sqls(dialect: Dialect) -> list[SqlStep]:
    """Steps that build ``__dw__profile_templates`` (account_id, template_share)."""
    explode = dialect.explode
    keys = f"""
SELECT exchange_id, account_id, key FROM (
    SELECT exchange_id, account_id, {explode('band_keys')} AS key FROM {FEATURES}
    UNION ALL SELECT exchange_id, account_id, {explode('line_hashes')} AS key FROM {FEATURES}
    UNION ALL SELECT exchange_id, account_id, head_key AS key FROM {FEATURES}
    UNION ALL SELECT exchange_id, account_id, tail_key AS key FROM {FEATURES}
) WHERE key IS NOT NULL
"""
    shared = f"""
SELECT key FROM __dw__profile_template_keys
GROUP BY key HAVING count(DISTINCT account_id) >= {MIN_ACCOUNTS}
"""
    hits = f"""
SELECT k.account_id, k.exchange_id
FROM __dw__profile_template_keys k JOIN __dw__profile_shared_keys s ON s.key = k.key
GROUP BY k.account_id, k.exchange_id HAVING count(*) >= {MIN_SHARED_KEYS}
"""
    share = f"""
SELECT f.account_id, CAST(count(h.exchange_id) AS DOUBLE) / count(*) AS template_share
FROM {FEATURES} f
LEFT JOIN __dw__profile_template_hits h ON h.exchange_id = f.exchange_id
GROUP BY f.account_id
"""
    return [SqlStep(keys, "__dw__profile_template_keys"),
            SqlStep(shared, "__dw__profile_shared_keys"),
            SqlStep(hits, "__dw__profile_template_hits"),
            SqlStep(share, OUTPUT)]
