"""Replay a benchmark world through the online detector (issue 5's acceptance target).

The world's first ``--split-day`` days are scanned with the real batch scanner
(``evaluate.detector_scanner.DistillwatchScanner``: ingest, profile, link, score, with the
benchmark key); the later days' exchanges are then replayed in time order, as the requests a
gateway would see, through ``OnlineDetector.process`` with an in-process ``LocalState`` whose
clock is the replay's. A request is batched with the others that arrive within ``--batch-ms``
of simulated time (the detector's batching); a decision set by a batch applies from the next
request on, and a refused request is not observed again.

Reported:

- per campaign, its **new heads** (accounts first seen after the split, so unknown to the
  scan): how many of their exchanges passed before the first throttle / verify / block
  (median, p90), how many were never caught;
- for every legitimate population (the heavy hard negatives first) the accounts ever
  throttled, challenged or blocked (the target is 0);
- the detector's throughput: requests fingerprinted and matched per second on one core.

Example:
    python -m benchmarks.gateway_replay --world /tmp/worlds-det/ci-1 --split-day 4
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

# DistillwatchScanner fingerprints worlds with this key; the detector must use the same one.
BENCHMARK_KEY = b"distillwatch-benchmark-key"


def observed_of(exchange: dict):
    """The request a gateway would have seen for a world's exchange.

    A request with a declared system prompt or a reasoning budget is replayed as an Anthropic
    Messages body (its ``system`` and ``thinking`` survive the conversion unchanged), any
    other as an OpenAI Chat Completions body, so that the gateway's conversion gives back the
    exchange's request (checked by ``--check`` on a sample).
    """
    from distillwatch.gateway.detector import Observed

    request, client = exchange["request"], exchange.get("client") or {}
    reasoning = request.get("reasoning") or {}
    common = {"model": exchange["model"], "messages": request["messages"]}
    for name in ("tools", "max_tokens", "temperature", "top_p", "stream"):
        if request.get(name) is not None:
            common[name] = request[name]
    if request.get("system") is not None or reasoning.get("enabled") \
            or exchange.get("operation") == "messages":
        api, body = "anthropic_messages", dict(common)
        if request.get("system") is not None:
            body["system"] = request["system"]
        if reasoning.get("enabled"):
            body["thinking"] = {"type": "enabled", "budget_tokens": reasoning.get("budget_tokens")}
    else:
        api, body = "openai_chat", dict(common)
        for name in ("n", "logprobs", "top_logprobs"):
            if request.get(name) is not None:
                body[name] = request[name]
    ts = datetime.fromisoformat(exchange["timestamp"]).timestamp()
    return Observed(exchange["account_id"], exchange.get("api_key_id"), client.get("ip"),
                    client.get("user_agent"), api, body, ts)


def check_fingerprints(exchanges: list[dict]) -> int:
    """Scaffold keys of replayed requests vs the batch fingerprint of the exchanges; returns
    the number of exchanges whose keys differ."""
    from distillwatch.fingerprint.features import features_from_arrow
    from distillwatch.gateway.detector import scaffold_keys
    from distillwatch.io.arrow_layout import to_arrow

    online = scaffold_keys([observed_of(e) for e in exchanges], BENCHMARK_KEY)
    batch = features_from_arrow(to_arrow(exchanges), BENCHMARK_KEY).to_pylist()
    got: dict[int, set] = defaultdict(set)
    for position in range(len(online.keys)):
        got[int(online.rows[online.key_row[position]])].add(
            (int(online.key_kind[position]), int(online.keys[position])))
    differ = 0
    for row, features in enumerate(batch):
        want = {(0, k) for k in features["band_keys"]} | {(1, k) for k in features["line_hashes"]}
        for kind, name in ((2, "head_key"), (3, "tail_key"), (4, "system_hash"),
                           (5, "tools_hash")):
            if features[name] is not None:
                want.add((kind, features[name]))
        differ += want != got.get(row, set())
    return differ


def _quantile(values: list[int], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


CHUNK = 4096


def _keyed_chunks(world: Path, split: datetime):
    """(exchange, request, its scaffold keys) after the split, in time order, fingerprinted
    ``CHUNK`` requests at a time with the detector's own ``scaffold_keys`` (fingerprints are
    per request, so computing them ahead changes nothing but the cost)."""
    import numpy as np

    from distillwatch.gateway.detector import scaffold_keys
    from distillwatch.io import find_exchange_files, iter_exchanges

    def emit(exchanges):
        requests = [observed_of(e) for e in exchanges]
        keys = scaffold_keys(requests, BENCHMARK_KEY)
        order = np.argsort(keys.key_row, kind="stable")
        bounds = np.searchsorted(keys.key_row[order], np.arange(len(keys.rows) + 1))
        valid = dict(zip(keys.rows.tolist(), range(len(keys.rows)), strict=True))
        for row, (exchange, request) in enumerate(zip(exchanges, requests, strict=True)):
            position = valid.get(row)
            if position is None:
                yield exchange, request, None
            else:
                chosen = order[bounds[position]:bounds[position + 1]]
                yield exchange, request, (keys.key_kind[chosen], keys.keys[chosen])

    pending = []
    for exchange in iter_exchanges(find_exchange_files(world)):
        if datetime.fromisoformat(exchange["timestamp"]) < split:
            continue
        pending.append(exchange)
        if len(pending) >= CHUNK:
            yield from emit(pending)
            pending = []
    if pending:
        yield from emit(pending)


def _joined(parts: list):
    """One batch's ScaffoldKeys from its requests' precomputed keys (None: not parsed)."""
    import numpy as np

    from distillwatch.gateway.detector import ScaffoldKeys

    rows = [i for i, part in enumerate(parts) if part is not None]
    kept = [parts[i] for i in rows]
    if not kept:
        empty = np.zeros(0, np.int64)
        return ScaffoldKeys(np.asarray(rows, np.int64), empty, empty, empty)
    return ScaffoldKeys(
        np.asarray(rows, np.int64),
        np.concatenate([np.full(len(k), i, np.int64) for i, (k, _) in enumerate(kept)]),
        np.concatenate([k for k, _ in kept]), np.concatenate([v for _, v in kept]))


async def replay(world: Path, scan_dir: Path, split: datetime, labels, batch_ms: float,
                 max_batch: int, settings_path: Path | None) -> dict:
    from distillwatch.gateway.decisions import REFUSING, GatewayPolicy
    from distillwatch.gateway.detector import DetectorSettings, OnlineDetector
    from distillwatch.gateway.indicators import Indicators
    from distillwatch.gateway.state import LocalState

    indicators = Indicators.build(scan_dir=scan_dir, accounts=[world / "accounts.jsonl"],
                                  key=BENCHMARK_KEY)
    clock = {"now": split.timestamp()}
    state = LocalState(GatewayPolicy(), clock=lambda: clock["now"])
    settings = DetectorSettings.from_path_or_dict(settings_path)
    settings = dataclasses.replace(settings, executor="inline", max_batch=max_batch)
    asn_of: dict[str, int] = {}  # what a geo-IP database would answer for the replayed IPs
    detector = OnlineDetector(indicators, state, BENCHMARK_KEY, settings,
                              asn_lookup=asn_of.get)

    passed: Counter = Counter()     # account -> exchanges forwarded before its first refusal
    refused_at: dict[str, tuple[str, str | None, str]] = {}  # account -> (kind, campaign, rule)
    total: Counter = Counter()      # account -> exchanges after the split
    hits: Counter = Counter()       # account -> requests touching a campaign's scaffolds
    batch: list = []
    parts: list = []
    batch_end = 0.0

    async def flush() -> None:
        if not batch:
            return
        clock["now"] = max(r.ts for r in batch)
        verdicts = await detector.process_keyed(batch, _joined(parts))
        for verdict in verdicts:
            if verdict.touched:
                hits[verdict.account_id] += 1
            if verdict.decision is not None and verdict.decision.kind in REFUSING \
                    and verdict.account_id not in refused_at:
                refused_at[verdict.account_id] = (verdict.decision.kind,
                                                  verdict.decision.campaign_id, verdict.rule)
        batch.clear()
        parts.clear()

    for exchange, request, keys in _keyed_chunks(world, split):
        if batch and (request.ts >= batch_end or len(batch) >= max_batch):
            await flush()
        account = exchange["account_id"]
        total[account] += 1
        client = exchange.get("client") or {}
        if client.get("ip") and client.get("asn") is not None:
            asn_of[client["ip"]] = client["asn"]
        decision = state.layers["detector"].get(f"account:{account}")
        if decision is not None and not decision.expired(request.ts) \
                and decision.kind in REFUSING:
            continue  # refused at the gateway: not forwarded, not observed
        if account not in refused_at:
            passed[account] += 1
        if not batch:
            batch_end = request.ts + batch_ms / 1000.0
        batch.append(request)
        parts.append(keys)
    await flush()
    return _report(labels, indicators, split, passed, refused_at, total, hits, detector.stats)


async def throughput(world: Path, scan_dir: Path, split: datetime, sizes: list[int],
                     requests: int) -> list[dict]:
    """Requests per second through ``OnlineDetector.process`` (fingerprint + match + counters,
    inline on this core) on the first ``requests`` requests after the split."""
    import itertools

    from distillwatch.gateway.decisions import GatewayPolicy
    from distillwatch.gateway.detector import DetectorSettings, OnlineDetector
    from distillwatch.gateway.indicators import Indicators
    from distillwatch.gateway.state import LocalState
    from distillwatch.io import find_exchange_files, iter_exchanges

    indicators = Indicators.build(scan_dir=scan_dir, accounts=[world / "accounts.jsonl"],
                                  key=BENCHMARK_KEY)
    after = (e for e in iter_exchanges(find_exchange_files(world))
             if datetime.fromisoformat(e["timestamp"]) >= split)
    sample = [observed_of(e) for e in itertools.islice(after, requests)]
    out = []
    for size in sizes:
        settings = DetectorSettings(executor="inline", max_batch=size)
        detector = OnlineDetector(indicators, LocalState(GatewayPolicy()), BENCHMARK_KEY,
                                  settings)
        started = time.perf_counter()
        for first in range(0, len(sample), size):
            await detector.process(sample[first:first + size])
        seconds = time.perf_counter() - started
        out.append({"batch": size, "requests": len(sample), "seconds": round(seconds, 2),
                    "requests_per_s": round(len(sample) / seconds),
                    "fingerprint_share": round(detector.stats["fingerprint_s"] / seconds, 3)})
    return out


def _report(labels, indicators, split, passed, refused_at, total, hits, stats) -> dict:
    campaigns = {}
    heads_all: list[int] = []
    for cid, truth in sorted(labels.campaigns.items()):
        heads = [a for a in truth.accounts if labels.accounts[a].first_seen >= split
                 and total[a] > 0]
        caught = [a for a in heads if a in refused_at]
        before = [passed[a] for a in caught]
        everyone = before + [total[a] for a in heads if a not in refused_at]
        heads_all += everyone
        old_active = [a for a in truth.accounts if labels.accounts[a].first_seen < split
                      and total[a] > 0]
        campaigns[cid] = {
            "name": truth.name, "new_heads": len(heads), "caught": len(caught),
            "never_caught": len(heads) - len(caught),
            "never_caught_exchanges": sum(total[a] for a in heads if a not in refused_at),
            "median_before": _quantile(before, 0.5), "p90_before": _quantile(before, 0.9),
            "median_before_all_heads": _quantile(everyone, 0.5),
            "rules": dict(Counter(refused_at[a][2] for a in caught)),
            "decisions": dict(Counter(refused_at[a][0] for a in caught)),
            "old_members_active": len(old_active),
            "old_members_known": sum(1 for a in old_active if (s := indicators.scanned(a))
                                     and s.campaign_id),
        }
    populations = {}
    for name, population in sorted(labels.populations.items(),
                                   key=lambda item: (not item[1].heavy, item[0])):
        if population.label == "attack":
            continue
        active = [a for a, e in labels.accounts.items()
                  if e.population == name and total[a] > 0]
        hit = sorted(a for a in active if a in refused_at)
        populations[name] = {"label": population.label, "heavy": population.heavy,
                             "active_after_split": len(active),
                             "new_after_split": sum(1 for a in active
                                                    if labels.accounts[a].first_seen >= split),
                             "refused": len(hit), "refused_accounts": hit[:10],
                             # how close legitimate traffic came: requests touching a campaign
                             "with_touches": sum(1 for a in active if hits[a]),
                             "max_touches": max((hits[a] for a in active), default=0),
                             "max_hit_share": round(max((hits[a] / total[a] for a in active),
                                                        default=0.0), 3)}
    return {
        "campaigns": campaigns, "populations": populations,
        "new_heads": {"count": len(heads_all), "median_before": _quantile(heads_all, 0.5),
                      "p90_before": _quantile(heads_all, 0.9)},
        "replay": {"requests": stats["processed"], "batches": stats["batches"],
                   "unparsed": stats["invalid"], "match_s": round(stats["match_s"], 2)},
        "indicators": indicators.summary()["totals"],
    }


def _print(result: dict, header: str) -> None:
    print(f"\n## {header}\n")
    print("| campaign | new heads | caught | never caught (their exchanges) | median / p90 "
          "exchanges before refusal | median incl. never caught | rules |")
    print("|---|---|---|---|---|---|---|")
    for cid, c in result["campaigns"].items():
        print(f"| {cid} {c['name']} | {c['new_heads']} | {c['caught']} | {c['never_caught']} "
              f"({c['never_caught_exchanges']}) | {c['median_before']} / {c['p90_before']} | "
              f"{c['median_before_all_heads']} | "
              f"{', '.join(f'{k} {v}' for k, v in sorted(c['rules'].items())) or '-'} |")
    heads = result["new_heads"]
    print(f"\nall new heads: {heads['count']}, median {heads['median_before']}, "
          f"p90 {heads['p90_before']} exchanges before refusal (never caught: all theirs)")
    print("\n| population | heavy | active after split (new) | refused | accounts touching a "
          "campaign's scaffolds (most touches; highest share of an account's requests) |")
    print("|---|---|---|---|---|")
    for name, p in result["populations"].items():
        print(f"| {name} | {'yes' if p['heavy'] else 'no'} | {p['active_after_split']} "
              f"({p['new_after_split']}) | {p['refused']} | {p['with_touches']} "
              f"({p['max_touches']}; {p['max_hit_share']:.0%}) |")
    r = result["replay"]
    print(f"\nreplayed {r['requests']:,} requests in {r['batches']:,} batches "
          f"({r['unparsed']} unparsed); matching + counters {r['match_s']} s")
    for t in result.get("throughput", []):
        print(f"throughput, batches of {t['batch']}: {t['requests_per_s']:,} requests/s on one "
              f"core ({t['requests']:,} requests in {t['seconds']} s; fingerprinting "
              f"{t['fingerprint_share']:.0%} of it)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--split-day", type=int, default=None,
                        help="days scanned before the replay (default: half the window)")
    parser.add_argument("--scan-dir", type=Path, default=None,
                        help="where the scan is written (default WORLD/gateway-scan-dN); an "
                             "existing scan there is reused")
    parser.add_argument("--batch-ms", type=float, default=50.0,
                        help="simulated batching delay of the detector")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--settings", type=Path, default=None, help="detector settings YAML")
    parser.add_argument("--check", type=int, default=2000,
                        help="compare online and batch fingerprints on this many exchanges")
    parser.add_argument("--throughput", type=int, nargs="*", default=[64, 256, 1024],
                        help="batch sizes of the throughput pass (none: skip it)")
    parser.add_argument("--throughput-requests", type=int, default=4096)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from distillwatch.evaluate.detector_scanner import DistillwatchScanner
    from distillwatch.evaluate.labels import load_labels
    from distillwatch.io import find_exchange_files, iter_exchanges

    labels = load_labels(args.world)
    start, end = labels.window
    days = round((end - start).total_seconds() / 86400)
    split_day = args.split_day if args.split_day is not None else int(days / 2 + 0.5)
    split = start + timedelta(days=split_day)
    first_seen = Counter((labels.accounts[a].first_seen >= split)
                         for c in labels.campaigns.values() for a in c.accounts)
    print(f"world {args.world}: {days} days, split after day {split_day} ({split:%Y-%m-%d}); "
          f"campaign accounts first seen after the split: {first_seen[True]} "
          f"(before: {first_seen[False]})")
    scan_dir = args.scan_dir or args.world / f"gateway-scan-d{split_day}"
    if not (scan_dir / "campaigns.json").is_file():
        started = time.perf_counter()
        DistillwatchScanner().scan(args.world, scan_dir, until=split)
        print(f"scanned days 0-{split_day - 1} in {time.perf_counter() - started:.0f} s "
              f"-> {scan_dir}")
    else:
        print(f"reusing the scan in {scan_dir}")
    if args.check:
        sample = []
        for exchange in iter_exchanges(find_exchange_files(args.world)):
            sample.append(exchange)
            if len(sample) >= args.check:
                break
        differ = check_fingerprints(sample)
        print(f"fingerprints: {len(sample) - differ} of {len(sample)} replayed requests have "
              "exactly the batch scaffold keys")
        if differ:
            return 1
    result = asyncio.run(replay(args.world, scan_dir, split, labels, args.batch_ms,
                                args.max_batch, args.settings))
    if args.throughput:
        result["throughput"] = asyncio.run(throughput(
            args.world, scan_dir, split, args.throughput, args.throughput_requests))
    result["world"] = {"path": str(args.world), "days": days, "split_day": split_day}
    _print(result, f"{args.world.name}, split after day {split_day}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
