"""What an account asks the model to reveal: reasoning traces, grades, tool-use traces."""

from __future__ import annotations

from distillwatch.signals.base import RateSignal


class CotElicitation(RateSignal):
    """Share of exchanges asking for a written-out chain of thought or a reasoning budget."""

    NAME = "cot_elicitation"
    FAMILY = "intent"
    DESCRIPTION = "requests for written-out reasoning traces"
    RATE_COLUMNS = ("cot_rate", "reasoning_budget_rate")
    EXPLAIN = "{value:.0%} of exchanges ask for a written-out reasoning trace"


class GradingElicitation(RateSignal):
    """Share of exchanges asking the model to grade or rate answers like a reward model."""

    NAME = "grading_elicitation"
    FAMILY = "intent"
    DESCRIPTION = "reward-model style grading requests"
    RATE_COLUMNS = ("grading_rate",)
    EXPLAIN = "{value:.0%} of exchanges ask for reward-model style grades or ratings"


class ToolTraceElicitation(RateSignal):
    """Share of exchanges asking for step-by-step tool-use traces (Thought/Action/Observation)."""

    NAME = "tool_trace_elicitation"
    FAMILY = "intent"
    DESCRIPTION = "requests for full agentic tool-use traces"
    RATE_COLUMNS = ("tool_trace_rate",)
    EXPLAIN = "{value:.0%} of exchanges ask for a full tool-use trace"
