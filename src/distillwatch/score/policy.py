"""Decision policies: an ordered list of rules, the first that matches decides.

A policy is a YAML file a user can edit::

    default: allow
    rules:
      - name: campaign_member
        when: {in_campaign: true, score_at_least: 0.85}
        decision: block

Conditions (all given ones must hold): ``score_at_least``, ``score_below``, ``in_campaign``,
``campaign_confidence_at_least``, ``signup_channel_in`` (list), ``verified``,
``exchanges_at_least``. Unknown keys, conditions or decisions are errors naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.report.contract import DECISIONS

CONDITIONS = {"score_at_least": float, "score_below": float, "in_campaign": bool,
              "campaign_confidence_at_least": float, "signup_channel_in": list,
              "verified": bool, "exchanges_at_least": int}


@dataclass(frozen=True)
class AccountFacts:
    """What a rule can look at for one account."""

    score: float
    in_campaign: bool
    campaign_confidence: float
    signup_channel: str | None
    verified: bool | None
    exchanges: int


@dataclass(frozen=True)
class Rule:
    name: str
    when: dict[str, Any]
    decision: str

    def matches(self, facts: AccountFacts) -> bool:
        checks = {
            "score_at_least": lambda v: facts.score >= v,
            "score_below": lambda v: facts.score < v,
            "in_campaign": lambda v: facts.in_campaign == v,
            "campaign_confidence_at_least": lambda v: facts.campaign_confidence >= v,
            "signup_channel_in": lambda v: facts.signup_channel in v,
            "verified": lambda v: bool(facts.verified) == v,
            "exchanges_at_least": lambda v: facts.exchanges >= v,
        }
        return all(checks[key](value) for key, value in self.when.items())


@dataclass(frozen=True)
class Policy:
    """An ordered rule list and the decision when none matches.

    Example:
        >>> policy = Policy.builtin()
        >>> policy.decide(AccountFacts(0.0, False, 0.0, None, None, 3))[0]
        'allow'
    """

    rules: tuple[Rule, ...]
    fallback: str = "allow"
    source: str = "built-in default"

    @classmethod
    def builtin(cls) -> Policy:
        """The policy shipped in ``distillwatch/conf/policy.yaml``."""
        text = resources.files("distillwatch").joinpath("conf/policy.yaml").read_text("utf-8")
        return cls.from_dict(yaml.safe_load(text), "built-in default")

    @classmethod
    def from_path(cls, path: Path) -> Policy:
        """A policy file.

        Raises:
            DistillwatchConfigError: If the file is missing, does not parse or is invalid.
        """
        if not path.is_file():
            raise DistillwatchConfigError(f"Path {path} does not point to a valid file.")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise DistillwatchConfigError(f"Policy does not parse: {error}", str(path)) \
                from error
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "policy") -> Policy:
        """Validate a policy given as a dict.

        Raises:
            DistillwatchConfigError: Naming the rule and the key that is wrong.
        """
        if not isinstance(data, dict) or set(data) - {"default", "rules"}:
            raise DistillwatchConfigError(
                "A policy is a mapping with keys 'rules' and optionally 'default'", source)
        default = data.get("default", "allow")
        _check_decision(default, "default", source)
        rules = []
        for number, raw in enumerate(data.get("rules") or [], start=1):
            where = f"rule {number}"
            if not isinstance(raw, dict) or set(raw) - {"name", "when", "decision"}:
                raise DistillwatchConfigError(
                    f"{where}: a rule has keys name, when, decision", source)
            _check_decision(raw.get("decision"), where, source)
            when = raw.get("when") or {}
            if not isinstance(when, dict):
                raise DistillwatchConfigError(f"{where}: 'when' must be a mapping", source)
            for key, value in when.items():
                if key not in CONDITIONS:
                    raise DistillwatchConfigError(
                        f"{where}: unknown condition '{key}'; known: "
                        f"{', '.join(sorted(CONDITIONS))}", source)
                kind = CONDITIONS[key]
                ok = (isinstance(value, int | float) and not isinstance(value, bool)
                      if kind in (float, int) else isinstance(value, kind))
                if not ok:
                    raise DistillwatchConfigError(
                        f"{where}: condition '{key}' takes a {kind.__name__}, got {value!r}",
                        source)
            rules.append(Rule(str(raw.get("name") or where), dict(when), raw["decision"]))
        return cls(tuple(rules), default, source)

    def decide(self, facts: AccountFacts) -> tuple[str, str]:
        """(decision, name of the rule that made it, or 'default')."""
        for rule in self.rules:
            if rule.matches(facts):
                return rule.decision, rule.name
        return self.fallback, "default"


def _check_decision(value: Any, where: str, source: str) -> None:
    if value not in DECISIONS:
        raise DistillwatchConfigError(
            f"{where}: decision must be one of {', '.join(DECISIONS)}, got {value!r}", source)
