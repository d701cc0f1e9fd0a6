"""Every population, by its stable id (attack campaigns are configured apart)."""

from __future__ import annotations

from distillwatch.plugins import lookup
from distillwatch.simulate.populations.agency import ContentAgency
from distillwatch.simulate.populations.base import Population
from distillwatch.simulate.populations.bilingual import BilingualTeam
from distillwatch.simulate.populations.coding_agent import CodingAgentDevelopers
from distillwatch.simulate.populations.eval_vendor import EvaluationVendor
from distillwatch.simulate.populations.jailbreaker import Jailbreakers
from distillwatch.simulate.populations.labelling import LabellingPipeline
from distillwatch.simulate.populations.ordinary import OrdinaryUsers
from distillwatch.simulate.populations.startup_team import StartupTeam
from distillwatch.simulate.populations.support_bot import SupportBot
from distillwatch.simulate.populations.tool_product import ToolProduct

POPULATIONS: dict[str, type[Population]] = {
    cls.NAME: cls
    for cls in (
        OrdinaryUsers, ContentAgency, SupportBot, ToolProduct, EvaluationVendor,
        LabellingPipeline, BilingualTeam, CodingAgentDevelopers, Jailbreakers, StartupTeam,
    )
}


def get_population(name: str) -> type[Population]:
    """The population class registered as ``name``.

    Raises:
        DistillwatchConfigError: If no population has that id.
    """
    return lookup(POPULATIONS, name, "population")
