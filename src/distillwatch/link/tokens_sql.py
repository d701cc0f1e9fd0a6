"""What accounts can share: one row per (account, token), each token of a kind and a family.

A token is anything two accounts run by one operator tend to have in common:

======== ============ ===========================================================
family   kind         token
======== ============ ===========================================================
scaffold scaffold     a frame key (band, line, head, tail) carried by a good share of
                      the account's prompts, or its system prompt / tool schema hash
network  ip           an exact client IP (EvilCohort: shared IP sets)
network  prefix       a /24 (IPv6: /48) the account sent from
network  asn_ua       a hosting ASN together with the user agent sent from it (one deployment);
                      residential and proxy ASNs are left out: common browser agents
                      behind big ISPs would link strangers
identity payment      the payment fingerprint of the account file
identity email        the e-mail domain of the account file
onboard  signup       a sign-up bucket holding a burst of new accounts
onboard  activation   a first-activity bucket holding a burst of newly active accounts
======== ============ ===========================================================

Timing (lockstep activity) is a pair property and is computed in ``pairs_sql``. One family
alone never links two accounts: thousands of developers running one open-source agent share
its system prompt (scaffold) and nothing else; students share a university's e-mail domain.
"""

from __future__ import annotations

from distillwatch.engine import Dialect, SqlStep
from distillwatch.settings import LinkSettings

FEATURES = "__dw__features"
ACCOUNTS = "__dw__accounts"
OUTPUT = "__dw__link_tokens"
FAMILIES = {"scaffold": "scaffold", "ip": "network", "prefix": "network", "asn_ua": "network",
            "payment": "identity", "email": "identity", "signup": "onboard",
            "activation": "onboard"}


def _bursts(bucket_expr: str, source: str, where: str, kind: str,
            settings: LinkSettings) -> tuple[str, str]:
    """Buckets of ``source`` holding a burst, as (sql of bucket counts, sql of tokens)."""
    counts = f"""
SELECT bucket, count(*) AS accounts FROM (
    SELECT account_id, {bucket_expr} AS bucket FROM {source} WHERE {where}
) GROUP BY bucket
"""
    tokens = f"""
SELECT s.account_id, '{kind}' AS kind, concat('{kind[0]}', CAST(s.bucket AS {{string}})) AS token,
       1.0 - m.median_accounts / c.accounts AS strength
FROM (SELECT account_id, {bucket_expr} AS bucket FROM {source} WHERE {where}) s
JOIN __dw__link_{kind}_counts c ON c.bucket = s.bucket
CROSS JOIN (SELECT {{median}} AS median_accounts FROM __dw__link_{kind}_counts) m
WHERE c.accounts >= {settings.burst_min_accounts}
  AND c.accounts >= {settings.burst_ratio} * m.median_accounts
"""
    return counts, tokens


SCAFFOLD_USES = "__dw__link_scaffold_uses"
# Exchanges per part of the per-exchange key steps: the scaffold-key counts
# (``scaffold_use_sqls``) and the template share (``profile.templates_sql``).
PART_EXCHANGES = 4_000_000


def frame_key_columns(dialect: Dialect) -> tuple[str, ...]:
    """The expressions of ``__dw__features`` that give a prompt's frame keys, one key a row:
    its MinHash bands and scaffold lines (exploded), its head and its tail."""
    return (dialect.explode("band_keys"), dialect.explode("line_hashes"), "head_key",
            "tail_key")


def scaffold_use_sqls(dialect: Dialect, parts: int = 1,
                      min_prompt_chars: int = 0) -> list[list[SqlStep]]:
    """Parts (``Engine.run_parts``) of steps that build ``SCAFFOLD_USES`` (account_id, key,
    uses: the account's exchanges carrying the key, templated: 1 where the key is a frame key
    (band, line, head, tail), 0 where it is only a system prompt or tool schema hash).

    Reads ``__dw__features``. Each part counts every key of one share of the accounts (by a
    hash of the account id), so each (account, key) is counted whole in one part. As one
    aggregation over 31.6M exchanges of ``stress`` DuckDB ran out of a 5 GB limit; counted
    per source of keys and then summed, the 10M first took 73 s, in three parts 48 s.

    Args:
        dialect: The engine's SQL.
        parts: How many shares of the accounts the counts run in.
        min_prompt_chars: Frame keys of prompts shorter than this are not counted: a
            "Continue" or "Thanks!" is sent by everyone, and all its keys (bands, line, head,
            tail) would count as one shared scaffold of many keys.
    """
    short = f" AND prompt_chars >= {int(min_prompt_chars)}" if min_prompt_chars else ""
    keys = [(column, 1, short) for column in frame_key_columns(dialect)]
    keys += [("system_hash", 0, ""), ("tools_hash", 0, "")]

    def part(number: int) -> list[SqlStep]:
        mine = dialect.in_share("account_id", parts, number)
        union = " UNION ALL ".join(
            f"SELECT account_id, {column} AS key, {templated} AS templated FROM {FEATURES} "
            f"WHERE {mine}{where}" for column, templated, where in keys)
        return [SqlStep(f"""
SELECT account_id, key, count(*) AS uses, max(templated) AS templated
FROM ({union}) k WHERE key IS NOT NULL GROUP BY account_id, key
""", SCAFFOLD_USES)]

    return [part(number) for number in range(parts)]


def token_sqls(dialect: Dialect, settings: LinkSettings) -> list[list[SqlStep]]:
    """Runs of steps (each run materialises its last step) that build ``__dw__link_tokens``
    (account_id, kind, family, token, strength).

    Reads ``__dw__features`` and ``__dw__accounts``. ``strength`` is 1 except for burst
    tokens, where it says how far the bucket stands above an ordinary one. Reads
    ``SCAFFOLD_USES`` too (:func:`scaffold_use_sqls`).
    """
    string = dialect.string_type
    bucket_s = settings.signup_bucket_hours * 3600.0
    sizes = f"SELECT account_id, count(*) AS n, min(ts) AS first_seen FROM {FEATURES} " \
            "GROUP BY account_id"
    window_start = f"(SELECT min({dialect.epoch_seconds('first_seen')}) FROM __dw__link_sizes)"
    signup_counts, signup_tokens = _bursts(
        f"CAST(floor({dialect.epoch_seconds('created_at')} / {bucket_s}) AS BIGINT)",
        ACCOUNTS, "created_at IS NOT NULL AND account_id IN "
                  "(SELECT account_id FROM __dw__link_sizes)", "signup", settings)
    activation_counts, activation_tokens = _bursts(
        f"CAST(floor({dialect.epoch_seconds('first_seen')} / {bucket_s}) AS BIGINT)",
        "__dw__link_sizes",
        # Accounts already active when the logs begin did not start then.
        f"{dialect.epoch_seconds('first_seen')} >= {window_start} + 86400",
        "activation", settings)
    median = dialect.median("accounts")
    tokens = f"""
SELECT u.account_id, 'scaffold' AS kind, concat('s', CAST(u.key AS {string})) AS token,
       CAST(u.uses AS DOUBLE) / z.n AS strength
FROM {SCAFFOLD_USES} u JOIN __dw__link_sizes z ON z.account_id = u.account_id
WHERE u.uses >= {settings.scaffold_min_uses} AND u.uses >= {settings.scaffold_min_share} * z.n
UNION ALL
SELECT DISTINCT account_id, 'ip' AS kind, concat('i', client_ip) AS token, 1.0 AS strength
FROM {FEATURES} WHERE client_ip IS NOT NULL
UNION ALL
SELECT DISTINCT account_id, 'prefix' AS kind, concat('p', client_prefix) AS token,
       1.0 AS strength
FROM {FEATURES} WHERE client_prefix IS NOT NULL
UNION ALL
SELECT DISTINCT account_id, 'asn_ua' AS kind,
       concat('u', CAST(client_asn AS {string}), '|', user_agent) AS token, 1.0 AS strength
FROM {FEATURES} WHERE client_asn IS NOT NULL AND user_agent IS NOT NULL
  AND client_asn_kind = 'hosting'
UNION ALL
SELECT account_id, 'payment' AS kind, concat('y', payment_fingerprint) AS token,
       1.0 AS strength
FROM {ACCOUNTS} WHERE payment_fingerprint IS NOT NULL
  AND account_id IN (SELECT account_id FROM __dw__link_sizes)
UNION ALL
SELECT account_id, 'email' AS kind, concat('e', lower(email_domain)) AS token, 1.0 AS strength
FROM {ACCOUNTS} WHERE email_domain IS NOT NULL
  AND account_id IN (SELECT account_id FROM __dw__link_sizes)
UNION ALL SELECT * FROM __dw__link_signup_tokens
UNION ALL SELECT * FROM __dw__link_activation_tokens
"""
    family = "CASE kind " + " ".join(f"WHEN '{k}' THEN '{f}'" for k, f in FAMILIES.items()) \
             + " END"
    final = f"SELECT account_id, kind, {family} AS family, token, strength FROM " \
            "__dw__link_token_rows"
    return [
        [SqlStep(sizes, "__dw__link_sizes"),
         SqlStep(signup_counts, "__dw__link_signup_counts"),
         SqlStep(signup_tokens.format(string=string, median=median),
                 "__dw__link_signup_tokens"),
         SqlStep(activation_counts, "__dw__link_activation_counts"),
         SqlStep(activation_tokens.format(string=string, median=median),
                 "__dw__link_activation_tokens"),
         SqlStep(tokens, "__dw__link_token_rows"),
         SqlStep(final, OUTPUT)],
    ]
