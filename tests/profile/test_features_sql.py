"""Account profiles from SQL agree with a plain-Python reference on random features."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from distillwatch.engine import SqlPipeline
from distillwatch.fingerprint.addresses import prefix_of
from distillwatch.fingerprint.features import FEATURES_SCHEMA
from distillwatch.profile.features_sql import account_feature_sqls

START = datetime(2026, 4, 20, tzinfo=UTC)


def random_features(seed: int, rows: int = 400) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        max_tokens = rng.choice([None, 512, 4096])
        ip = f"10.{rng.randrange(3)}.{rng.randrange(3)}.{rng.randrange(1, 5)}"
        out.append({
            "exchange_id": f"e{i:05d}", "account_id": rng.choice("abcde"),
            "ts": START + timedelta(seconds=rng.randrange(0, 5 * 86400)),
            "client_ip": ip, "client_prefix": prefix_of(ip),
            "client_asn": rng.choice([1, 2, 3]),
            "client_asn_kind": rng.choice(["residential", "hosting", "proxy", "business"]),
            "client_country": rng.choice(["US", "DE", "SG"]), "model": rng.choice("xy"),
            "head_key": rng.randrange(20), "cot": rng.random() < 0.4,
            "grading": rng.random() < 0.1, "tool_trace": rng.random() < 0.1,
            "user_turns": rng.choice([1, 1, 2, 5]), "n": rng.choice([None, 1, 4]),
            "logprobs": rng.choice([None, True, False]),
            "reasoning_budget": rng.choice([None, 0, 2000]), "max_tokens": max_tokens,
            "output_tokens": rng.choice([100, 512, 5000]),
        })
    return out


def reference(rows: list[dict]) -> dict[str, dict]:
    by_account: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["ts"], r["exchange_id"])):
        by_account.setdefault(row["account_id"], []).append(row)
    out = {}
    for account, rs in by_account.items():
        days = {int(r["ts"].timestamp() // 86400) for r in rs}
        gaps = [(b["ts"] - a["ts"]).total_seconds() for a, b in zip(rs, rs[1:], strict=False)]
        out[account] = {
            "exchanges": len(rs), "active_days": len(days),
            "exchanges_per_active_day": len(rs) / len(days),
            "active_hours_of_day": len({r["ts"].hour for r in rs}),
            "mean_gap_s": statistics.mean(gaps),
            "gap_cv": statistics.pstdev(gaps) / statistics.mean(gaps),
            "single_turn_share": sum(r["user_turns"] <= 1 for r in rs) / len(rs),
            "cot_rate": sum(r["cot"] for r in rs) / len(rs),
            "multi_sample_rate": sum((r["n"] or 0) > 1 for r in rs) / len(rs),
            "logprobs_rate": sum(bool(r["logprobs"]) for r in rs) / len(rs),
            "reasoning_budget_rate": sum((r["reasoning_budget"] or 0) > 0 for r in rs) / len(rs),
            "max_tokens_saturation": sum(r["max_tokens"] is not None
                                         and r["output_tokens"] >= r["max_tokens"]
                                         for r in rs) / len(rs),
            "distinct_opening_share": len({r["head_key"] for r in rs}) / len(rs),
            "untrusted_network_share": sum(r["client_asn_kind"] in ("hosting", "proxy")
                                           for r in rs) / len(rs),
            "distinct_ips": len({r["client_ip"] for r in rs}),
            "distinct_prefixes": len({r["client_ip"].rsplit(".", 1)[0] for r in rs}),
            "distinct_countries": len({r["client_country"] for r in rs}),
        }
    return out


@pytest.mark.parametrize("seed, tied", [(1, False), (2, False), (3, False), (4, True)])
def test_profile_matches_reference(engine, seed, tied):
    rows = random_features(seed)
    if tied:  # many exchanges of an account in one second: gaps of 0 between them
        rows = [{**row, "ts": row["ts"].replace(minute=0, second=0)} for row in rows]
    table = pa.Table.from_pylist(
        [{**{f.name: None for f in FEATURES_SCHEMA}, **row} for row in rows],
        schema=FEATURES_SCHEMA)
    engine.register("__dw__features", table)
    pipeline = SqlPipeline()
    pipeline.extend(account_feature_sqls(engine.dialect))
    got = {r["account_id"]: r for r in engine.run(pipeline).to_pylist()}
    expected = reference(rows)
    assert set(got) == set(expected)
    for account, values in expected.items():
        for name, value in values.items():
            assert got[account][name] == pytest.approx(value), (account, name)
