"""One code path, two engines: a scan of the ci world on Spark equals the scan on DuckDB.

The world is ingested once with DuckDB and scanned there; the store is exported as Parquet
(``export_store``) and scanned again with ``SparkEngine`` in local mode. Campaigns, members,
decisions and every figure must agree; scores and confidences to 1e-9 (before the output
contract rounds them).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from distillwatch.engine import DuckDBEngine, SparkEngine, export_store  # noqa: E402
from distillwatch.score.policy import Policy  # noqa: E402
from distillwatch.settings import Settings  # noqa: E402
from distillwatch.watcher import ScanResult, Watcher  # noqa: E402

pytestmark = pytest.mark.slow
TOLERANCE = 1e-9
KEY = b"spark-equals-duckdb-test-key"


def differences(expected: ScanResult, actual: ScanResult, tolerance: float = TOLERANCE
                ) -> list[str]:
    """Every way two scans of one store disagree, in words (empty: they agree)."""
    out = []
    if (expected.total_exchanges, expected.window) != (actual.total_exchanges, actual.window):
        out.append(f"scanned {expected.total_exchanges} exchanges in {expected.window} vs "
                   f"{actual.total_exchanges} in {actual.window}")
    ours = {a.account_id: a for a in expected.accounts}
    theirs = {a.account_id: a for a in actual.accounts}
    if set(ours) != set(theirs):
        out.append(f"accounts in one scan only: {sorted(set(ours) ^ set(theirs))[:10]}")
    for account in sorted(set(ours) & set(theirs)):
        mine, other = ours[account], theirs[account]
        for name in ("decision", "campaign_id", "exchanges", "reasons"):
            if getattr(mine, name) != getattr(other, name):
                out.append(f"{account}: {name} {getattr(mine, name)!r} vs "
                           f"{getattr(other, name)!r}")
        score, other_score = (expected.account_scores.get(account),
                              actual.account_scores.get(account))
        if score is None or other_score is None or abs(score - other_score) > tolerance:
            out.append(f"{account}: score {score!r} vs {other_score!r}")
    campaigns = {c.campaign_id: c for c in expected.campaigns}
    other_campaigns = {c.campaign_id: c for c in actual.campaigns}
    if list(campaigns) != list(other_campaigns):
        out.append(f"campaigns {list(campaigns)} vs {list(other_campaigns)}")
    for campaign_id in sorted(set(campaigns) & set(other_campaigns)):
        mine = dataclasses.asdict(campaigns[campaign_id])
        other = dataclasses.asdict(other_campaigns[campaign_id])
        for name in mine:
            if name != "confidence" and mine[name] != other[name]:
                out.append(f"{campaign_id}: {name} {mine[name]!r} vs {other[name]!r}")
        confidence = expected.campaign_confidences.get(campaign_id)
        other_confidence = actual.campaign_confidences.get(campaign_id)
        if confidence is None or other_confidence is None \
                or abs(confidence - other_confidence) > tolerance:
            out.append(f"{campaign_id}: confidence {confidence!r} vs {other_confidence!r}")
    return out


def _ingest(world: Path, store: Path) -> None:
    from distillwatch.ingest.accounts import read_accounts, store_accounts
    from distillwatch.ingest.readers import input_files, sniff_kind
    from distillwatch.ingest.rejects import RejectSink
    from distillwatch.ingest.store import ensure_store, ingest

    files = input_files([world])
    engine = DuckDBEngine(store, memory_limit="1GB", threads=2)
    try:
        ensure_store(engine)
        sink = RejectSink(store.with_name("rejected.jsonl"))
        try:
            ingest(engine, [p for p in files if sniff_kind(p) == "exchanges"], sink, KEY)
            for path in (p for p in files if sniff_kind(p) == "accounts"):
                _, rows = read_accounts(path, sink)
                store_accounts(engine, rows)
        finally:
            sink.close()
    finally:
        engine.close()


def _scan(engine) -> ScanResult:
    try:
        return Watcher(engine, Settings(), policy=Policy.builtin()).scan()
    finally:
        engine.drop_all()


@pytest.fixture(scope="module")
def scans(ci_world, spark_session, tmp_path_factory) -> tuple[ScanResult, ScanResult]:
    """(DuckDB scan, Spark scan) of the ci world."""
    folder = tmp_path_factory.mktemp("engines")
    _ingest(ci_world, folder / "store.duckdb")
    duck = DuckDBEngine(folder / "store.duckdb", memory_limit="1GB", threads=2)
    try:
        on_duckdb = _scan(duck)
        parquet = export_store(duck, folder / "parquet")
    finally:
        duck.close()
    spark = SparkEngine(parquet, spark=spark_session)
    try:
        on_spark = _scan(spark)
    finally:
        spark.close()
    return on_duckdb, on_spark


def test_spark_finds_what_duckdb_finds(scans):
    on_duckdb, on_spark = scans
    assert len(on_duckdb.campaigns) >= 3 and on_duckdb.total_exchanges >= 40_000
    assert any(a.decision != "allow" for a in on_duckdb.accounts)
    assert differences(on_duckdb, on_spark) == []


def _changed(result: ScanResult, change) -> ScanResult:
    other = copy.deepcopy(result)
    change(other)
    return other


def _flagged(result: ScanResult) -> str:
    return next(a.account_id for a in result.accounts if a.campaign_id is not None)


@pytest.mark.parametrize("change, expected", [
    (lambda r: r.account_scores.update({_flagged(r): r.account_scores[_flagged(r)] + 2e-9}),
     "score"),
    (lambda r: r.campaign_confidences.update({"C-0001": r.campaign_confidences["C-0001"]
                                              - 5e-9}), "confidence"),
    (lambda r: setattr(next(a for a in r.accounts if a.account_id == _flagged(r)),
                       "decision", "flag_for_review_x"), "decision"),
    (lambda r: setattr(r.campaigns[0], "accounts", r.campaigns[0].accounts[1:]), "accounts"),
    (lambda r: r.campaigns.reverse(), "campaigns"),
    (lambda r: r.accounts.pop(), "one scan only"),
], ids=["score", "confidence", "decision", "members", "campaign_order", "missing_account"])
def test_the_comparison_fails_on_any_difference(scans, change, expected):
    on_duckdb, _ = scans
    found = differences(on_duckdb, _changed(on_duckdb, change))
    assert found and any(expected in line for line in found), found


def test_the_comparison_tolerates_float_noise(scans):
    on_duckdb, _ = scans
    account = _flagged(on_duckdb)
    noisy = _changed(on_duckdb, lambda r: r.account_scores.update(
        {account: r.account_scores[account] + 1e-12}))
    assert differences(on_duckdb, noisy) == []
