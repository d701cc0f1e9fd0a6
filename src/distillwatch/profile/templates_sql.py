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
from distillwatch.link.tokens_sql import SCAFFOLD_USES, frame_key_columns

FEATURES = "__dw__features"
OUTPUT = "__dw__profile_templates"
SHARED_KEYS = "__dw__profile_shared_keys"
MIN_ACCOUNTS = 3
MIN_SHARED_KEYS = 2


def shared_key_sqls() -> list[SqlStep]:
    """Steps that build ``__dw__profile_shared_keys`` (key): the frame keys (bands, lines,
    head and tail) that ``MIN_ACCOUNTS`` accounts or more carry.

    Reads the link stage's per-account counts of scaffold keys (``SCAFFOLD_USES``: one row
    per account and key, ``templated`` where the key is a frame key), so every exchange's
    keys are exploded and grouped once per scan (run from ``link_accounts(...,
    on_scaffold_uses=...)``, while they exist).
    """
    return [SqlStep(f"""
SELECT key FROM {SCAFFOLD_USES} WHERE templated = 1
GROUP BY key HAVING count(*) >= {MIN_ACCOUNTS}
""", SHARED_KEYS)]


def template_share_sqls(dialect: Dialect, parts: int = 1) -> list[list[SqlStep]]:
    """Parts (``Engine.run_parts``) of steps that build ``__dw__profile_templates``
    (account_id, template_share).

    Reads ``__dw__features`` and ``__dw__profile_shared_keys`` (:func:`shared_key_sqls`).
    Each part counts each exchange's shared keys for one share of the accounts (by a hash of
    the account id), so that no step holds every exchange's keys at once: as one statement
    over 31.6M exchanges of `stress` (~600M key rows, a distinct count per key, a group per
    exchange) DuckDB ran out of 5 GB.

    Args:
        dialect: The engine's SQL.
        parts: How many shares of the accounts the per-exchange step runs in.
    """
    def part(number: int) -> list[SqlStep]:
        mine = dialect.in_share("account_id", parts, number)
        union = " UNION ALL ".join(
            f"SELECT exchange_id, account_id, {column} AS key FROM {FEATURES} WHERE {mine}"
            for column in frame_key_columns(dialect))
        keys = f"""
SELECT exchange_id, account_id, key FROM ({union}) k WHERE key IS NOT NULL
"""
        hits = f"""
SELECT k.account_id, k.exchange_id
FROM __dw__profile_template_keys k JOIN {SHARED_KEYS} s ON s.key = k.key
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

    return [part(number) for number in range(parts)]
