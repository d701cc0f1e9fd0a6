"""lm-eval task configurations: tolerant YAML loading straight out of the wheel.

lm-eval's YAML uses custom tags (``!function utils.doc_to_text``) and ``include:`` of shared
files, some of which have no ``.yaml`` extension (``cot_yaml``, ``afrimgsm_cot_yaml``). Every
file under ``lm_eval/tasks/`` whose name ends in ``yaml`` is read on its own, without
resolving includes: a wrapper or exemplar is attributed to the file that writes it. Unknown
tags load as None; a file that does not parse is skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from distillwatch.simulate.text.wheel import Wheel

logger = logging.getLogger(__name__)

TASKS_DIR = "lm_eval/tasks/"
# Only files that mention one of these keys can contribute; the others are not parsed.
_NEEDLES = (b"doc_to_text", b"samples")

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TolerantLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe YAML loader that loads any unknown tag (``!function ...``) as None."""


def _unknown_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> None:
    return None


TolerantLoader.add_multi_constructor("!", _unknown_tag)
TolerantLoader.add_multi_constructor("tag:", _unknown_tag)


@dataclass(frozen=True)
class TaskConfigs:
    """The parsed task configurations of one lm-eval wheel.

    Args:
        configs: ``(path inside the wheel, mapping)`` pairs, sorted by path.
        skipped: How many files could not be parsed.
    """

    configs: tuple[tuple[str, dict[str, Any]], ...]
    skipped: int


def load_task_configs(wheel: Wheel, needles: Sequence[bytes] = _NEEDLES) -> TaskConfigs:
    """Parse every task YAML of the lm-eval wheel that mentions one of ``needles``.

    Args:
        wheel: The opened ``lm-eval`` wheel.
        needles: Byte strings; files containing none of them are not parsed.

    Returns:
        The configurations that are YAML mappings, and the number of files skipped.
    """
    configs: list[tuple[str, dict[str, Any]]] = []
    skipped = 0
    for name in wheel.names(TASKS_DIR, "yaml"):
        raw = wheel.read(name)
        if not any(needle in raw for needle in needles):
            continue
        try:
            data = yaml.load(raw.decode("utf-8"), Loader=TolerantLoader)
        except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError) as error:
            logger.debug("skipped %s: %s", name, error)
            skipped += 1
            continue
        if isinstance(data, dict):
            configs.append((name, data))
    if skipped:
        logger.info("lm-eval: skipped %d task files that do not parse", skipped)
    return TaskConfigs(tuple(configs), skipped)
