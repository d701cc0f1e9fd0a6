"""Time in the simulated world: the window, daily activity curves, timestamps.

Times are float seconds since the Unix epoch (UTC) inside the simulator and are rendered as
RFC 3339 strings with millisecond precision and a ``Z`` offset when an exchange is written.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY = 86_400.0
HOUR = 3_600.0

# Relative activity by local hour for people at work or at home: asleep at night, a morning
# rise, a working-day plateau and an evening tail. Scripted traffic uses FLAT instead.
HUMAN_DAY: tuple[float, ...] = (
    0.15, 0.08, 0.05, 0.04, 0.04, 0.06, 0.15, 0.35, 0.65, 0.90, 1.00, 1.00,
    0.90, 0.95, 1.00, 1.00, 0.95, 0.85, 0.70, 0.65, 0.60, 0.55, 0.40, 0.25,
)
OFFICE_DAY: tuple[float, ...] = (
    0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.20, 0.70, 1.00, 1.00, 0.95,
    0.70, 0.90, 1.00, 1.00, 0.90, 0.60, 0.25, 0.10, 0.06, 0.05, 0.04, 0.03,
)
FLAT: tuple[float, ...] = (1.0,) * 24
# End users of a consumer product, world-wide: a soft wave rather than a night-time gap.
GLOBAL_PRODUCT_DAY: tuple[float, ...] = (
    0.55, 0.50, 0.45, 0.45, 0.50, 0.55, 0.65, 0.75, 0.85, 0.95, 1.00, 1.00,
    1.00, 1.00, 1.00, 1.00, 0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60,
)
WEEKEND_FACTOR = 0.55


@dataclass(frozen=True)
class Window:
    """The simulated time window ``[start, end)``.

    Args:
        start: Epoch seconds at 00:00 UTC of the first day.
        days: Number of whole days.
    """

    start: float
    days: int

    @property
    def end(self) -> float:
        return self.start + self.days * DAY

    def day_start(self, day: int) -> float:
        return self.start + day * DAY

    @classmethod
    def from_date(cls, date: str, days: int) -> Window:
        parsed = datetime.fromisoformat(date).replace(tzinfo=UTC)
        return cls(parsed.timestamp(), days)


_MINUTE_PREFIX: dict[int, str] = {}


def iso(ts: float) -> str:
    """Render epoch seconds as RFC 3339 UTC with milliseconds, e.g. ``2026-04-20T08:15:02.123Z``."""
    millis_total = int(round(ts * 1000))
    minute, millis = divmod(millis_total, 60_000)
    prefix = _MINUTE_PREFIX.get(minute)
    if prefix is None:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
        prefix = _MINUTE_PREFIX[minute] = f"{moment:%Y-%m-%dT%H:%M:}"
        if len(_MINUTE_PREFIX) > 200_000:
            _MINUTE_PREFIX.clear()
    return f"{prefix}{millis // 1000:02d}.{millis % 1000:03d}Z"


def is_weekend(ts: float, utc_offset_hours: float = 0.0) -> bool:
    local = datetime.fromtimestamp(ts + utc_offset_hours * HOUR, UTC)
    return local.weekday() >= 5


class DailyCurve:
    """Samples times of day from an hourly activity curve in a local time zone.

    Args:
        weights: 24 relative weights, index = local hour.
        utc_offset_hours: The account's time zone.
    """

    def __init__(self, weights: tuple[float, ...], utc_offset_hours: float = 0.0) -> None:
        if len(weights) != 24:
            raise ValueError("a daily curve needs 24 hourly weights")
        self.weights = weights
        self.offset = utc_offset_hours
        total = sum(weights)
        acc = 0.0
        self._cumulative: list[float] = []
        for w in weights:
            acc += w / total
            self._cumulative.append(acc)

    def sample(self, rng: random.Random, day_start: float) -> float:
        """A moment in the UTC day starting at ``day_start`` drawn from the local curve."""
        hour = bisect.bisect_left(self._cumulative, rng.random())
        local_seconds = (min(hour, 23) + rng.random()) * HOUR
        return day_start + (local_seconds - self.offset * HOUR) % DAY

    def mean_weight(self) -> float:
        return sum(self.weights) / 24.0


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 60:
        return max(0, int(round(rng.gauss(mean, mean**0.5))))
    limit = pow(2.718281828459045, -mean)
    k, p = 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
