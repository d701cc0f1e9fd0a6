"""Few-shot exemplars written into lm-eval task configurations (``fewshot_config.samples``).

GSM8K-CoT, BBH ``cot_fewshot``, MMLU ``flan_cot_fewshot``, KMMLU CoT and others list their
exemplars inline: a question (``question`` or ``input``) and usually a worked answer
(``target`` or ``answer``). Context fields and lettered options are folded into the question so
that it stands alone.
"""

from __future__ import annotations

from typing import Any

from distillwatch.simulate.text.records import FewShotQuestion
from distillwatch.simulate.text.taskyaml import TaskConfigs

_CONTEXT_KEYS = ("context",)
_OPTION_KEYS = ("A", "B", "C", "D", "E")


def _text(value: Any) -> str | None:
    """A sample field as text: strings stripped, numbers and lists of scalars rendered."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
        return "\n".join(str(v) for v in value)
    return None


def sample_question(sample: dict[str, Any]) -> FewShotQuestion | None:
    """One exemplar as a question and answer, or None if it has no question text.

    Args:
        sample: An entry of ``fewshot_config.samples``.

    Returns:
        A :class:`FewShotQuestion` with an empty ``source`` (the caller fills it in).
    """
    question = _text(sample.get("question"))
    parts: list[str] = [t for t in (_text(sample.get(k)) for k in _CONTEXT_KEYS) if t]
    if question is not None:
        extra_input = _text(sample.get("input"))  # babilong: the story, then the question
        if extra_input:
            parts.append(extra_input)
    else:
        question = _text(sample.get("input"))
        if question is None:
            return None
    parts.append(question)
    options = [(k, _text(sample.get(k))) for k in _OPTION_KEYS if _text(sample.get(k))]
    if options:
        parts.append("\n".join(f"{key}. {text}" for key, text in options))
    answer = _text(sample.get("target"))
    if answer is None:
        answer = _text(sample.get("answer"))
    return FewShotQuestion("", "\n".join(parts), answer)


def extract_fewshot(configs: TaskConfigs) -> tuple[FewShotQuestion, ...]:
    """Deduplicated few-shot exemplars, in file and then exemplar order.

    An exemplar whose question text already appeared in an earlier file is dropped.

    Args:
        configs: Parsed lm-eval task configurations (sorted by path).

    Returns:
        The exemplars, each with the YAML path it comes from.
    """
    seen: set[str] = set()
    questions = []
    for path, config in configs.configs:
        fewshot = config.get("fewshot_config")
        samples = fewshot.get("samples") if isinstance(fewshot, dict) else None
        if not isinstance(samples, list):
            continue
        for sample in samples:
            found = sample_question(sample) if isinstance(sample, dict) else None
            if found is None or found.question in seen:
                continue
            seen.add(found.question)
            questions.append(FewShotQuestion(path, found.question, found.answer))
    return tuple(questions)
