"""Per-day and release-window behaviour from SQL, on hand-built exchanges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from distillwatch.engine import SqlPipeline
from distillwatch.fingerprint.features import FEATURES_SCHEMA
from distillwatch.profile.features_sql import account_window_sqls

START = datetime(2026, 4, 20, tzinfo=UTC)


def row(account: str, i: int, at: timedelta, model: str) -> dict:
    return {**{f.name: None for f in FEATURES_SCHEMA}, "exchange_id": f"{account}-{i}",
            "account_id": account, "ts": START + at, "model": model}


def test_busiest_day_round_the_clock_days_and_release_pivot(engine):
    rows = [row("bot", h, timedelta(hours=h), "old") for h in range(24)]          # day 0, 24 h
    rows += [row("bot", 100 + h, timedelta(days=1, hours=h), "old") for h in range(5)]
    rows += [row("pivot", i, timedelta(days=3, minutes=i), "new") for i in range(6)]
    rows += [row("pivot", 50 + i, timedelta(days=3, hours=2, minutes=i), "old")
             for i in range(2)]
    rows += [row("steady", i, timedelta(days=4, hours=i), "old") for i in range(4)]
    engine.register("__dw__features", pa.Table.from_pylist(rows, schema=FEATURES_SCHEMA))
    pipeline = SqlPipeline()
    pipeline.extend(account_window_sqls(engine.dialect))
    got = {r["account_id"]: r for r in engine.run(pipeline).to_pylist()}
    assert got["bot"]["max_exchanges_per_day"] == 24
    assert got["bot"]["round_the_clock_days"] == 1
    assert got["pivot"]["round_the_clock_days"] == 0
    # "new" first appears on day 3: 6 of pivot's 8 exchanges since then went to it
    assert got["pivot"]["release_window_share"] == pytest.approx(6 / 8)
    assert got["steady"]["release_window_share"] == 0.0
    assert got["bot"]["release_window_share"] is None  # nothing sent after the release
