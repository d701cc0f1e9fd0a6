"""Replaying a real multi-turn conversation as timed API exchanges."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from distillwatch.simulate.accounts import Account
from distillwatch.simulate.context import WorldContext
from distillwatch.simulate.events import EventSink
from distillwatch.simulate.exchange import build_exchange
from distillwatch.simulate.text import Session

MAX_TURNS = 12
MAX_HISTORY_CHARS = 24_000


@dataclass(frozen=True)
class ChatParams:
    """Request parameters one person or app uses on every turn."""

    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool | None = None
    operation: str = "chat"
    tools: tuple[dict, ...] | list[dict] | None = None
    reasoning_budget: int | None = None


def think_time(rng: random.Random, reply_chars: int, next_prompt_chars: int) -> float:
    """Seconds between two turns of a person: reading, thinking and typing."""
    reading = reply_chars / rng.uniform(25, 60)
    typing = next_prompt_chars / rng.uniform(3, 8)
    return 8 + min(reading, 400) + min(typing, 300) + rng.lognormvariate(2.5, 1.0)


def _content(text: str, operation: str) -> str | list[dict]:
    # Anthropic Messages clients send content as a list of typed parts.
    return [{"type": "text", "text": text}] if operation == "messages" else text


def plan_session(
    world: WorldContext,
    sink: EventSink,
    rng: random.Random,
    account: Account,
    session: Session,
    start: float,
    client_for: Callable[[], dict],
    model: str,
    params: ChatParams,
    prompt_wrapper: Callable[[str], str] | None = None,
    tag: str | None = None,
) -> float:
    """Schedule every user turn of ``session`` from ``start``; returns when it ends.

    Each exchange carries the real history so far and the real next reply.
    """
    turns = session.turns
    ts = start
    history: list[tuple[str, str]] = []
    key = rng.choice(account.api_keys)
    user_turns = 0
    for i, turn in enumerate(turns):
        if turn.role != "user":
            continue
        user_turns += 1
        if user_turns > MAX_TURNS:
            break
        reply = turns[i + 1].text if i + 1 < len(turns) else None
        prompt = prompt_wrapper(turn.text) if prompt_wrapper and not history else turn.text
        messages = [{"role": role, "content": _content(text, params.operation)}
                    for role, text in _bounded(history)]
        messages.append({"role": "user", "content": _content(prompt, params.operation)})
        client = client_for()

        def render(messages=messages, reply=reply, ts=ts, client=client) -> dict:
            return build_exchange(
                ts=ts, account_id=account.account_id, api_key_id=key, model=model,
                client=client, messages=messages, system=params.system,
                operation=params.operation, max_tokens=params.max_tokens,
                temperature=params.temperature, stream=params.stream,
                tools=list(params.tools) if params.tools else None,
                reasoning_budget=params.reasoning_budget,
                reply=reply or world.reply(rng, 600),
                include_reply=world.include_replies,
            )

        sink.add(ts, account, render, tag)
        history.append(("user", prompt))
        if reply is not None:
            history.append(("assistant", reply))
        next_prompt = next((t.text for t in turns[i + 1:] if t.role == "user"), "")
        ts += think_time(rng, len(reply or ""), len(next_prompt))
    return ts


def _bounded(history: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Clients trim old turns once the history grows long."""
    total, kept = 0, []
    for role, text in reversed(history):
        total += len(text)
        if total > MAX_HISTORY_CHARS and kept:
            break
        kept.append((role, text))
    kept.reverse()
    if kept and kept[0][0] == "assistant":
        kept = kept[1:]
    return kept
