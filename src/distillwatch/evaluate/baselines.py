"""Two one-signal baselines, so the benchmark's difficulty is on record.

``volume_baseline`` blocks accounts whose exchanges per active day reach a threshold;
``cot_rate_baseline`` blocks accounts whose share of reasoning-trace requests reaches one. Each
reads a world once into compact per-exchange arrays and answers any ``until`` from them, so a
time-ordered replay costs one pass over the files.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np

from distillwatch.evaluate.scanners import Scanner
from distillwatch.io import find_exchange_files, iter_exchanges
from distillwatch.report.contract import AccountResult, write_scan_output

# Requests for a written-out reasoning trace, in the words people and scripts use. Deliberately
# simpler than fingerprint.elicitation (English only, no edges or system-prompt logic): this is
# the naive detector the benchmark is calibrated against, and its numbers are on record.
COT_PATTERN = re.compile(
    r"step[ -]by[ -]step|think(?:ing)? (?:it )?through|show (?:all of )?your (?:full )?"
    r"(?:reasoning|work|thinking)|explain your reasoning|chain[ -]of[ -]thought|<thinking>|"
    r"<reasoning>|reason carefully|reasoning trace",
    re.IGNORECASE,
)
DAY = 86_400.0


def last_user_text(request: dict) -> str:
    """The text of the last user message (string content or text parts)."""
    for message in reversed(request.get("messages") or ()):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


class _WorldArrays:
    """Per-exchange account index, time (epoch seconds) and reasoning-request flag."""

    def __init__(self, world_dir: Path) -> None:
        accounts: dict[str, int] = {}
        index, times, cot = [], [], []
        for exchange in iter_exchanges(find_exchange_files(world_dir),
                                       columns=("account_id", "timestamp", "request")):
            request = exchange.get("request") or {}
            reasoning = request.get("reasoning") or {}
            index.append(accounts.setdefault(exchange["account_id"], len(accounts)))
            times.append(datetime.fromisoformat(exchange["timestamp"]).timestamp())
            cot.append(bool(reasoning.get("enabled"))
                       or bool(COT_PATTERN.search(last_user_text(request))))
        self.ids = np.array(list(accounts), dtype=object)
        self.index = np.array(index, dtype=np.int64)
        self.times = np.array(times, dtype=np.float64)
        self.cot = np.array(cot, dtype=bool)


class _Baseline(Scanner):
    _cache: ClassVar[dict[Path, _WorldArrays]] = {}

    def _arrays(self, world_dir: Path) -> _WorldArrays:
        key = world_dir.resolve()
        if key not in self._cache:
            self._cache.clear()  # one world at a time
            self._cache[key] = _WorldArrays(world_dir)
        return self._cache[key]

    def _score(self, counts: np.ndarray, active_days: np.ndarray, cot: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, str]:
        raise NotImplementedError

    def scan(self, world_dir: Path, out_dir: Path, until: datetime | None = None) -> None:
        arrays = self._arrays(world_dir)
        keep = (arrays.times < until.timestamp()) if until else np.ones(len(arrays.times), bool)
        index, times = arrays.index[keep], arrays.times[keep]
        n = len(arrays.ids)
        counts = np.bincount(index, minlength=n)
        days = np.unique(index * 100_000 + (times // DAY).astype(np.int64))
        active_days = np.bincount(days // 100_000, minlength=n)
        cot = np.bincount(index, weights=arrays.cot[keep].astype(float), minlength=n)
        scores, flags, reason = self._score(counts, active_days, cot)
        results = [
            AccountResult(account_id=str(arrays.ids[i]), score=round(float(scores[i]), 6),
                          decision="block" if flags[i] else "allow",
                          exchanges=int(counts[i]), reasons=[reason] if flags[i] else [])
            for i in np.flatnonzero(counts)
        ]
        window = ((datetime.fromtimestamp(times.min(), UTC), datetime.fromtimestamp(
            times.max(), UTC)) if len(times) else (until, until))
        write_scan_output(out_dir, window=window, total_exchanges=int(keep.sum()),
                          accounts=results, extra={"scanner": self.NAME,
                                                   "params": self.params})


class VolumeBaseline(_Baseline):
    """Blocks accounts sending at least ``threshold`` exchanges per active day."""

    NAME = "volume_baseline"
    DESCRIPTION = "exchanges per active day >= threshold"
    DEFAULT_PARAMS = {"threshold": 200.0}

    def _score(self, counts, active_days, cot):
        rate = counts / np.maximum(active_days, 1)
        threshold = self.params["threshold"]
        # score: 0.5 at the threshold, towards 1 well above it
        return rate / (rate + threshold), rate >= threshold, "high_volume"


class CotRateBaseline(_Baseline):
    """Blocks accounts whose share of reasoning-trace requests reaches ``threshold``."""

    NAME = "cot_rate_baseline"
    DESCRIPTION = "share of reasoning-trace requests >= threshold (min_exchanges or more)"
    DEFAULT_PARAMS = {"threshold": 0.5, "min_exchanges": 10}

    def _score(self, counts, active_days, cot):
        rate = cot / np.maximum(counts, 1)
        enough = counts >= self.params["min_exchanges"]
        # score: the rate, discounted for accounts with too few exchanges to judge
        score = np.where(enough, rate, rate * counts / self.params["min_exchanges"])
        return score, enough & (rate >= self.params["threshold"]), "cot_elicitation"
