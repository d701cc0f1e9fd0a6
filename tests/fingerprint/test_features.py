"""Exchange features on real simulated traffic: one row per exchange, nothing raw leaks."""

from __future__ import annotations

import gzip
import json

import pytest

from distillwatch.fingerprint.addresses import host_of, prefix_of
from distillwatch.fingerprint.features import FEATURES_SCHEMA, exchange_features

KEY = b"k"


@pytest.fixture(scope="module")
def sample(ci_world):
    labels = json.loads((ci_world / "labels.json").read_text())
    records = []
    with gzip.open(ci_world / "exchanges.jsonl.gz", "rt") as handle:
        for i, line in enumerate(handle):
            if i % 10 == 0:
                records.append(json.loads(line))
    return labels, records


def test_one_row_per_exchange_with_the_schema(sample):
    _, records = sample
    table = exchange_features(records, KEY)
    assert table.schema == FEATURES_SCHEMA
    assert table.num_rows == len(records)
    assert table.column("exchange_id").to_pylist() == [r["exchange_id"] for r in records]
    assert all(len(keys) == 16 for keys in table.column("band_keys").to_pylist())


def test_features_reflect_what_campaigns_ask_for(sample):
    labels, records = sample
    table = exchange_features(records, KEY).to_pylist()
    by_campaign: dict[str, list[dict]] = {}
    for row in table:
        campaign = labels["accounts"][row["account_id"]]["campaign_id"]
        by_campaign.setdefault(campaign or labels["accounts"][row["account_id"]]["population"],
                               []).append(row)

    def share(group, field, value=True):
        rows = by_campaign[group]
        return sum(r[field] == value for r in rows) / len(rows)

    assert share("A-04", "grading") > 0.9                 # reward-model style grading
    assert share("A-04", "logprobs") > 0.9 and by_campaign["A-04"][0]["n"] == 4
    assert share("A-02", "capability", "agentic_tool_use") > 0.9
    assert share("A-01", "cot") > 0.9
    assert share("ordinary", "cot") < 0.2
    devs = by_campaign["coding_agent_devs"]
    assert len({r["system_hash"] for r in devs}) == 1     # one open-source agent's prompt
    assert len({r["tools_hash"] for r in devs}) == 1


def test_no_raw_prompt_text_in_the_features(sample):
    _, records = sample
    table = exchange_features(records[:200], KEY)
    skeletons = " ".join(table.column("skeleton").to_pylist())
    for record in records[:200]:
        for message in record["request"]["messages"]:
            content = message["content"]
            text = content if isinstance(content, str) else ""
            long_spans = [line for line in text.splitlines() if len(line.split()) > 60]
            for span in long_spans:
                assert span not in skeletons


def test_a_selection_of_columns_equals_the_same_columns_of_all(sample):
    from distillwatch.fingerprint.features import SCAFFOLD_COLUMNS, features_from_arrow
    from distillwatch.io.arrow_layout import to_arrow

    _, records = sample
    batch = to_arrow(records)
    everything = features_from_arrow(batch, KEY)
    for columns in (SCAFFOLD_COLUMNS, ("skeleton", "language"), ("capability",)):
        chosen = features_from_arrow(batch, KEY, columns=columns)
        assert chosen.column_names == [name for name in FEATURES_SCHEMA.names
                                        if name in columns]
        assert chosen.equals(everything.select(chosen.column_names))
    with pytest.raises(ValueError, match="Unknown feature columns.*'scaffold'"):
        features_from_arrow(batch, KEY, columns=("band_keys", "scaffold"))


@pytest.mark.parametrize("given, host, block", [
    ("198.51.100.7", "198.51.100.7", "198.51.100.0/24"),
    # An IPv6 client is its /64, whichever of its addresses it sends from, in any notation.
    ("2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64", "2001:db8:1::/48"),
    ("2001:0DB8:0001:0002::0009", "2001:db8:1:2::/64", "2001:db8:1::/48"),
    ("[2001:db8::1]", "2001:db8::/64", "2001:db8::/48"),
    # A load balancer's log of the peer carries its port.
    ("198.51.100.7:50312", "198.51.100.7", "198.51.100.0/24"),
    ("[2001:db8:1:2::5]:443", "2001:db8:1:2::/64", "2001:db8:1::/48"),
    ("::ffff:198.51.100.7", "198.51.100.7", "198.51.100.0/24"),
    ("not-an-address", "not-an-address", None),
    ("a.b.c.d", "a.b.c.d", None),
    (None, None, None),
])
def test_a_clients_host_and_block(given, host, block):
    record = {"exchange_id": "e1", "timestamp": "2026-05-02T10:00:00Z", "account_id": "a",
              "model": "m", "client": {"ip": given},
              "request": {"messages": [{"role": "user", "content": "hi"}]}}
    row = exchange_features([record, {**record, "exchange_id": "e2"}], b"k").to_pylist()[1]
    assert (row["client_ip"], row["client_prefix"]) == (host, block)
    # The gateway reads the same grains of an address (per-IP windows, network indicators).
    assert (host_of(given), prefix_of(given)) == (host, block)
