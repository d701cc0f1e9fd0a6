"""The scanner plug-in contract and registry, used by ``evaluate --scanner`` and replays.

Implementation of a scanner:
    Subclass :class:`Scanner`, set ``NAME`` (stable snake_case id), ``DESCRIPTION`` and
    ``DEFAULT_PARAMS``; ``scan(world_dir, out_dir, until)`` writes the scan output contract for
    the world's exchanges sent before ``until``. Register it in ``SCANNERS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.plugins import check_options, lookup


class Scanner(ABC):
    """Something that turns a world's exchanges into a scan output.

    Args:
        **params: Overrides of ``DEFAULT_PARAMS`` (same types).

    Raises:
        DistillwatchConfigError: On an unknown parameter or a value of the wrong type.
    """

    NAME: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        check_options("scanner", self.NAME, params, self.DEFAULT_PARAMS, word="parameter")
        self.params = dict(self.DEFAULT_PARAMS)
        for key, value in params.items():
            default = self.DEFAULT_PARAMS[key]
            try:
                self.params[key] = type(default)(value)
            except (TypeError, ValueError) as error:
                raise DistillwatchConfigError(
                    f"Scanner '{self.NAME}': {key}={value!r} is not a "
                    f"{type(default).__name__}") from error

    @abstractmethod
    def scan(self, world_dir: Path, out_dir: Path, until: datetime | None = None) -> None:
        """Write campaigns.json and accounts.jsonl for exchanges sent before ``until``."""


def _registry() -> dict[str, type[Scanner]]:
    from distillwatch.evaluate.baselines import CotRateBaseline, VolumeBaseline
    from distillwatch.evaluate.command_scanner import CommandScanner
    from distillwatch.evaluate.detector_scanner import DistillwatchScanner

    return {cls.NAME: cls for cls in (DistillwatchScanner, VolumeBaseline, CotRateBaseline,
                                      CommandScanner)}


def scanners() -> dict[str, type[Scanner]]:
    """Every registered scanner, by id."""
    return _registry()


def get_scanner(name: str, **params: Any) -> Scanner:
    """An instance of the scanner registered as ``name``.

    Raises:
        DistillwatchConfigError: If no scanner has that id, or a parameter is invalid.
    """
    return lookup(_registry(), name, "scanner")(**params)
