"""Worker processes that never outlive the process that started them, how many cores this
process may use, and numpy work over pairs spread on threads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def watch_parent(parent: int) -> None:
    """In a worker: exit as soon as the process that started it is gone.

    A killed scan (SIGKILL, the OOM killer) cannot shut its pool down; without this its
    workers would wait for work forever, holding their memory.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def lower_priority(steps: int) -> int | None:
    """Run the calling thread (on Linux, nice values are per thread; elsewhere the process)
    ``steps`` nice steps lower, to 19 at most: its new nice value, or None if not allowed."""
    try:
        return os.nice(max(0, steps))
    except (AttributeError, OSError):  # not Unix, or not allowed
        return None


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def on_slices(pool: ThreadPoolExecutor, threads: int,
              work: Callable[[np.ndarray, np.ndarray], T], left: np.ndarray,
              right: np.ndarray) -> list[T]:
    """``work`` run on one slice of the pairs (``left[k]``, ``right[k]``) per thread of
    ``pool``: the results of the slices, in order.

    Meant for numpy's bit operations and gathers, which release the GIL, so each slice has a
    core (on 31.6M exchanges of `stress` the link stage's pass over the compared pairs took
    3 min 16 s on one core while the engine waited).
    """
    cuts = np.linspace(0, len(left), threads + 1).astype(np.int64)
    return list(pool.map(lambda bounds: work(left[bounds[0]:bounds[1]],
                                             right[bounds[0]:bounds[1]]),
                         zip(cuts[:-1], cuts[1:], strict=True)))
