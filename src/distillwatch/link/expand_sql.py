"""Template indicators of groups of accounts, and what they join: other groups, other accounts.

A group (a cluster, or a reported campaign's core) has *specific* scaffold tokens: carried by
enough of its accounts, and hardly by any account that hides nothing (``__dw__scan_clean``:
verified, or without concealment evidence). They are its template indicators, the ones the
gateway matches online. Specificity is judged against open accounts, not against the group
alone: the heads a hydra keeps opening use the same templates, and would make every template
look shared.

**Expansion**: an account outside every campaign core that carries several of a campaign's
specific tokens is a candidate member; the score stage admits it only if it also shows the
campaign's signature behaviour and hides (``Watcher._expand``), so an evaluation vendor that
uses the same public chain-of-thought wrapper is never pulled in. (Merging whole clusters on
shared templates was tried and dropped: campaigns built from one public template bank merged.)
"""

from __future__ import annotations

from distillwatch.engine import SqlStep

GROUPS = "__dw__scan_groups"
CLEAN = "__dw__scan_clean"
SPECIFIC = "__dw__link_specific"
EXPANSION = "__dw__link_expansion"
# Open accounts carrying a specific token number at most this share of the group's carriers.
CLEAN_SHARE = 0.2
# ... and the token is carried by at least this share of the group's accounts (and 2).
MIN_GROUP_SHARE = 0.1


def specific_token_sqls() -> list[SqlStep]:
    """Steps that build ``__dw__link_specific`` (group_id, token, members).

    Reads ``__dw__link_tokens``, ``__dw__scan_groups`` (account_id, group_id) and
    ``__dw__scan_clean`` (account_id of the accounts that hide nothing).
    """
    scaffold = """
SELECT account_id, token FROM __dw__link_tokens
WHERE kind = 'scaffold'
"""
    clean = f"""
SELECT s.token, count(*) AS clean
FROM __dw__expand_scaffold s JOIN {CLEAN} c ON c.account_id = s.account_id GROUP BY s.token
"""
    sizes = f"SELECT group_id, count(*) AS accounts FROM {GROUPS} GROUP BY group_id"
    inside = f"""
SELECT g.group_id, s.token, count(*) AS members
FROM __dw__expand_scaffold s JOIN {GROUPS} g ON g.account_id = s.account_id
GROUP BY g.group_id, s.token
"""
    specific = f"""
SELECT i.group_id, i.token, i.members
FROM __dw__expand_inside i
LEFT JOIN __dw__expand_clean d ON d.token = i.token
JOIN __dw__expand_sizes z ON z.group_id = i.group_id
WHERE i.members >= greatest(2, {MIN_GROUP_SHARE} * z.accounts)
  AND coalesce(d.clean, 0) <= {CLEAN_SHARE} * i.members
"""
    return [SqlStep(scaffold, "__dw__expand_scaffold"), SqlStep(clean, "__dw__expand_clean"),
            SqlStep(sizes, "__dw__expand_sizes"), SqlStep(inside, "__dw__expand_inside"),
            SqlStep(specific, SPECIFIC)]


def expansion_sqls() -> list[SqlStep]:
    """Steps that build ``__dw__link_expansion`` (account_id, group_id, matched).

    Reads ``__dw__link_tokens``, ``__dw__link_specific`` and ``__dw__scan_groups``.
    """
    return [SqlStep(f"""
SELECT s.account_id, p.group_id, count(*) AS matched
FROM __dw__link_tokens s
JOIN {SPECIFIC} p ON p.token = s.token
LEFT JOIN {GROUPS} g ON g.account_id = s.account_id
WHERE s.kind = 'scaffold' AND g.account_id IS NULL
GROUP BY s.account_id, p.group_id
""", EXPANSION)]
