"""The instruction frames distillers wrap around tasks, and how they paraphrase them."""

from __future__ import annotations

import random

SCAFFOLDS: dict[str, tuple[str, ...]] = {
    "cot": (
        "Solve the following problem. Before giving the final answer, write out your complete "
        "chain of thought inside <reasoning> tags, covering every intermediate step.\n\n"
        "Problem:\n{task}\n\nFinal answer format: <answer>...</answer>",
        "{task}\n\nThink through this step by step. Show all of your reasoning explicitly, "
        "including any dead ends, before you state the answer.",
        "You are producing worked solutions. For the task below give (1) a detailed "
        "step-by-step reasoning trace, (2) a check of each step, (3) the final answer.\n\n"
        "Task: {task}",
        "Task: {task}\n\nExplain your reasoning in full detail, one numbered step at a time, "
        "then give the final answer on its own line.",
    ),
    "tool_trace": (
        "You are an autonomous agent. Solve the task with the available tools. Before every "
        "tool call, explain your reasoning in a <thought> block; after every tool result, "
        "reflect on it. Continue until the task is complete, then write out the full "
        "trajectory.\n\nTask: {task}",
        "Act as a tool-using assistant. Plan first (numbered plan), then call the functions "
        "needed, narrating each decision and why the arguments were chosen.\n\n{task}",
        "{task}\n\nUse the tools. For every step output: Thought, Action, Action Input, "
        "Observation. Do not skip steps.",
    ),
    "grading": (
        "You are an expert evaluator. Score the response below on a 1-10 scale for correctness, "
        "helpfulness and reasoning quality. Justify the score in detail, then output it as "
        "'Score: X'.\n\n[Question]\n{task}\n\n[Response]\n{response}",
        "Compare the answer to the question and grade it like a reward model would. Give a "
        "critique covering accuracy, completeness and style, then a final rating from 1 to 10."
        "\n\nQuestion: {task}\n\nAnswer: {response}",
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the "
        "response provided by an AI assistant to the user question displayed below. Begin your "
        "evaluation by providing a short explanation. After providing your explanation, rate "
        "the response on a scale of 1 to 10.\n\n[Question]\n{task}\n\n[The Start of "
        "Assistant's Answer]\n{response}\n[The End of Assistant's Answer]",
    ),
    "plain": (
        "{task}\n\nProvide a complete, production-quality answer and explain each design "
        "decision.",
        "Write a detailed, high-quality response to the following request. Be thorough.\n\n"
        "{task}",
        "{task}",
        "Answer the following as an expert would, with examples.\n\n{task}",
    ),
}

# Phrase -> interchangeable phrasings; paraphrasing swaps them so no two frames are identical.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "step by step": ("one step at a time", "in careful stages", "step-by-step", "methodically"),
    "Think through this": ("Work through this", "Reason about this", "Go through this"),
    "Show all of your reasoning": ("Make every reasoning step visible", "Write out all of your "
                                   "thinking", "Expose your full reasoning"),
    "in full detail": ("thoroughly", "exhaustively", "in depth"),
    "final answer": ("conclusion", "end result", "answer"),
    "Solve the following problem": ("Work out the problem below", "Answer this problem",
                                    "Tackle the following question"),
    "Before giving": ("Prior to giving", "Ahead of"),
    "You are an expert evaluator": ("You are a meticulous grader", "Act as a strict reviewer",
                                    "You are a senior judge"),
    "Justify the score in detail": ("Explain your score carefully", "Give detailed reasons"),
    "Be thorough": ("Be exhaustive", "Leave nothing out", "Be comprehensive"),
    "detailed": ("thorough", "comprehensive", "in-depth"),
    "explain each design decision": ("justify every choice", "walk through the design"),
    "Use the tools": ("Call the functions", "Make use of the available tools"),
    "You are an autonomous agent": ("You operate as an autonomous agent",
                                    "Behave as a self-directed agent"),
}


def paraphrase(frame: str, rng: random.Random, strength: float) -> str:
    """Swap each known phrase for an equivalent with probability ``strength``."""
    if strength <= 0:
        return frame
    for phrase, options in PARAPHRASES.items():
        if phrase in frame and rng.random() < strength:
            frame = frame.replace(phrase, rng.choice(options))
    return frame
