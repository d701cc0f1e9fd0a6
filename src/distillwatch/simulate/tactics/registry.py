"""Every tactic, by its stable id."""

from __future__ import annotations

from distillwatch.plugins import lookup
from distillwatch.simulate.tactics.base import Tactic
from distillwatch.simulate.tactics.camouflage import Camouflage
from distillwatch.simulate.tactics.cot_elicitation import CotElicitation
from distillwatch.simulate.tactics.coverage_partition import CoveragePartition
from distillwatch.simulate.tactics.grading_elicitation import GradingElicitation
from distillwatch.simulate.tactics.harvest_params import HarvestParams
from distillwatch.simulate.tactics.hydra_cluster import HydraCluster
from distillwatch.simulate.tactics.low_and_slow import LowAndSlow
from distillwatch.simulate.tactics.model_pivot import ModelPivot
from distillwatch.simulate.tactics.multilingual import Multilingual
from distillwatch.simulate.tactics.payment_sharing import PaymentSharing
from distillwatch.simulate.tactics.proxy_rotation import ProxyRotation
from distillwatch.simulate.tactics.shared_hosting import SharedHostingFarm
from distillwatch.simulate.tactics.synchronized_schedule import SynchronizedSchedule
from distillwatch.simulate.tactics.template_sweep import TemplateSweep
from distillwatch.simulate.tactics.tool_trace_elicitation import ToolTraceElicitation
from distillwatch.simulate.tactics.vpn_exits import VpnExitRotation

TACTICS: dict[str, type[Tactic]] = {
    cls.NAME: cls
    for cls in (
        HydraCluster, ProxyRotation, SharedHostingFarm, VpnExitRotation, PaymentSharing,
        TemplateSweep, CotElicitation, ToolTraceElicitation, GradingElicitation, HarvestParams,
        CoveragePartition, LowAndSlow, SynchronizedSchedule, Camouflage, ModelPivot,
        Multilingual,
    )
}


def get_tactic(name: str) -> type[Tactic]:
    """The tactic class registered as ``name``.

    Raises:
        DistillwatchConfigError: If no tactic has that id.
    """
    return lookup(TACTICS, name, "tactic")
