"""World presets: YAML files naming the window, the populations and the campaigns.

The shipped presets live in ``distillwatch/conf/presets/``; ``--preset`` also takes a path to a
file of the same shape. Unknown keys are errors, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.plugins import check_options
from distillwatch.simulate.campaign import CampaignSpec
from distillwatch.simulate.populations.registry import get_population

SHIPPED = ("ci", "holdout", "standard", "stress")
_KEYS = {"name", "days", "start", "release_day", "include_replies", "format",
         "populations", "campaigns"}


@dataclass(frozen=True)
class Preset:
    """A validated world description."""

    name: str
    days: int
    start: str
    release_day: int
    include_replies: bool
    format: str
    populations: dict[str, dict[str, Any]]
    campaigns: tuple[CampaignSpec, ...]


def load_preset(name_or_path: str) -> Preset:
    """Load a shipped preset by name, or a preset file by path.

    Raises:
        DistillwatchConfigError: If it does not exist or is invalid (names the key and file).
    """
    if name_or_path in SHIPPED:
        source = f"conf/presets/{name_or_path}.yaml"
        text = (resources.files("distillwatch") / "conf" / "presets" /
                f"{name_or_path}.yaml").read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise DistillwatchConfigError(
                f"Preset '{name_or_path}' is neither a shipped preset "
                f"({', '.join(SHIPPED)}) nor a file")
        source, text = str(path), path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DistillwatchConfigError(f"Preset is not valid YAML: {error}", source) from error
    if not isinstance(data, dict):
        raise DistillwatchConfigError("A preset must be a mapping", source)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise DistillwatchConfigError(
            f"Unknown preset key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}",
            source)
    populations = data.get("populations") or {}
    for population, knobs in populations.items():
        check_options("population", population, knobs or {},
                      get_population(population).DEFAULTS, source=source)
    days = int(data.get("days", 7))
    release_day = int(data.get("release_day", max(1, int(days * 0.6))))
    if not 0 < release_day < days:
        raise DistillwatchConfigError(
            f"release_day must fall inside the window (1..{days - 1}), got {release_day}", source)
    campaigns = tuple(CampaignSpec.from_dict(c, source) for c in data.get("campaigns") or ())
    ids = [c.campaign_id for c in campaigns]
    if len(set(ids)) != len(ids):
        raise DistillwatchConfigError("Campaign ids must be unique", source)
    return Preset(
        name=str(data.get("name", name_or_path)), days=days,
        start=str(data.get("start", "2026-04-20")), release_day=release_day,
        include_replies=bool(data.get("include_replies", True)),
        format=str(data.get("format", "jsonl.gz")),
        populations={k: dict(v or {}) for k, v in populations.items()},
        campaigns=campaigns,
    )
