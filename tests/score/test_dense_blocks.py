"""The dense-block step of the scan: above its edge limit, the edges never reach the driver."""

from __future__ import annotations

import pyarrow as pa

from distillwatch import watcher
from distillwatch.watcher import Watcher


def _tokens(accounts: int, tokens: int) -> pa.Table:
    rows = [(f"acct-{a:03d}", "ip", "network", f"10.0.0.{t}", 1.0)
            for a in range(accounts) for t in range(tokens)]
    return pa.table({name: [r[i] for r in rows] for i, name in enumerate(
        ("account_id", "kind", "family", "token", "strength"))})


def test_edges_past_the_limit_are_counted_not_fetched(engine, monkeypatch):
    engine.register("__dw__link_tokens", _tokens(12, 5))  # 60 shared account-token edges
    fetched = []
    fetch = engine.fetch_arrow
    monkeypatch.setattr(engine, "fetch_arrow",
                        lambda sql, context="query": fetched.append(context) or fetch(sql,
                                                                                     context))
    monkeypatch.setattr(watcher, "MAX_DENSE_EDGES", 59)
    assert Watcher(engine)._dense_blocks([]) == []
    assert fetched == ["dense-block edge count"]
    fetched.clear()
    monkeypatch.setattr(watcher, "MAX_DENSE_EDGES", 60)
    Watcher(engine)._dense_blocks([])
    assert fetched == ["dense-block edge count", "dense-block edges"]
