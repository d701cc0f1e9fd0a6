"""Build a labelled world: plan each day, write exchanges in time order, then the labels."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from distillwatch import __version__
from distillwatch.simulate.campaign import Campaign
from distillwatch.simulate.clock import Window, iso
from distillwatch.simulate.context import Models, WorldContext
from distillwatch.simulate.events import Event, EventSink
from distillwatch.simulate.populations.base import Population
from distillwatch.simulate.populations.registry import get_population
from distillwatch.simulate.presets import Preset
from distillwatch.simulate.text import Corpus
from distillwatch.simulate.writer import ExchangeWriter

logger = logging.getLogger(__name__)
LABELS_SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class WorldSummary:
    """What was written."""

    out_dir: Path
    exchanges: int
    accounts: int
    campaigns: int
    attack_exchanges: int
    seconds: float


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.replace(tmp, path)


def simulate(
    preset: Preset,
    seed: int,
    out_dir: Path,
    corpus: Corpus,
    fmt: str | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> WorldSummary:
    """Generate a world from ``preset`` into ``out_dir``.

    Args:
        preset: The validated preset.
        seed: Same seed, same world.
        out_dir: Created if missing; existing world files are replaced.
        corpus: Real text.
        fmt: ``jsonl.gz`` or ``parquet`` (default: the preset's).
        progress: Called after each day with (day, days, exchanges written so far).

    Returns:
        A summary of what was written.
    """
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    window = Window.from_date(preset.start, preset.days)
    world = WorldContext(seed, window, corpus, Models(release_day=preset.release_day),
                         include_replies=preset.include_replies)
    populations: list[Population] = [
        get_population(name)(world, **knobs) for name, knobs in preset.populations.items()
    ]
    campaigns = [Campaign(world, spec) for spec in preset.campaigns]
    for population in [*populations, *campaigns]:
        population.setup()

    writer = ExchangeWriter(out_dir, fmt or preset.format, seed)
    # A day plans hundreds of thousands of small objects that live until they are written;
    # the cyclic collector would walk them over and over. Collect once a day instead.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    tags: dict[str, Counter[str]] = defaultdict(Counter)
    sink = EventSink()
    pending: list[Event] = []
    everyone = [*populations, *campaigns]
    for day in range(window.days):
        for population in everyone:
            population.plan_day(day, sink)
        events = pending + sink.drain()
        events.sort(key=_order)
        cutoff = window.day_start(day + 1)
        split = next((i for i, e in enumerate(events) if e.ts >= cutoff), len(events))
        _write(events[:split], writer, tags, window)
        pending = events[split:]
        gc.collect()
        if progress:
            progress(day + 1, window.days, writer.count)
    # Conversations still running when the window closes are cut there.
    writer.close()
    if gc_was_enabled:
        gc.enable()

    accounts = [a for p in everyone for a in p.accounts if a.created_at < window.end]
    with open(out_dir / "accounts.jsonl.partial", "wb") as handle:
        for account in accounts:
            handle.write(orjson.dumps(account.record()) + b"\n")
    os.replace(out_dir / "accounts.jsonl.partial", out_dir / "accounts.jsonl")

    labels = _labels(preset, seed, window, everyone, campaigns, writer, tags)
    _write_json(out_dir / "labels.json", labels)
    seconds = time.perf_counter() - started
    attack_exchanges = sum(c["exchanges"] for c in labels["campaigns"].values())
    _write_json(out_dir / "world.json", {
        "generator": f"distillwatch {__version__}",
        "preset": preset.name, "seed": seed, "format": writer.fmt,
        "window": labels["window"], "models": {
            "main": world.models.main, "mini": world.models.mini, "new": world.models.new,
            "new_released_at": iso(window.day_start(world.models.release_day))},
        "exchanges": writer.count, "accounts": len(labels["accounts"]),
        "attack_exchanges": attack_exchanges, "campaigns": len(labels["campaigns"]),
        "sessions_used": world.pools.taken, "sources": corpus.sources,
        "generation_seconds": round(seconds, 1),
    })
    return WorldSummary(out_dir, writer.count, len(labels["accounts"]), len(campaigns),
                        attack_exchanges, seconds)


def _order(event: Event) -> tuple[float, int]:
    return event.ts, event.seq


def _write(events: list[Event], writer: ExchangeWriter, tags: dict[str, Counter[str]],
           window: Window) -> None:
    for event in events:
        if event.ts < window.start or event.ts >= window.end:
            continue
        writer.write(event.render())
        if event.account.campaign_id:
            tags[event.account.campaign_id][event.tag or "other"] += 1


def _labels(preset: Preset, seed: int, window: Window, everyone: list[Population],
            campaigns: list[Campaign], writer: ExchangeWriter,
            tags: dict[str, Counter[str]]) -> dict:
    accounts: dict[str, dict] = {}
    populations: dict[str, dict] = {}
    for population in everyone:
        for account in population.accounts:
            tally = writer.tallies.get(account.account_id)
            if tally is None:
                continue  # never sent anything inside the window
            accounts[account.account_id] = {
                "label": account.label, "population": account.population,
                "campaign_id": account.campaign_id, "tactics": list(account.tactics),
                "exchanges": tally.exchanges, "first_seen": tally.first_seen,
                "last_seen": tally.last_seen,
            }
            entry = populations.setdefault(account.population, {
                "label": account.label, "heavy": bool(population.HEAVY), "accounts": 0})
            entry["accounts"] += 1
    campaign_labels = {}
    for campaign in campaigns:
        members = [a.account_id for a in campaign.accounts if a.account_id in accounts]
        if not members:
            logger.warning("campaign %s sent nothing inside the window",
                           campaign.spec.campaign_id)
            continue
        counts = tags[campaign.spec.campaign_id]
        total = sum(counts.values())
        campaign_labels[campaign.spec.campaign_id] = {
            "name": campaign.spec.name,
            "tactics": [t.NAME for t in campaign.tactics],
            "knobs": campaign.knobs_record,
            "capabilities": {k: round(v / total, 4) for k, v in sorted(counts.items())},
            "accounts": members,
            "exchanges": sum(accounts[m]["exchanges"] for m in members),
            "first_seen": min(accounts[m]["first_seen"] for m in members),
            "last_seen": max(accounts[m]["last_seen"] for m in members),
        }
    return {
        "schema_version": LABELS_SCHEMA_VERSION,
        "preset": preset.name, "seed": seed,
        "window": {"start": iso(window.start), "end": iso(window.end)},
        "populations": populations, "accounts": accounts, "campaigns": campaign_labels,
    }
