"""Worker processes that never outlive the process that started them, and how many cores
this process may use."""

from __future__ import annotations

import os
import threading
import time


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


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)
