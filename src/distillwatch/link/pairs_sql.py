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

from dataclasses import dataclass

from distillwatch.engine import Dialect, SqlStep
from distillwatch.link.tokens_sql import FAMILIES as TOKEN_FAMILIES
from distillwatch.settings import LinkSettings

TOKENS = "__dw__link_tokens"
IDS = "__dw__link_ids"
PAIRS = "__dw__link_pairs"
PIVOT = "__dw__link_pivot"
COMPARED = "__dw__link_candidate_pairs"
LARGE_TOKENS = "__dw__link_big_tokens"
LARGE_SHARED = "__dw__link_large_shared"
BUCKETS = "__dw__link_buckets"
CO_ACTIVE = "__dw__link_co_active"
EDGES = "__dw__link_edges"
EDGE_NUMBERS = "__dw__link_edge_numbers"
CANDIDATES = "__dw__link_candidates"
FAMILY_NAMES = ("scaffold", "network", "identity", "onboard", "timing")
# Kinds of which an account can carry hundreds of tokens (one per proxy IP it came through):
# pairs and evidence count a bottom-k sketch of them (``link.network_sketch``).
SKETCHED_KINDS = ("ip", "prefix", "asn_ua")
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
# Kinds whose strength is the largest burst two accounts share, not a sum of idf.
BURST_KINDS = ("signup", "activation")
# Jaccard of two accounts' active time buckets at which lockstep starts / is certain.
SYNC_FLOOR, SYNC_FULL = 0.3, 0.7


def _family_strength(family: str) -> str:
    """A family's strength from a pair's per-kind sums (``i_<kind>``: summed idf,
    ``b_<kind>``: largest burst): the noisy-OR of its kinds' strengths, 1 - prod(1 - s)."""
    strength = {kind: f"(1.0 - exp(-i_{kind} / {scale}))" for kind, scale in KIND_SCALES.items()}
    strength["signup"] = f"({BURST_WEIGHT} * b_signup)"
    strength["activation"] = f"({ACTIVATION_WEIGHT} * b_activation)"
    logs = " + ".join(f"ln(greatest(1e-9, 1.0 - {strength[kind]}))"
                      for kind, of in TOKEN_FAMILIES.items() if of == family)
    return f"(1.0 - exp({logs}))"


def _kinds_of(family: str) -> str:
    """The kinds of tokens of a family, as a SQL list."""
    return ", ".join(f"'{kind}'" for kind, of in TOKEN_FAMILIES.items() if of == family)


@dataclass(frozen=True)
class PairSteps:
    """The SQL of the pairs, in runs around the driver's pass over the compared pairs
    (``link.compared``: the large tokens' evidence and the lockstep overlap).

    Attributes:
        compared: Runs, in order, each materialising its last step: they build
            ``__dw__link_ids`` (``account_id``, ``id``: a number for every account with a
            token, in account id order; ``organization_id``), ``__dw__link_candidate_pairs``
            (``ia``, ``ib``: the numbers of the pairs compared, ``ia < ib``) and
            ``__dw__link_big_tokens`` (the tokens shared by more than ``max_block``, with the
            holder's ``id``).
        buckets: Builds ``__dw__link_buckets`` (distinct ``id``, ``bucket``, of the accounts
            active in ``sync_min_buckets`` or more) and ``__dw__link_bucket_counts`` (``id``,
            ``buckets``).
        evidence_steps: The steps of :meth:`evidence`, with ``{in_range}`` for the range.
    """

    compared: list[list[SqlStep]]
    buckets: list[list[SqlStep]]
    evidence_steps: list[SqlStep]

    def evidence(self, first: int, stop: int) -> list[SqlStep]:
        """Steps that build the rows of ``__dw__link_pairs`` (``ia``, ``ib``: the accounts'
        numbers in ``__dw__link_ids``, and the evidence) of the compared pairs with
        ``first <= ia < stop``.

        They read the tables above, ``__dw__link_large_shared`` (the large tokens' evidence
        of the compared pairs but bursts) and ``__dw__link_co_active`` (``ia``, ``ib``,
        ``co``: the lockstep overlap; no row: none), both registered by the driver's pass. A
        pair's row depends on its own rows only, so the pairs can be built range by range
        (``link.compared.chunk_bounds``): one aggregation over the 133M compared pairs of
        31.6M exchanges of `stress` spilled more than 50 GB.
        """
        condition = f"(ia >= {int(first)} AND ia < {int(stop)})"
        return [SqlStep(step.sql.replace("{in_range}", condition), step.output)
                for step in self.evidence_steps]


def pair_sqls(dialect: Dialect, settings: LinkSettings,
              disabled_families: tuple[str, ...] = (), clustered: bool = False) -> PairSteps:
    """Steps that build ``__dw__link_pairs`` (one row per candidate pair and its evidence).

    Reads ``__dw__link_tokens``, ``__dw__features`` and ``__dw__accounts``.

    Args:
        dialect: The engine's SQL.
        settings: Link settings.
        disabled_families: Families whose evidence counts as zero (ablation studies).
        clustered: Store the small-token pair rows and the compared pairs in the order of
            their first account, for an engine that reads them range by range
            (:meth:`PairSteps.evidence`, the driver's chunks) and skips the blocks of rows
            outside a range by their min / max. Unordered, every range read the whole
            table: on 31.6M exchanges of `stress` 8.5 GB of the 177M small-token rows,
            spilled to disk, for each of 34 ranges (15 of its 16 s).
    """
    in_order = "\nORDER BY ia" if clustered else ""
    epoch = dialect.epoch_seconds("ts")
    bucket_s = settings.sync_bucket_minutes * 60
    df = f"""
SELECT kind, token, count(*) AS df FROM {TOKENS} GROUP BY kind, token HAVING count(*) >= 2
"""
    # Every account that carries a token gets a number (in account id order, so that
    # ``ia < ib`` exactly when ``a < b``), and pairs are keyed by numbers from here on: the
    # link stage's aggregations hash two integers a pair, not two id strings.
    ids = f"""
SELECT t.account_id, CAST(row_number() OVER (ORDER BY t.account_id) - 1 AS INTEGER) AS id,
       o.organization_id
FROM (SELECT DISTINCT account_id FROM {TOKENS}) t
LEFT JOIN (SELECT account_id, max(organization_id) AS organization_id FROM __dw__accounts
           GROUP BY account_id) o ON o.account_id = t.account_id
"""
    # Every shared token of an account with its inverse document frequency; of each network
    # kind, an account keeps its first network_sketch tokens in the order of their unit hash
    # (``rank``), and ``holders`` counts the accounts keeping a token. A proxy-hopping head of
    # a hydra meets hundreds of a pool's IPs, each shared by a hundred others: on 31.6M
    # exchanges of `stress` its IPs and /24s alone made ~900M pairs of sharers.
    network = ", ".join(f"'{kind}'" for kind in SKETCHED_KINDS)
    ranked_tokens = f"""
SELECT i.id, i.organization_id, t.kind, t.family, t.token, t.strength, d.df,
       least({IDF_CAP},
             ln(CAST((SELECT count(DISTINCT account_id) FROM __dw__features) AS DOUBLE)
                / d.df)) AS idf,
       CASE WHEN t.kind IN ({network}) THEN row_number() OVER (
           PARTITION BY i.id, t.kind ORDER BY {dialect.unit_hash('t.token')}, t.token)
       ELSE 1 END AS sketch_rank
FROM {TOKENS} t JOIN __dw__link_token_df d ON d.kind = t.kind AND d.token = t.token
JOIN {IDS} i ON i.account_id = t.account_id
"""
    shared_tokens = f"""
SELECT id, organization_id, kind, family, token, strength, df, idf,
       count(*) OVER (PARTITION BY kind, token) AS holders
FROM __dw__link_ranked_tokens WHERE sketch_rank <= {settings.network_sketch}
"""
    # Tokens shared by more than max_block accounts are not paired sharer by sharer. Each
    # account that carries one gets keys from its set of such tokens: the smallest and the
    # largest scaffold token and the smallest network token (tokens are keyed hashes, so each
    # is a MinHash of one permutation). Accounts with (nearly) the same tokens get the same
    # keys; sorted by a key, the accounts of one operator sit side by side, and each account
    # is compared with its neighbours in windows of pair_window accounts.
    big = settings.max_block
    order_keys = f"""
SELECT id,
       min(CASE WHEN family = 'scaffold' THEN token END) AS k_scaffold_min,
       max(CASE WHEN family = 'scaffold' THEN token END) AS k_scaffold_max,
       min(CASE WHEN family = 'network' THEN token END) AS k_network
FROM __dw__link_shared_tokens WHERE holders > {big} GROUP BY id
"""
    window = settings.pair_window
    passes = " UNION ALL ".join(f"""
SELECT id, '{key}' AS pass,
       CAST(floor((row_number() OVER (ORDER BY {key} NULLS LAST, id) - 1) / {window})
            AS BIGINT) AS block
FROM __dw__link_order_keys WHERE {key} IS NOT NULL"""
        for key in ("k_scaffold_min", "k_scaffold_max", "k_network"))
    # Evidence of the tokens shared by at most max_block accounts: every pair of sharers, one
    # row per pair and kind (a row per pair and token was 169M rows on the first 10M exchanges
    # of `stress`: each head of a hydra meets hundreds of the proxy pool's IPs).
    small_rows = f"""
SELECT x.id AS ia, y.id AS ib, x.kind, x.family, sum(x.idf) AS idf_sum,
       max(least(x.strength, y.strength)) AS burst, count(*) AS tokens
FROM __dw__link_shared_tokens x
JOIN __dw__link_shared_tokens y ON y.kind = x.kind AND y.token = x.token AND y.id > x.id
WHERE x.holders <= {big}
  AND (x.organization_id IS NULL OR y.organization_id IS NULL
       OR x.organization_id <> y.organization_id)
GROUP BY x.id, y.id, x.kind, x.family{in_order}
"""
    window_rows = """
SELECT x.id AS ia, y.id AS ib
FROM __dw__link_windows x
JOIN __dw__link_windows y ON y.pass = x.pass AND y.block = x.block AND y.id > x.id
UNION ALL
SELECT least(x.id, y.id) AS ia, greatest(x.id, y.id) AS ib
FROM __dw__link_windows x
JOIN __dw__link_windows y ON y.pass = x.pass AND y.block = x.block + 1
"""
    # The pairs compared: those sharing a small token, and window neighbours.
    candidates = f"""
SELECT DISTINCT ia, ib FROM __dw__link_small_rows
UNION
SELECT c.ia, c.ib
FROM __dw__link_window_rows c
JOIN {IDS} ox ON ox.id = c.ia
JOIN {IDS} oy ON oy.id = c.ib
WHERE ox.organization_id IS NULL OR oy.organization_id IS NULL
   OR ox.organization_id <> oy.organization_id{in_order}
"""
    # ... and their evidence over the large tokens they share, so that every pair compared
    # has its evidence counted over every token: bursts here, the other kinds on the driver
    # (``__dw__link_large_shared``).
    big_tokens = f"""
SELECT id, kind, family, token, idf, strength
FROM __dw__link_shared_tokens WHERE holders > {big}
"""
    bursts = ", ".join(f"'{kind}'" for kind in BURST_KINDS)
    big_bursts = f"""
SELECT c.ia, c.ib, x.kind, x.family, x.idf, least(x.strength, y.strength) AS burst
FROM {COMPARED} c
JOIN {LARGE_TOKENS} x ON x.id = c.ia AND x.kind IN ({bursts})
JOIN {LARGE_TOKENS} y ON y.id = c.ib AND y.kind = x.kind AND y.token = x.token
WHERE {{in_range}}
"""
    # Every kind's evidence of a pair, from the three sources, in one aggregation per pair
    # (per kind, then per family, then per pair, it was three aggregations over hundreds of
    # millions of rows on 31.6M exchanges of `stress`); a kind a pair does not share adds 0.
    sums = [f"sum(CASE WHEN kind = '{kind}' THEN idf_sum ELSE 0.0 END) AS i_{kind}"
            for kind in KIND_SCALES]
    sums += [f"max(CASE WHEN kind = '{kind}' THEN burst ELSE 0.0 END) AS b_{kind}"
             for kind in BURST_KINDS]
    sums += [f"sum(CASE WHEN kind IN ({_kinds_of(family)}) THEN tokens ELSE 0 END) "
             f"AS {family}_tokens" for family in ("scaffold", "network")]
    shared = f"""
SELECT ia, ib,
    {", ".join(sums)}
FROM (SELECT ia, ib, kind, idf_sum, burst, tokens FROM __dw__link_small_rows
      WHERE {{in_range}}
      UNION ALL
      SELECT ia, ib, kind, idf AS idf_sum, burst, 1 AS tokens FROM __dw__link_big_bursts
      UNION ALL
      SELECT ia, ib, kind, idf_sum, burst, tokens FROM {LARGE_SHARED}
      WHERE {{in_range}})
GROUP BY ia, ib
"""
    families = ",\n    ".join(
        f"{'0.0' if family in disabled_families else _family_strength(family)} AS s_{family}"
        for family in FAMILY_NAMES if family != "timing")
    pivot = f"""
SELECT ia, ib,
    {families},
    scaffold_tokens, network_tokens
FROM __dw__link_shared
"""
    active = f"""
SELECT DISTINCT account_id, CAST(floor({epoch} / {bucket_s}) AS BIGINT) AS bucket
FROM __dw__features
"""
    buckets = f"""
SELECT i.id, a.bucket FROM __dw__link_active a JOIN {IDS} i ON i.account_id = a.account_id
WHERE a.account_id IN (SELECT account_id FROM __dw__link_active GROUP BY account_id
                       HAVING count(*) >= {settings.sync_min_buckets})
"""
    bucket_counts = """
SELECT id, count(*) AS buckets FROM __dw__link_buckets GROUP BY id
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
LEFT JOIN (SELECT * FROM __dw__link_co_active WHERE {{in_range}}) c
    ON c.ia = p.ia AND c.ib = p.ib
LEFT JOIN __dw__link_bucket_counts ca ON ca.id = p.ia
LEFT JOIN __dw__link_bucket_counts cb ON cb.id = p.ib
"""
    # Keyed by numbers only: the ids of 133M compared pairs (31.6M exchanges of `stress`)
    # were ~2 x 133M strings, and a report needs the ids of few of them.
    final = f"""
SELECT t.*, {count_families} AS families, 1.0 - {combined} AS strength
FROM __dw__link_timed t
"""
    return PairSteps(
        compared=[
            [SqlStep(ids, IDS)],
            [SqlStep(df, "__dw__link_token_df"),
             SqlStep(ranked_tokens, "__dw__link_ranked_tokens"),
             SqlStep(shared_tokens, "__dw__link_shared_tokens")],
            [SqlStep(small_rows, "__dw__link_small_rows")],
            [SqlStep(order_keys, "__dw__link_order_keys"),
             SqlStep(passes, "__dw__link_windows"),
             SqlStep(window_rows, "__dw__link_window_rows"),
             SqlStep(candidates, COMPARED)],
            [SqlStep(big_tokens, LARGE_TOKENS)],
        ],
        buckets=[[SqlStep(active, "__dw__link_active"), SqlStep(buckets, BUCKETS)],
                 [SqlStep(bucket_counts, "__dw__link_bucket_counts")]],
        evidence_steps=[
            SqlStep(big_bursts, "__dw__link_big_bursts"),
            SqlStep(shared, "__dw__link_shared"),
            SqlStep(pivot, PIVOT),
            SqlStep(timing, "__dw__link_timed"),
            SqlStep(final, PAIRS),
        ])


def candidate_edge_sql(settings: LinkSettings) -> SqlStep:
    """The pairs whose evidence makes a candidate edge (``ia``, ``ib``: the accounts'
    numbers, ``strength``); which of them are kept is decided by their common neighbours
    (``link.support``)."""
    return SqlStep(f"""
SELECT ia, ib, strength FROM {PAIRS}
WHERE families >= {settings.edge_min_families} AND strength >= {settings.edge_min_strength}
""", CANDIDATES)


def named_edge_sql() -> SqlStep:
    """``__dw__link_edges`` (``a``, ``b``, ``strength``, ``common``) from the kept edges by
    account number (``__dw__link_edge_numbers``, registered by ``link.edges``)."""
    return SqlStep(f"""
SELECT i.account_id AS a, j.account_id AS b, e.strength, e.common
FROM {EDGE_NUMBERS} e
JOIN {IDS} i ON i.id = e.ia
JOIN {IDS} j ON j.id = e.ib
""", EDGES)
