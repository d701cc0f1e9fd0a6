"""Determinism per seed, both output formats, strict presets."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.simulate.presets import load_preset
from distillwatch.simulate.simulator import simulate

MINI = """
name: mini
days: 3
release_day: 1
populations:
  coding_agent_devs: {accounts: 4, sessions_mean: 1.0}
  ordinary: {accounts: 30, sessions_mean: 1.0}
  support_bot: {conversations_per_day: 5}
  eval_vendor: {accounts: 1, sweeps_per_day: 0.2}
  jailbreaker: {accounts: 1, attempts_per_day: 1.0}
campaigns:
  - id: A-01
    accounts: 6
    per_account_per_day: 10
    capabilities: {reasoning_cot: 0.5, coding: 0.5}
    tactics:
      hydra_cluster: {bursts: 2, lifetime_days: 2.0}
      proxy_rotation: {pool_size: 40}
      cot_elicitation: {}
      coverage_partition: {}
  - id: A-02
    accounts: 3
    capabilities: {grading: 1.0}
    tactics:
      vpn_exits: {pool_size: 10}
      grading_elicitation: {}
      harvest_params: {n: [3], logprobs: true}
      model_pivot: {}
"""


@pytest.fixture(scope="module")
def mini_preset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preset") / "mini.yaml"
    path.write_text(MINI)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_world_other_seed_other_world(corpus, mini_preset, tmp_path):
    preset = load_preset(str(mini_preset))
    a, b, c = (simulate(preset, seed, tmp_path / name, corpus)
               for name, seed in (("a", 7), ("b", 7), ("c", 8)))
    for name in ("exchanges.jsonl.gz", "labels.json", "accounts.jsonl"):
        assert _digest(a.out_dir / name) == _digest(b.out_dir / name), name
    assert _digest(a.out_dir / "exchanges.jsonl.gz") != _digest(c.out_dir / "exchanges.jsonl.gz")
    assert a.exchanges > 100


def test_parquet_keeps_the_nested_field_names(corpus, mini_preset, tmp_path):
    summary = simulate(load_preset(str(mini_preset)), 7, tmp_path, corpus, fmt="parquet")
    table = pq.read_table(tmp_path / "exchanges")
    assert table.num_rows == summary.exchanges
    row = table.slice(0, 1).to_pylist()[0]
    assert {"exchange_id", "timestamp", "account_id", "model", "request", "client"} <= set(row)
    assert {"messages", "system", "tools", "max_tokens", "n", "logprobs"} <= set(row["request"])
    labels = json.loads((tmp_path / "labels.json").read_text())
    assert sum(e["exchanges"] for e in labels["accounts"].values()) == table.num_rows


@pytest.mark.parametrize("text, message", [
    ("days: 3\nwibble: 1\n", "Unknown preset key.*wibble"),
    ("days: 3\npopulations: {hobbits: {}}\n", "Population 'hobbits' not found"),
    ("days: 3\npopulations: {ordinary: {acounts: 3}}\n", "ordinary.*acounts"),
    ("days: 3\ncampaigns: [{id: X, accounts: 2, capabilities: {poetry: 1}}]\n",
     "unknown capability poetry"),
    ("days: 3\ncampaigns: [{id: X, accounts: 2, capabilities: {coding: 1}, "
     "tactics: {teleport: {}}}]\n", "Tactic 'teleport' not found"),
    ("days: 3\nrelease_day: 5\n", "release_day"),
    ("days: 3\ncampaigns: [{id: X, accounts: 2, capabilities: {coding: 1}, "
     "tactics: {camouflage: {shares: 1}}}]\n", "camouflage.*shares"),
    ("[1, 2", "not valid YAML"),
])
def test_invalid_presets_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DistillwatchConfigError, match=message):
        load_preset(str(path))


def test_unknown_preset_name_says_what_exists():
    with pytest.raises(DistillwatchConfigError, match="ci, holdout, standard, stress"):
        load_preset("huge")


def test_every_shipped_preset_file_loads_by_name():
    from importlib import resources

    files = resources.files("distillwatch") / "conf" / "presets"
    names = sorted(f.name.removesuffix(".yaml") for f in files.iterdir()
                   if f.name.endswith(".yaml"))
    assert [load_preset(name).name for name in names] == names


def test_a_startup_team_looks_like_a_hydra_in_all_but_its_intent(corpus, tmp_path):
    preset = tmp_path / "startup.yaml"
    preset.write_text("name: startup\ndays: 3\nrelease_day: 1\npopulations:\n"
                      "  startup_team: {accounts: 8, onboard_day: 1, sessions_per_day: 3.0}\n")
    simulate(load_preset(str(preset)), 3, tmp_path / "w", corpus)
    world = tmp_path / "w"
    accounts = [json.loads(line) for line in (world / "accounts.jsonl").open()]
    assert len(accounts) == 8
    assert len({a["organization_id"] for a in accounts}) == 1
    assert len({a["payment_fingerprint"] for a in accounts}) == 1
    assert {(a["verified"], a["signup_channel"]) for a in accounts} == {(False, "self_serve")}
    created = sorted(a["created_at"] for a in accounts)
    assert created[0][:10] == created[-1][:10] == "2026-04-21"   # one onboarding, in the window
    created_at = {a["account_id"]: a["created_at"] for a in accounts}
    with gzip.open(world / "exchanges.jsonl.gz", "rt") as handle:
        exchanges = [json.loads(line) for line in handle]
    assert len({e["account_id"] for e in exchanges}) >= 6 and len(exchanges) > 40
    for e in exchanges:
        request = e["request"]
        assert request["system"].startswith("You are Quill") and len(request["tools"]) == 2
        assert request["reasoning"]["enabled"] and e["timestamp"] > created_at[e["account_id"]]
    assert len({e["client"]["ip"] for e in exchanges}) <= 5          # office NAT + VPN egress
    assert max(sum(m["role"] == "user" for m in e["request"]["messages"])
               for e in exchanges) > 1                                 # real conversations


def test_ipv6_households_and_proxy_exits(corpus, tmp_path):
    from distillwatch.fingerprint.addresses import host_of

    preset = tmp_path / "v6.yaml"
    preset.write_text(
        "name: v6\ndays: 3\nrelease_day: 1\npopulations:\n"
        "  ordinary: {accounts: 20, sessions_mean: 3.0, ipv6_share: 1.0}\n"
        "campaigns:\n  - id: A-01\n    accounts: 4\n    per_account_per_day: 20\n"
        "    capabilities: {coding: 1.0}\n    tactics:\n"
        "      proxy_rotation: {pool_size: 10, ipv6_share: 1.0}\n")
    simulate(load_preset(str(preset)), 5, tmp_path / "w", corpus)
    labels = json.loads((tmp_path / "w" / "labels.json").read_text())
    with gzip.open(tmp_path / "w" / "exchanges.jsonl.gz", "rt") as handle:
        exchanges = [json.loads(line) for line in handle]
    by_label: dict[str, list[str]] = {}
    for e in exchanges:
        by_label.setdefault(labels["accounts"][e["account_id"]]["label"], []).append(
            e["client"]["ip"])
    assert all(":" in ip for ips in by_label.values() for ip in ips)
    # A household: a few /64s, a few temporary addresses in each.
    hosts = {host_of(ip) for ip in by_label["legit"]}
    assert len(hosts) <= 3 * 20 and len(set(by_label["legit"])) > len(hosts)
    # The proxy pool: ten /64s, (almost) every request from an address of its own.
    attack = by_label["attack"]
    assert len({host_of(ip) for ip in attack}) <= 10
    assert len(set(attack)) > 0.95 * len(attack)
