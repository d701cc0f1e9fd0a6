"""Fixtures: a tiny world (see tinyworld.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tinyworld import ACCOUNTS, COUNTS, build_world, exchange


@pytest.fixture
def tiny_world(tmp_path) -> Path:
    records = [exchange(account, 0.5 + i * 0.25) for account, n in COUNTS.items()
               for i in range(n)]
    return build_world(tmp_path / "world", ACCOUNTS, records)
