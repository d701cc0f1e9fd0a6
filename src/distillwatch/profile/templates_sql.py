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


# Exchanges per part of the per-exchange step (``template_share_sqls``).
PART_EXCHANGES = 4_000_000


def template_share_sqls(dialect: Dialect, parts: int = 1
                        ) -> tuple[list[list[SqlStep]], list[list[SqlStep]]]:
    """(runs, parts) of steps that build ``__dw__profile_templates`` (account_id,
    template_share).

    The runs, in order, each materialise their last step: every source of keys (bands, lines,
    head and tail) as distinct (account, key) rows, then the keys shared by ``MIN_ACCOUNTS``
    accounts. The parts (``Engine.run_parts``) count each exchange's shared keys for one
    share of the accounts each (by a hash of the account id), so that no step holds every
    exchange's keys at once: as one statement over 31.6M exchanges of `stress` (~600M key
    rows, a distinct count per key, a group per exchange) DuckDB ran out of 5 GB.

    Args:
        dialect: The engine's SQL.
        parts: How many shares of the accounts the per-exchange step runs in.
    """
    explode = dialect.explode
    sources = {
        "__dw__profile_band_keys":
            f"SELECT account_id, {explode('band_keys')} AS key FROM {FEATURES}",
        "__dw__profile_line_keys":
            f"SELECT account_id, {explode('line_hashes')} AS key FROM {FEATURES}",
        "__dw__profile_end_keys": f"SELECT account_id, head_key AS key FROM {FEATURES} "
                                  f"UNION ALL SELECT account_id, tail_key AS key FROM {FEATURES}",
    }
    runs = [[SqlStep(f"SELECT DISTINCT account_id, key FROM ({sql}) k WHERE key IS NOT NULL",
                     name)] for name, sql in sources.items()]
    union = " UNION ALL ".join(f"SELECT account_id, key FROM {name}" for name in sources)
    runs.append([SqlStep(f"""
SELECT key FROM (SELECT key, account_id FROM ({union}) u GROUP BY key, account_id) d
GROUP BY key HAVING count(*) >= {MIN_ACCOUNTS}
""", "__dw__profile_shared_keys")])

    def part(number: int) -> list[SqlStep]:
        mine = ("TRUE" if parts == 1 else
                f"((({dialect.hash64('account_id')}) % {parts}) + {parts}) % {parts} = {number}")
        keys = f"""
SELECT exchange_id, account_id, key FROM (
    SELECT exchange_id, account_id, {explode('band_keys')} AS key FROM {FEATURES} WHERE {mine}
    UNION ALL SELECT exchange_id, account_id, {explode('line_hashes')} AS key FROM {FEATURES}
    WHERE {mine}
    UNION ALL SELECT exchange_id, account_id, head_key AS key FROM {FEATURES} WHERE {mine}
    UNION ALL SELECT exchange_id, account_id, tail_key AS key FROM {FEATURES} WHERE {mine}
) k WHERE key IS NOT NULL
"""
        hits = f"""
SELECT k.account_id, k.exchange_id
FROM __dw__profile_template_keys k JOIN __dw__profile_shared_keys s ON s.key = k.key
GROUP BY k.account_id, k.exchange_id HAVING count(*) >= {MIN_SHARED_KEYS}
"""
        share = f"""
SELECT f.account_id, CAST(count(h.exchange_id) AS DOUBLE) / count(*) AS template_share
FROM (SELECT account_id, exchange_id FROM {FEATURES} WHERE {mine}) f
LEFT JOIN __dw__profile_template_hits h ON h.exchange_id = f.exchange_id
GROUP BY f.account_id
"""
        return [SqlStep(keys, "__dw__profile_template_keys"),
                SqlStep(hits, "__dw__profile_template_hits"),
                SqlStep(share, OUTPUT)]

    return runs, [part(number) for number in range(parts)]
