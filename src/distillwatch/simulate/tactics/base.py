"""The tactic plug-in contract: one attack behaviour with knobs.

Implementation of a tactic:
    Subclass :class:`Tactic`; set ``NAME`` (stable snake_case id, used in labels and reports),
    ``DESCRIPTION`` and ``DEFAULT_KNOBS`` (every knob with its default value); implement
    ``apply(plan)`` to change the parts of the :class:`CampaignPlan` the behaviour is about.
    Register the class in ``tactics/registry.py`` and add one test.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from distillwatch.plugins import check_options
from distillwatch.simulate.plan import CampaignPlan


class Tactic(ABC):
    """An attack behaviour.

    Args:
        rng: The campaign's random stream (for knob-dependent choices).
        **knobs: Overrides of ``DEFAULT_KNOBS``.

    Raises:
        DistillwatchConfigError: On an unknown knob.
    """

    NAME: ClassVar[str]
    VERSION: ClassVar[str] = "1"
    DESCRIPTION: ClassVar[str]
    DEFAULT_KNOBS: ClassVar[dict[str, Any]] = {}

    def __init__(self, rng: random.Random, **knobs: Any) -> None:
        check_options("tactic", self.NAME, knobs, self.DEFAULT_KNOBS)
        self.rng = rng
        self.knobs: dict[str, Any] = {**self.DEFAULT_KNOBS, **knobs}

    @abstractmethod
    def apply(self, plan: CampaignPlan) -> None:
        """Change ``plan`` to carry out this behaviour."""
