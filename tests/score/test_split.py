"""The campaign split: accounts of a cluster that lack its signature behaviour are
re-clustered apart over the kept edges within each part, read by account number."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distillwatch.link.pairs_sql import EDGE_NUMBERS, IDS
from distillwatch.link.support import EDGE_SCHEMA
from distillwatch.watcher import Watcher

NAMES = [f"acct-{n:03d}" for n in range(12)]


def test_misfits_are_split_off_and_clusters_without_a_signature_stay_whole(engine):
    engine.register(IDS, pa.table({"id": pa.array(range(12), pa.int32()), "account_id": NAMES}))
    # Cluster {0..5}: 0-3 show the signature, 4 and 5 do not (4 hangs on 3); {6, 7, 8} shows
    # none; 9-11 are linked to nobody.
    edges = [(0, 1), (1, 2), (2, 3), (0, 3), (3, 4), (4, 5), (6, 7), (7, 8)]
    engine.register(EDGE_NUMBERS, pa.table({
        "ia": [a for a, _ in edges], "ib": [b for _, b in edges], "strength": [1.0] * 8,
        "common": [1] * 8}, schema=EDGE_SCHEMA))
    order = np.array([11, 4, 0, 7, 2, 9, 5, 1, 8, 3, 10, 6])  # profile rows in no set order
    ids = np.array(NAMES, dtype=object)[order]
    fit = np.isin(order, [0, 1, 2, 3]).astype(float)
    watcher = Watcher(engine)

    def stats(cluster, exchanges, families):
        # Each cluster's signature strength: the mean fit of its members.
        return [(int((cluster == c).sum()), 1.0, 1.0, 1.0,
                 {"cot": float(fit[cluster == c].mean())}) for c in range(cluster.max() + 1)]

    watcher._cluster_scores = stats
    cluster = np.full(12, -1)
    for members, label in (([0, 1, 2, 3, 4, 5], 0), ([6, 7, 8], 1)):
        cluster[np.isin(order, members)] = label
    split = watcher._split_by_signature(ids, cluster, np.ones(12), None, {"cot": fit})
    groups = {frozenset(ids[split == c]) for c in set(split.tolist()) if c >= 0}
    assert groups == {frozenset(NAMES[n] for n in members)
                      for members in ([0, 1, 2, 3], [4, 5], [6, 7, 8])}
    assert (split[np.isin(order, [9, 10, 11])] == -1).all()
