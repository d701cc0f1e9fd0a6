"""Campaign expansion: accounts outside a campaign's core that run its templates.

The core of a campaign is found by linking (two families of evidence per edge). Its scaffold
tokens that are *specific* to it — carried by enough of its accounts, and hardly by any
account that hides nothing (``__dw__scan_clean``: verified, or without concealment evidence)
— are its template indicators, the same ones the gateway matches online. (Specificity cannot
be judged against the core alone: the heads a hydra keeps opening use the same templates and
would make every template look shared.) An account
outside the core that carries several of them is a candidate member; the score stage admits it
only if it also shows the campaign's signature behaviour and hides like a campaign account
does (``Watcher._expand``), so an evaluation vendor that happens to use the same public
chain-of-thought wrapper is never pulled in.
"""

from __future__ import annotations

from distillwatch.engine import SqlStep

CORE = "__dw__scan_core"
CLEAN = "__dw__scan_clean"
OUTPUT = "__dw__link_expansion"
# A token is specific to a campaign when the open accounts carrying it number at most this
# share of its members carrying it.
CLEAN_SHARE = 0.2
# ... and it is carried by at least this share of the campaign's accounts (and 3).
MIN_CAMPAIGN_SHARE = 0.1


def expansion_sqls() -> list[SqlStep]:
    """Steps that build ``__dw__link_expansion`` (account_id, campaign_id, matched).

    Reads ``__dw__link_tokens``, ``__dw__scan_core`` (account_id, campaign_id) and
    ``__dw__scan_clean`` (account_id of the accounts that hide nothing).
    """
    scaffold = "SELECT account_id, token FROM __dw__link_tokens WHERE kind = 'scaffold'"
    clean = f"""
SELECT s.token, count(*) AS clean
FROM __dw__expand_scaffold s JOIN {CLEAN} c ON c.account_id = s.account_id GROUP BY s.token
"""
    sizes = f"SELECT campaign_id, count(*) AS accounts FROM {CORE} GROUP BY campaign_id"
    inside = f"""
SELECT c.campaign_id, s.token, count(*) AS members
FROM __dw__expand_scaffold s JOIN {CORE} c ON c.account_id = s.account_id
GROUP BY c.campaign_id, s.token
"""
    specific = f"""
SELECT i.campaign_id, i.token
FROM __dw__expand_inside i
LEFT JOIN __dw__expand_clean d ON d.token = i.token
JOIN __dw__expand_sizes z ON z.campaign_id = i.campaign_id
WHERE i.members >= greatest(3, {MIN_CAMPAIGN_SHARE} * z.accounts)
  AND coalesce(d.clean, 0) <= {CLEAN_SHARE} * i.members
"""
    matched = f"""
SELECT s.account_id, p.campaign_id, count(*) AS matched
FROM __dw__expand_scaffold s
JOIN __dw__expand_specific p ON p.token = s.token
LEFT JOIN {CORE} c ON c.account_id = s.account_id
WHERE c.account_id IS NULL
GROUP BY s.account_id, p.campaign_id
"""
    return [SqlStep(scaffold, "__dw__expand_scaffold"), SqlStep(clean, "__dw__expand_clean"),
            SqlStep(sizes, "__dw__expand_sizes"), SqlStep(inside, "__dw__expand_inside"),
            SqlStep(specific, "__dw__expand_specific"), SqlStep(matched, OUTPUT)]
