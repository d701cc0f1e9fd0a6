"""Answers the gateway writes itself, in each upstream API's own wire shape.

Two kinds:

- refusals (``throttle`` → 429 with ``Retry-After``, ``verify`` / ``block`` → 403) and the
  gateway's own failures (502 upstream unreachable, 503 state store unavailable under
  fail-closed, 504 upstream timeout), as OpenAI's ``{"error": {"message", "type", "param",
  "code"}}`` or Anthropic's ``{"type": "error", "error": {"type", "message"}}``, so clients'
  SDKs raise their usual errors;
- the ``withhold_reasoning`` countermeasure for monitored subjects, which blanks reasoning /
  thinking text in answers, JSON bodies and server-sent event streams alike, keeping every
  block and index in place so SDK accumulators still work.

Refusal bodies never say why (the reason stays in the admin API and the metrics): telling a
campaign which indicator matched tells it what to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

ANTHROPIC = "anthropic_messages"
APIS = ("openai_chat", "openai_responses", "openai_completions", ANTHROPIC)
WITHHELD_HEADER = (b"x-distillwatch-reasoning", b"withheld")

# status, OpenAI type/code, Anthropic type, message
_REFUSALS = {
    "throttle": (429, "requests", "rate_limit_exceeded", "rate_limit_error",
                 "Rate limit reached for this account. Retry after {retry_after} seconds."),
    "verify": (403, "invalid_request_error", "account_verification_required",
               "permission_error",
               "This account must complete verification before it can make more requests: "
               "{url}"),
    "block": (403, "invalid_request_error", "account_blocked", "permission_error",
              "This account is not permitted to use this API. Contact support if you believe "
              "this is a mistake."),
    "unreachable": (502, "server_error", "upstream_unreachable", "api_error",
                    "The gateway could not reach the upstream API."),
    "unavailable": (503, "server_error", "gateway_unavailable", "overloaded_error",
                    "The gateway cannot check this request right now; retry shortly."),
    "timeout": (504, "server_error", "upstream_timeout", "timeout_error",
                "The upstream API did not answer in time."),
}
REFUSAL_KINDS = tuple(_REFUSALS)


@dataclass(frozen=True)
class Canned:
    """A ready answer: status, raw ASGI headers and body (built once, sent many times)."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def error_body(api: str | None, kind: str, message: str) -> bytes:
    """The JSON error body of ``kind`` (a key of the refusal table) in ``api``'s shape."""
    _, openai_type, code, anthropic_type, _ = _REFUSALS[kind]
    if api == ANTHROPIC:
        return orjson.dumps({"type": "error", "error": {"type": anthropic_type,
                                                        "message": message}})
    return orjson.dumps({"error": {"message": message, "type": openai_type, "param": None,
                                   "code": code}})


def canned(api: str | None, kind: str, *, retry_after: int = 60,
           verification_url: str = "") -> Canned:
    """The whole answer for ``kind`` in ``api``'s shape.

    Args:
        api: ``openai_chat`` … ``anthropic_messages``; None (other ``/v1`` paths) is OpenAI's.
        kind: ``throttle``, ``verify``, ``block``, ``unreachable``, ``unavailable`` or
            ``timeout``.
        retry_after: Seconds, for ``throttle`` (``Retry-After`` header and message).
        verification_url: The verification step named by ``verify``.
    """
    status, *_, template = _REFUSALS[kind]
    message = template.format(retry_after=retry_after, url=verification_url)
    body = error_body(api, kind, message)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if kind in ("throttle", "unavailable"):
        headers.append((b"retry-after", str(retry_after if kind == "throttle" else 1).encode()))
    if kind in ("throttle", "verify", "block"):
        headers.append((b"x-distillwatch-decision", kind.encode()))
    return Canned(status, tuple(headers), body)


class CannedAnswers:
    """Every refusal for every API, built once from the policy.

    Args:
        retry_after: ``Retry-After`` of throttle decisions.
        verification_url: Named by ``verify``.
    """

    def __init__(self, retry_after: int, verification_url: str) -> None:
        self.retry_after = retry_after
        self._answers = {(api, kind): canned(api, kind, retry_after=retry_after,
                                             verification_url=verification_url)
                         for api in (*APIS, None) for kind in REFUSAL_KINDS}

    def get(self, api: str | None, kind: str, retry_after: int | None = None) -> Canned:
        """The answer; a throttle with its own ``retry_after`` (rate limits) is built once."""
        if retry_after is None or retry_after == self.retry_after:
            return self._answers[(api, kind)]
        key = (api, kind, retry_after)
        found = self._answers.get(key)
        if found is None:
            if len(self._answers) > 4096:  # retry values are few; bound it all the same
                self._answers = {k: v for k, v in self._answers.items() if len(k) == 2}
            found = self._answers[key] = canned(api, kind, retry_after=retry_after)
        return found


# --- withhold_reasoning ----------------------------------------------------------------------

_CHAT_REASONING = ("reasoning_content", "reasoning", "reasoning_details")


def _field(holder: Any, name: str) -> Any:
    return holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)


def blank_reasoning_item(item: Any) -> bool:
    """A Responses API output item (a dict, or an object such as LiteLLM's): blank its text
    in place if it is reasoning; True if it is."""
    if _field(item, "type") != "reasoning":
        return False
    for name in ("summary", "content"):
        for part in _field(item, name) or ():
            if isinstance(part, dict):
                if "text" in part:
                    part["text"] = ""
            elif getattr(part, "text", None):
                part.text = ""
    return True


def blank_thinking_block(block: Any) -> bool:
    """An Anthropic content block (a dict or an object): blank its text in place if it is
    thinking; True if there was thinking text."""
    if _field(block, "type") != "thinking" or not _field(block, "thinking"):
        return False
    if isinstance(block, dict):
        block["thinking"] = ""
    else:
        block.thinking = ""
    return True


def withhold_json(api: str, body: dict) -> bool:
    """Blank the reasoning / thinking text of a JSON answer in place; True if any was there."""
    changed = False
    if api == ANTHROPIC:
        for block in body.get("content") or ():
            if isinstance(block, dict):
                changed |= blank_thinking_block(block)
    elif api == "openai_responses":
        for item in body.get("output") or ():
            if isinstance(item, dict):
                changed |= blank_reasoning_item(item)
    else:
        for choice in body.get("choices") or ():
            for holder in (choice.get("message"), choice.get("delta"), choice):
                if isinstance(holder, dict):
                    for name in _CHAT_REASONING:
                        if holder.pop(name, None) is not None:
                            changed = True
    return changed


def withhold_event(api: str, data: dict) -> dict | None:
    """One SSE event's JSON with reasoning blanked; None to drop the event entirely."""
    if api == ANTHROPIC:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "thinking_delta":
                return None
        elif kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict):
                blank_thinking_block(block)
        return data
    if api == "openai_responses":
        kind = data.get("type") or ""
        if kind.startswith(("response.reasoning_text.", "response.reasoning_summary_text.")):
            if kind.endswith(".delta"):
                return None
            data["text"] = ""
        elif kind.startswith("response.reasoning_summary_part."):
            part = data.get("part")
            if isinstance(part, dict) and "text" in part:
                part["text"] = ""
        elif kind in ("response.output_item.added", "response.output_item.done"):
            if isinstance(data.get("item"), dict):
                blank_reasoning_item(data["item"])
        elif isinstance(data.get("response"), dict):
            withhold_json(api, data["response"])
        return data
    # OpenAI chat / completions chunks: drop the reasoning fields; a chunk left with nothing
    # to say (empty delta, no finish, no usage) is dropped.
    if not withhold_json(api, data):
        return data
    for choice in data.get("choices") or ():
        if choice.get("delta") or choice.get("finish_reason") is not None:
            return data
    return data if data.get("usage") else None


class SseWithholder:
    """Filters a server-sent event stream chunk by chunk, blanking reasoning (see module).

    Events are passed on as soon as their terminating blank line arrives; bytes of an event
    not yet complete are held back. Events that are not JSON (``[DONE]``, comments) pass
    unchanged.
    """

    def __init__(self, api: str) -> None:
        self.api = api
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that can be sent now for ``chunk``."""
        data = self._held + chunk
        data = data.replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self._held = data
            return b""
        self._held = data[end + 2:]
        out = []
        for event in data[:end].split(b"\n\n"):
            kept = self._event(event)
            if kept is not None:
                out.append(kept)
        return b"".join(block + b"\n\n" for block in out)

    def close(self) -> bytes:
        """Whatever is held back when the stream ends (an unterminated last event)."""
        held, self._held = self._held, b""
        if not held.strip():
            return held
        kept = self._event(held)
        return kept or b""

    def _event(self, event: bytes) -> bytes | None:
        lines = event.split(b"\n")
        data_at = [i for i, line in enumerate(lines) if line.startswith(b"data:")]
        if len(data_at) != 1:
            return event
        payload = lines[data_at[0]][5:].strip()
        if not payload.startswith(b"{"):
            return event
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return event
        if not isinstance(data, dict):
            return event
        kept = withhold_event(self.api, data)
        if kept is None:
            return None
        lines[data_at[0]] = b"data: " + orjson.dumps(kept)
        return b"\n".join(lines)
