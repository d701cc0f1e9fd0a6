"""Scheduled exchanges: an event is a time, an account and a way to render the exchange.

Populations and campaigns plan events one day at a time; the simulator sorts them and renders
each one only when it is written, so memory holds a day of small plans, never a day of records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from distillwatch.simulate.accounts import Account


@dataclass(order=True, slots=True)
class Event:
    """One planned exchange.

    Args:
        ts: When the request arrives (epoch seconds).
        seq: Tie-breaker that keeps the order deterministic.
        account: Who sends it.
        render: Builds the Exchange dict (called once, at write time).
    """

    ts: float
    seq: int
    account: Account = field(compare=False)
    render: Callable[[], dict] = field(compare=False)
    tag: str | None = field(default=None, compare=False)


class EventSink:
    """Collects the events a population plans; hands out sequence numbers."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._seq = 0

    def add(
        self, ts: float, account: Account, render: Callable[[], dict], tag: str | None = None
    ) -> None:
        """Plan one exchange; ``tag`` is ground truth kept out of the record (a capability)."""
        self._seq += 1
        self.events.append(Event(ts, self._seq, account, render, tag))

    def drain(self) -> list[Event]:
        events, self.events = self.events, []
        return events
