"""The derived corpus as JSON: writing it with orjson and turning it back into records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from distillwatch.simulate.text.records import (
    BenchQuestion,
    CodingTask,
    FewShotQuestion,
    PromptWrapper,
    Session,
    SupportDomain,
    SupportTask,
    ToolTask,
    Turn,
    WebIntent,
)

if TYPE_CHECKING:
    from distillwatch.simulate.text.corpus import Corpus


def encode(corpus: Corpus) -> bytes:
    """The corpus as JSON.

    Args:
        corpus: The corpus (orjson serialises its dataclasses and tuples natively).

    Returns:
        UTF-8 JSON bytes.
    """
    return orjson.dumps(corpus)


def decode_fields(data: bytes) -> dict[str, Any]:
    """The keyword arguments of :class:`~distillwatch.simulate.text.corpus.Corpus`.

    Args:
        data: JSON written by :func:`encode`.

    Returns:
        Field name -> value, every record rebuilt as its frozen dataclass.

    Raises:
        orjson.JSONDecodeError, KeyError, TypeError: If ``data`` is not an encoded corpus.
    """
    raw = orjson.loads(data)
    return {
        "sharegpt": tuple(
            Session(s["session_id"], tuple(Turn(t["role"], t["text"]) for t in s["turns"]),
                    s["language"])
            for s in raw["sharegpt"]
        ),
        "humaneval": tuple(CodingTask(r["task_id"], r["prompt"], r["entry_point"])
                           for r in raw["humaneval"]),
        "mtbench": tuple(BenchQuestion(r["question_id"], r["category"], tuple(r["turns"]))
                         for r in raw["mtbench"]),
        "bfcl": tuple(ToolTask(r["task_id"], r["category"], tuple(r["user_turns"]),
                               tuple(r["functions"])) for r in raw["bfcl"]),
        "tau2": {
            name: SupportDomain(
                d["name"], d["policy"], tuple(d["tools"]),
                tuple(SupportTask(t["task_id"], t["reason_for_call"], t["known_info"],
                                  t["task_instructions"]) for t in d["tasks"]),
            )
            for name, d in raw["tau2"].items()
        },
        "webarena": tuple(WebIntent(r["task_id"], r["intent"], r["intent_template"],
                                    int(r["intent_template_id"]), tuple(r["sites"]))
                          for r in raw["webarena"]),
        "wrappers": tuple(PromptWrapper(r["source"], r["template"], r["language"], r["kind"])
                          for r in raw["wrappers"]),
        "fewshot": tuple(FewShotQuestion(r["source"], r["question"], r["answer"])
                         for r in raw["fewshot"]),
        "jailbreaks": tuple(raw["jailbreaks"]),
        "sources": dict(raw["sources"]),
    }
