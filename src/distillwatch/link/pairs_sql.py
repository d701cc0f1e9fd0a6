"""Account pairs, the evidence that links them, and the edges that evidence supports.

Pairs are generated from shared tokens (``tokens_sql``), blocked so that a token shared by
very many accounts costs linear work. A shared token weighs by how unusual the sharing is:
its inverse document frequency over the scan's accounts (a /24 of a mobile carrier shared by
hundreds of users says little; an IP shared by two "unrelated" accounts says a lot). Per
family of evidence the weights add up to a strength in [0, 1]; lockstep activity over time
buckets (SynchroTrap-style) is added as the ``timing`` family. An edge needs at least
``edge_min_families`` families — one family alone never links accounts — and accounts that
declare one organisation are never linked: they say openly that one customer runs them.
"""

from __future__ import annotations

from distillwatch.engine import Dialect, SqlStep
from distillwatch.settings import LinkSettings

TOKENS = "__dw__link_tokens"
PAIRS = "__dw__link_pairs"
EDGES = "__dw__link_edges"
FAMILY_NAMES = ("scaffold", "network", "identity", "onboard", "timing")
# Summed inverse document frequency at which a kind's strength reaches 1 - 1/e: a shared
# payment instrument weighs most, a shared e-mail domain least. Scaffold keys come many to a
# prompt (16 MinHash bands, lines, head, tail), and one or two collide by chance between
# unrelated frames, so a scaffold needs many shared keys.
KIND_SCALES = {"scaffold": 20.0, "ip": 4.0, "prefix": 25.0, "asn_ua": 20.0, "payment": 2.0,
               "email": 12.0}
IDF_CAP = 8.0
# Joining in one sign-up burst is suggestive, never proof: several operators can open their
# accounts the same day. It can carry an edge only together with other evidence.
BURST_WEIGHT, ACTIVATION_WEIGHT = 0.45, 0.35
# Jaccard of two accounts' active time buckets at which lockstep starts / is certain.
SYNC_FLOOR, SYNC_FULL = 0.3, 0.7


def _noisy_or(expression: str) -> str:
    """1 - prod(1 - x) over a group, as an aggregate."""
    return f"(1.0 - exp(sum(ln(greatest(1e-9, 1.0 - ({expression}))))))"


def pair_sqls(dialect: Dialect, settings: LinkSettings,
              disabled_families: tuple[str, ...] = ()) -> list[SqlStep]:
    """Steps that build ``__dw__link_pairs`` (one row per candidate pair and its evidence).

    Reads ``__dw__link_tokens``, ``__dw__features`` and ``__dw__accounts``.

    Args:
        dialect: The engine's SQL.
        settings: Link settings.
        disabled_families: Families whose evidence counts as zero (ablation studies).
    """
    kind_strength = " ".join(
        f"WHEN kind = '{kind}' THEN 1.0 - exp(-idf_sum / {scale})"
        for kind, scale in KIND_SCALES.items())
    epoch = dialect.epoch_seconds("ts")
    bucket_s = settings.sync_bucket_minutes * 60
    df = f"""
SELECT kind, token, count(*) AS df FROM {TOKENS} GROUP BY kind, token HAVING count(*) >= 2
"""
    blocks = f"""
SELECT t.account_id, t.kind, t.family, t.token, t.strength,
       least({IDF_CAP},
             ln(CAST((SELECT count(DISTINCT account_id) FROM __dw__features) AS DOUBLE)
                / d.df)) AS idf,
       CAST(floor((row_number() OVER (PARTITION BY t.kind, t.token ORDER BY t.account_id) - 1)
                  / {settings.max_block}) AS BIGINT) AS block
FROM {TOKENS} t JOIN __dw__link_token_df d ON d.kind = t.kind AND d.token = t.token
"""
    shared = """
SELECT x.account_id AS a, y.account_id AS b, x.kind, x.family,
       sum(x.idf) AS idf_sum, max(least(x.strength, y.strength)) AS burst, count(*) AS tokens
FROM __dw__link_blocks x
JOIN __dw__link_blocks y
  ON y.kind = x.kind AND y.token = x.token AND y.block = x.block AND y.account_id > x.account_id
LEFT JOIN __dw__accounts ox ON ox.account_id = x.account_id
LEFT JOIN __dw__accounts oy ON oy.account_id = y.account_id
WHERE ox.organization_id IS NULL OR oy.organization_id IS NULL
   OR ox.organization_id <> oy.organization_id
GROUP BY x.account_id, y.account_id, x.kind, x.family
"""
    off = ", ".join(f"'{f}'" for f in disabled_families) or "''"
    kinds = f"""
SELECT a, b, kind, family, tokens,
       CASE WHEN family IN ({off}) THEN 0.0
            WHEN kind = 'signup' THEN {BURST_WEIGHT} * burst
            WHEN kind = 'activation' THEN {ACTIVATION_WEIGHT} * burst
            {kind_strength} ELSE 0.0 END AS strength
FROM __dw__link_shared
"""
    families = ",\n    ".join(
        f"max(CASE WHEN family = '{f}' THEN strength ELSE 0.0 END) AS s_{f}"
        for f in FAMILY_NAMES if f != "timing")
    by_family = f"""
SELECT a, b, family, {_noisy_or('strength')} AS strength, sum(tokens) AS tokens
FROM __dw__link_kinds GROUP BY a, b, family
"""
    pivot = f"""
SELECT a, b,
    {families},
    max(CASE WHEN family = 'scaffold' THEN tokens ELSE 0 END) AS scaffold_tokens,
    max(CASE WHEN family = 'network' THEN tokens ELSE 0 END) AS network_tokens
FROM __dw__link_family_rows GROUP BY a, b
"""
    buckets = f"""
SELECT DISTINCT account_id, CAST(floor({epoch} / {bucket_s}) AS BIGINT) AS bucket
FROM __dw__features
"""
    bucket_counts = """
SELECT account_id, count(*) AS buckets FROM __dw__link_buckets GROUP BY account_id
"""
    co_active = f"""
SELECT p.a, p.b, count(*) AS co
FROM __dw__link_pivot p
JOIN __dw__link_bucket_counts ca
  ON ca.account_id = p.a AND ca.buckets >= {settings.sync_min_buckets}
JOIN __dw__link_bucket_counts cb
  ON cb.account_id = p.b AND cb.buckets >= {settings.sync_min_buckets}
JOIN __dw__link_buckets xa ON xa.account_id = p.a
JOIN __dw__link_buckets xb ON xb.account_id = p.b AND xb.bucket = xa.bucket
GROUP BY p.a, p.b
"""
    theta = settings.family_min_strength
    count_families = " + ".join(
        f"(CASE WHEN s_{f} >= {theta} THEN 1 ELSE 0 END)" for f in FAMILY_NAMES)
    combined = " * ".join(f"(1.0 - s_{f})" for f in FAMILY_NAMES)
    timing = f"""
SELECT p.*,
    CASE WHEN c.co IS NULL OR {"TRUE" if "timing" in disabled_families else "FALSE"} THEN 0.0
    ELSE greatest(0.0, least(1.0,
        (CAST(c.co AS DOUBLE) / (ca.buckets + cb.buckets - c.co) - {SYNC_FLOOR})
        / {SYNC_FULL - SYNC_FLOOR}))
    END AS s_timing,
    coalesce(CAST(c.co AS DOUBLE) / (ca.buckets + cb.buckets - c.co), 0.0) AS sync_jaccard
FROM __dw__link_pivot p
LEFT JOIN __dw__link_co_active c ON c.a = p.a AND c.b = p.b
LEFT JOIN __dw__link_bucket_counts ca ON ca.account_id = p.a
LEFT JOIN __dw__link_bucket_counts cb ON cb.account_id = p.b
"""
    final = f"""
SELECT *, {count_families} AS families, 1.0 - {combined} AS strength
FROM __dw__link_timed
"""
    return [
        SqlStep(df, "__dw__link_token_df"),
        SqlStep(blocks, "__dw__link_blocks"),
        SqlStep(shared, "__dw__link_shared"),
        SqlStep(kinds, "__dw__link_kinds"),
        SqlStep(by_family, "__dw__link_family_rows"),
        SqlStep(pivot, "__dw__link_pivot"),
        SqlStep(buckets, "__dw__link_buckets"),
        SqlStep(bucket_counts, "__dw__link_bucket_counts"),
        SqlStep(co_active, "__dw__link_co_active"),
        SqlStep(timing, "__dw__link_timed"),
        SqlStep(final, PAIRS),
    ]


def edge_sqls(settings: LinkSettings) -> list[SqlStep]:
    """Steps that keep the pairs whose evidence makes an edge (``__dw__link_edges``).

    A candidate edge must also be embedded in its neighbourhood: the two accounts share at
    least one neighbour, and ``edge_min_support`` of the smaller degree. Accounts of one operator
    form a dense block, so their edges are supported many times over; a coincidence between
    two operators (two campaigns that opened accounts the same day behind one proxy provider)
    is a bridge with almost no common neighbours, and is dropped rather than merging them.
    """
    candidates = f"""
SELECT a, b, strength FROM {PAIRS}
WHERE families >= {settings.edge_min_families} AND strength >= {settings.edge_min_strength}
"""
    both_ways = """
SELECT a AS x, b AS y FROM __dw__link_candidates
UNION ALL SELECT b AS x, a AS y FROM __dw__link_candidates
"""
    degrees = "SELECT x, count(*) AS degree FROM __dw__link_both_ways GROUP BY x"
    common = """
SELECT c.a, c.b, count(*) AS common
FROM __dw__link_candidates c
JOIN __dw__link_both_ways n1 ON n1.x = c.a
JOIN __dw__link_both_ways n2 ON n2.x = c.b AND n2.y = n1.y
GROUP BY c.a, c.b
"""
    supported = """
SELECT c.a, c.b, c.strength, coalesce(m.common, 0) AS common,
       least(da.degree, db.degree) AS min_degree
FROM __dw__link_candidates c
JOIN __dw__link_degrees da ON da.x = c.a
JOIN __dw__link_degrees db ON db.x = c.b
LEFT JOIN __dw__link_common m ON m.a = c.a AND m.b = c.b
"""
    kept = f"""
SELECT a, b, strength, common FROM __dw__link_supported
WHERE common >= greatest(1.0, {settings.edge_min_support} * (min_degree - 1))
"""
    return [SqlStep(candidates, "__dw__link_candidates"),
            SqlStep(both_ways, "__dw__link_both_ways"),
            SqlStep(degrees, "__dw__link_degrees"),
            SqlStep(common, "__dw__link_common"),
            SqlStep(supported, "__dw__link_supported"),
            SqlStep(kept, EDGES)]
