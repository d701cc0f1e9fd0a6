"""Time to detection: replay a world in time order and find when each campaign is first caught.

At each cutoff (window start + k x step) the scanner sees the exchanges sent before it. A
campaign is detected at the first cutoff where at least half of its accounts that have sent
anything so far are flagged. Time to detection is the number of the campaign's exchanges sent
before that cutoff.
"""

from __future__ import annotations

import bisect
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from distillwatch.evaluate.labels import WorldLabels
from distillwatch.evaluate.metrics import FOUND_SHARE
from distillwatch.evaluate.scan_output import load_scan_output
from distillwatch.evaluate.scanners import Scanner
from distillwatch.io import find_exchange_files, iter_exchanges


@dataclass
class Detection:
    campaign_id: str
    name: str
    detected: bool
    detected_at: str | None
    exchanges_before: int
    campaign_exchanges: int
    share_before: float

    def to_dict(self) -> dict:
        return asdict(self)


def replay(
    world_dir: Path,
    labels: WorldLabels,
    scanner: Scanner,
    step: timedelta = timedelta(days=1),
    progress: Callable[[int, int], None] | None = None,
) -> list[Detection]:
    """Scan the world at each cutoff and report time to detection per campaign.

    Args:
        world_dir: The world.
        labels: Its ground truth.
        scanner: Run at each cutoff on the exchanges before it.
        step: Time between cutoffs.
        progress: Called with (cutoffs done, cutoffs in all).
    """
    start, end = labels.window
    cutoffs: list[datetime] = []
    moment = start + step
    while moment < end:
        cutoffs.append(moment)
        moment += step
    cutoffs.append(end)

    sent: dict[str, list[float]] = defaultdict(list)
    campaign_of = {a: e.campaign_id for a, e in labels.accounts.items() if e.campaign_id}
    for exchange in iter_exchanges(find_exchange_files(world_dir),
                                   columns=("account_id", "timestamp")):
        campaign = campaign_of.get(exchange["account_id"])
        if campaign:
            sent[campaign].append(datetime.fromisoformat(exchange["timestamp"]).timestamp())
    for times in sent.values():
        times.sort()

    first_detected: dict[str, datetime] = {}
    with tempfile.TemporaryDirectory(prefix="distillwatch-replay-") as tmp:
        for done, cutoff in enumerate(cutoffs, start=1):
            pending = [c for c in labels.campaigns if c not in first_detected]
            if pending:
                out = Path(tmp) / f"cut-{done:04d}"
                scanner.scan(world_dir, out, until=cutoff)
                flagged = load_scan_output(out).flagged()
                for campaign_id in pending:
                    active = [a for a in labels.campaigns[campaign_id].accounts
                              if labels.accounts[a].first_seen < cutoff]
                    hit = sum(a in flagged for a in active)
                    if hit and hit >= FOUND_SHARE * len(active):
                        first_detected[campaign_id] = cutoff
            if progress:
                progress(done, len(cutoffs))

    detections = []
    for campaign_id, truth in sorted(labels.campaigns.items()):
        times = sent.get(campaign_id, [])
        cutoff = first_detected.get(campaign_id)
        before = bisect.bisect_left(times, cutoff.timestamp()) if cutoff else len(times)
        detections.append(Detection(
            campaign_id=campaign_id, name=truth.name, detected=cutoff is not None,
            detected_at=cutoff.isoformat() if cutoff else None, exchanges_before=before,
            campaign_exchanges=len(times), share_before=before / len(times) if times else 0.0))
    return detections
