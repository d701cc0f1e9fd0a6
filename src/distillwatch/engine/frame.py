"""A handle to a table an engine holds: its templated name and its physical name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from distillwatch.engine.base import Engine


@dataclass
class EngineFrame:
    """A table in an engine.

    Args:
        templated_name: What stage SQL calls it, e.g. ``__dw__profile_features``.
        physical_name: What the database calls it (unique per run for intermediate tables).
        engine: The engine that holds it.
        is_view: A view over other tables rather than a materialised table.
    """

    templated_name: str
    physical_name: str
    engine: Engine
    is_view: bool = False

    def to_arrow(self) -> pa.Table:
        """The whole table as Arrow (for small results: reports, tests)."""
        return self.engine.fetch_arrow(f"SELECT * FROM {self.physical_name}")

    def to_pylist(self) -> list[dict]:
        return self.to_arrow().to_pylist()

    def count(self) -> int:
        return int(self.engine.fetch_arrow(
            f"SELECT count(*) AS n FROM {self.physical_name}").column("n")[0].as_py())

    def drop(self) -> None:
        self.engine.drop(self)
