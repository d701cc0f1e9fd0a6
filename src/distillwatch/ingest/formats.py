"""Provider log records -> Exchange records (``shared/schema/exchange.schema.json``).

Accepted: one JSON object per line holding the API call as sent and answered, with the
identity and network the gateway saw:

    {"timestamp": "2026-05-02T10:00:00Z",            # or epoch s / ms, or response "created"
     "account_id": "org-42",                          # or "organization" / "user_id" / key
     "api_key_id": "key-7", "client_ip": "198.51.100.7", "user_agent": "OpenAI/Python 1.99",
     "request": {...},                                # the request body
     "response": {...}}                               # the response body

LiteLLM's ``StandardLoggingPayload`` records are read too (:func:`litellm_line`). The body
decides the dialect: OpenAI Chat Completions (``messages``), OpenAI Responses
(``input`` / ``instructions``), Anthropic Messages (top-level ``system``, ``thinking`` or a
``content`` list in the response), OpenAI's legacy Completions (``prompt`` and no
``messages``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import orjson

from distillwatch.gateway.identity import key_id_of_digest


def is_provider_log(record: dict) -> bool:
    """True for a request/response log line rather than an Exchange record."""
    return "exchange_id" not in record and isinstance(record.get("request"), dict)


# LiteLLM call types -> the wire format they speak (other call types are not exchanges).
API_BY_CALL_TYPE = {
    "completion": "openai_chat", "acompletion": "openai_chat",
    "text_completion": "openai_completions", "atext_completion": "openai_completions",
    "responses": "openai_responses", "aresponses": "openai_responses",
    "anthropic_messages": "anthropic_messages",
}
# Who the account is in a LiteLLM log, tried in order (the LiteLLM adapter's default, then
# wider groupings): the key's user, team, organisation, end user.
LITELLM_ACCOUNT_FIELDS = ("user_api_key_user_id", "user_api_key_team_id",
                          "user_api_key_org_id", "user_api_key_end_user_id")


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_litellm_log(record: dict) -> bool:
    """True for a LiteLLM ``StandardLoggingPayload``: what its logging integrations (S3, GCS,
    a custom callback's ``kwargs["standard_logging_object"]``) write for each call."""
    return ("exchange_id" not in record and "call_type" in record
            and "model_parameters" in record and "startTime" in record)


def litellm_line(payload: dict, key: bytes | None = None) -> dict:
    """A LiteLLM ``StandardLoggingPayload`` as a provider log line (see the module's
    docstring): the request rebuilt from ``messages`` and ``model_parameters`` in the wire
    format of its call type; the account from the key's metadata
    (:data:`LITELLM_ACCOUNT_FIELDS`). The key id is the one ``serve`` and the LiteLLM adapter
    give the key (``kid-``, from LiteLLM's SHA-256 of it and the fingerprint ``key``), or
    LiteLLM's hash when no ``key`` is given."""
    meta = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    digest = meta.get("user_api_key_hash")
    if key is not None and isinstance(digest, str) and _SHA256_HEX.fullmatch(digest):
        digest = key_id_of_digest(key, digest)
    api = API_BY_CALL_TYPE.get(payload.get("call_type"), "openai_chat")
    body = dict(payload.get("model_parameters") or {})
    body["model"] = payload.get("model_group") or payload.get("model")
    messages = payload.get("messages")
    if api == "openai_completions":
        body["prompt"] = messages[-1].get("content") if (
            isinstance(messages, list) and messages and isinstance(messages[-1], dict)
        ) else messages
    elif api == "openai_responses":
        body["input"] = messages
    else:
        body["messages"] = ([{"role": "user", "content": messages}]
                            if isinstance(messages, str) else messages)
    response = payload.get("response")
    error = payload.get("error_information") or {}
    code = str(error.get("error_code") or "")
    return {
        "request_id": payload.get("id") or payload.get("litellm_call_id"),
        "timestamp": _epoch(payload.get("startTime")),
        "account_id": next((meta[f] for f in LITELLM_ACCOUNT_FIELDS if meta.get(f)), None)
        or payload.get("end_user"),
        "api_key_id": digest,
        "client_ip": payload.get("requester_ip_address") or meta.get("requester_ip_address"),
        "user_agent": payload.get("user_agent") or meta.get("user_agent"),
        "status": 200 if payload.get("status") == "success" else
        int(code) if code.isdigit() else 500,
        "request": body, "response": response if isinstance(response, dict) else {},
        "source_format": api,
    }


def dialect(record: dict) -> str:
    """``openai_responses``, ``anthropic_messages``, ``openai_completions`` or
    ``openai_chat``."""
    request, response = record["request"], record.get("response") or {}
    if "input" in request or "instructions" in request or response.get("object") == "response":
        return "openai_responses"
    if "prompt" in request and "messages" not in request:
        return "openai_completions"
    if ("thinking" in request or isinstance(request.get("system"), str | list)
            or response.get("type") == "message" or "stop_reason" in response):
        return "anthropic_messages"
    return "openai_chat"


def _epoch(value: object) -> str | None:
    """Epoch seconds (or milliseconds, from 10¹¹ on: after 5138 in seconds) as RFC 3339."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    seconds = value / 1000 if value >= 1e11 else value
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _when(record: dict) -> str | None:
    given = record.get("timestamp")
    if isinstance(given, str):
        return given
    response = record.get("response") or {}
    return _epoch(given) or _epoch(response.get("created") or response.get("created_at"))


def _base(record: dict, operation: str) -> dict:
    request, response = record["request"], record.get("response") or {}
    return {
        "exchange_id": record.get("request_id") or response.get("id") or record.get("id"),
        "timestamp": _when(record),
        # Without an account, the key is the account (as the gateway's exchange log does).
        "account_id": record.get("account_id") or record.get("organization")
        or record.get("user_id") or record.get("api_key_id"),
        "api_key_id": record.get("api_key_id"),
        "model": request.get("model") or response.get("model"),
        "operation": operation,
        "client": {"ip": record.get("client_ip"), "user_agent": record.get("user_agent")},
        "end_user": request.get("safety_identifier") or request.get("user"),
    }


def _chat_message(message: object) -> object:
    """An OpenAI chat message as an Exchange message: an assistant turn that only calls
    tools has ``content: null``, and its tool calls (or the legacy ``function_call``) become
    its (non-text) parts; the legacy ``function`` role answering one is a ``tool`` message."""
    if not isinstance(message, dict):
        return message
    if message.get("role") == "function":
        message = {**message, "role": "tool"}
    if "content" not in message or message["content"] is not None:
        return message
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        calls = [message["function_call"]] if "function_call" in message else []
    return {**message, "content": [call for call in calls if isinstance(call, dict)] or ""}


def _openai_chat(record: dict) -> dict:
    request, response = record["request"], record.get("response") or {}
    messages = [_chat_message(m) for m in request.get("messages") or []]
    system = next((m.get("content") for m in messages
                   if m.get("role") in ("system", "developer")
                   and isinstance(m.get("content"), str)), None)
    choice = (response.get("choices") or [{}])[0]
    usage = response.get("usage") or {}
    return {
        **_base(record, "chat"),
        "request": {
            "system": system, "messages": messages, "tools": request.get("tools"),
            "max_tokens": request.get("max_completion_tokens") or request.get("max_tokens"),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "n": request.get("n"), "logprobs": request.get("logprobs"),
            "top_logprobs": request.get("top_logprobs"), "stream": request.get("stream"),
            "reasoning": ({"enabled": True, "budget_tokens": None}
                          if request.get("reasoning_effort") else None),
        },
        "response": {"text": (choice.get("message") or {}).get("content"),
                     "finish_reason": choice.get("finish_reason"),
                     "status": record.get("status"), "error_type": None},
        "usage": {"input_tokens": usage.get("prompt_tokens"),
                  "output_tokens": usage.get("completion_tokens"),
                  "reasoning_tokens": (usage.get("completion_tokens_details") or {})
                  .get("reasoning_tokens")},
    }


def _openai_completions(record: dict) -> dict:
    """The legacy Completions API: a prompt (or a list of prompts, each a user message; token
    ids are no text) and choices with ``text``."""
    request, response = record["request"], record.get("response") or {}
    prompt = request.get("prompt")
    prompts = prompt if isinstance(prompt, list) and prompt else [prompt]
    if all(isinstance(p, int) for p in prompts):     # one prompt as token ids
        prompts = [""]
    messages = [{"role": "user", "content": p if isinstance(p, str) else ""} for p in prompts]
    choices = [{"message": {"content": c.get("text")}, "finish_reason": c.get("finish_reason")}
               for c in response.get("choices") or () if isinstance(c, dict)]
    exchange = _openai_chat({**record, "request": {**request, "messages": messages},
                             "response": {**response, "choices": choices}})
    return {**exchange, "operation": "completions"}


def _responses_item(item: object) -> dict | None:
    """A Responses API input item as a chat message: messages as they are, an agent's tool
    calls (``function_call``, ``web_search_call``, ...) as assistant tool calls and their
    outputs (``function_call_output``, ...) as ``tool`` messages, as Chat Completions sends
    them; other items (reasoning, references) are not messages."""
    if not isinstance(item, dict):
        return None
    if "role" in item:
        return {"role": item["role"], "content": item.get("content", "")}
    kind = item.get("type")
    if not isinstance(kind, str):
        return None
    if kind.endswith("_call_output"):
        output = item.get("output")
        return {"role": "tool", "tool_call_id": item.get("call_id"),
                "content": output if isinstance(output, str | list) else
                [output] if isinstance(output, dict) else ""}
    if kind.endswith("_call"):
        arguments = item.get("arguments", item.get("input"))
        call = {"id": item.get("call_id") or item.get("id"), "type": "function",
                "function": {"name": item.get("name") or kind,
                             "arguments": arguments if isinstance(arguments, str) else None}}
        return _chat_message({"role": "assistant", "content": None, "tool_calls": [call]})
    return None


def _openai_responses(record: dict) -> dict:
    request, response = record["request"], record.get("response") or {}
    given = request.get("input")
    if isinstance(given, str):
        messages = [{"role": "user", "content": given}]
    else:
        messages = [m for m in map(_responses_item, given or []) if m is not None]
    texts = [part.get("text") for item in response.get("output") or []
             if isinstance(item, dict) and item.get("type") == "message"
             for part in item.get("content") or [] if part.get("type") == "output_text"]
    usage = response.get("usage") or {}
    reasoning = request.get("reasoning") or {}
    return {
        **_base(record, "responses"),
        "request": {
            "system": request.get("instructions"), "messages": messages,
            "tools": request.get("tools"), "max_tokens": request.get("max_output_tokens"),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "top_logprobs": request.get("top_logprobs"), "stream": request.get("stream"),
            "reasoning": {"enabled": True, "budget_tokens": None} if reasoning else None,
        },
        "response": {"text": "\n".join(t for t in texts if t) or None,
                     "finish_reason": response.get("status"), "status": record.get("status"),
                     "error_type": None},
        "usage": {"input_tokens": usage.get("input_tokens"),
                  "output_tokens": usage.get("output_tokens"),
                  "reasoning_tokens": (usage.get("output_tokens_details") or {})
                  .get("reasoning_tokens")},
    }


def _anthropic_messages(record: dict) -> dict:
    request, response = record["request"], record.get("response") or {}
    system = request.get("system")
    if isinstance(system, list):
        system = "\n".join(part.get("text", "") for part in system if isinstance(part, dict))
    thinking = request.get("thinking") or {}
    texts = [part.get("text") for part in response.get("content") or []
             if isinstance(part, dict) and part.get("type") == "text"]
    usage = response.get("usage") or {}
    return {
        **_base(record, "messages"),
        "request": {
            "system": system, "messages": request.get("messages") or [],
            "tools": request.get("tools"), "max_tokens": request.get("max_tokens"),
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "stream": request.get("stream"),
            "reasoning": ({"enabled": True, "budget_tokens": thinking.get("budget_tokens")}
                          if thinking.get("type") == "enabled" else None),
        },
        "response": {"text": "\n".join(t for t in texts if t) or None,
                     "finish_reason": response.get("stop_reason"),
                     "status": record.get("status"), "error_type": None},
        "usage": {"input_tokens": usage.get("input_tokens"),
                  "output_tokens": usage.get("output_tokens"), "reasoning_tokens": None},
    }


_CONVERTERS = {"openai_chat": _openai_chat, "openai_responses": _openai_responses,
               "anthropic_messages": _anthropic_messages,
               "openai_completions": _openai_completions}


def _line_id(record: dict) -> str:
    """An id for a log line that carries none: a hash of the whole line, so the same line
    read twice is one exchange and the same request sent twice (another timestamp or
    answer) is two."""
    try:
        data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = repr(record).encode()
    return "dw-" + hashlib.blake2b(data, digest_size=16).hexdigest()


def to_exchange(record: dict) -> dict:
    """The Exchange record of a provider log line (validated afterwards like any other).

    The line's ``source_format``, when it names one, is its wire format; else the body
    tells.

    The exchange id is the line's ``request_id``, else the answer's ``id``, else its
    ``id``, else a hash of the line (:func:`_line_id`).
    """
    given = record.get("source_format")
    kind = given if given in _CONVERTERS else dialect(record)
    exchange = _CONVERTERS[kind](record)
    exchange["source_format"] = kind
    if exchange.get("exchange_id") is None:
        exchange["exchange_id"] = _line_id(record)
    return exchange
