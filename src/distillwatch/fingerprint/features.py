"""Per-exchange features: the one pass over raw text; every later stage reads only these.

``exchange_features`` is a pure function from a batch of Exchange records to an Arrow table,
so each engine can map it over its data (in-process for DuckDB, ``mapInArrow`` on Spark).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson
import pyarrow as pa

from distillwatch.fingerprint.capability import capability
from distillwatch.fingerprint.elicitation import detect
from distillwatch.fingerprint.language import guess_language
from distillwatch.fingerprint.sketch import keyed_hash, sketch_many

FEATURES_SCHEMA = pa.schema([
    ("exchange_id", pa.string()),
    ("account_id", pa.string()),
    ("api_key_id", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()),
    ("client_ip", pa.string()),
    ("client_asn", pa.int64()),
    ("client_asn_kind", pa.string()),
    ("client_country", pa.string()),
    ("user_agent", pa.string()),
    ("prompt_chars", pa.int32()),
    ("messages", pa.int32()),
    ("user_turns", pa.int32()),
    ("system_hash", pa.int64()),
    ("tools_hash", pa.int64()),
    ("tool_count", pa.int32()),
    ("prompt_hash", pa.int64()),
    ("band_keys", pa.list_(pa.int64())),
    ("line_hashes", pa.list_(pa.int64())),
    ("head_key", pa.int64()),
    ("tail_key", pa.int64()),
    ("skeleton", pa.string()),
    ("cot", pa.bool_()),
    ("grading", pa.bool_()),
    ("tool_trace", pa.bool_()),
    ("capability", pa.string()),
    ("language", pa.string()),
    ("n", pa.int32()),
    ("max_tokens", pa.int32()),
    ("temperature", pa.float64()),
    ("logprobs", pa.bool_()),
    ("top_logprobs", pa.int32()),
    ("reasoning_budget", pa.int32()),
    ("output_tokens", pa.int64()),
])


def text_of(content: object) -> str:
    """Message content as text: strings as they are, text parts joined, other parts named."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(part.get("text") if part.get("type", "text") == "text"
                             else f"[{part.get('type', 'part')}]")
        return "\n".join(p for p in parts if p)
    return ""


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None


def exchange_features(records: Sequence[Mapping], key: bytes) -> pa.Table:
    """Features of a batch of Exchange records (``shared/schema/exchange.schema.json``).

    Args:
        records: Exchange dicts (validated by ingest).
        key: The provider's fingerprint key; every text hash is keyed with it.

    Returns:
        A table with ``FEATURES_SCHEMA``, one row per record, in order.
    """
    prompts, rows = [], []
    for record in records:
        request = record.get("request") or {}
        client = record.get("client") or {}
        messages = request.get("messages") or []
        user_texts = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
        prompt = user_texts[-1] if user_texts else ""
        system = request.get("system") or next(
            (text_of(m.get("content")) for m in messages if m.get("role") in ("system",
                                                                             "developer")), None)
        tools = request.get("tools") or []
        reasoning = request.get("reasoning") or {}
        elicited = detect(prompt, system, has_tools=bool(tools),
                          reasoning_requested=bool(reasoning.get("enabled")))
        prompts.append(prompt)
        rows.append({
            "exchange_id": record.get("exchange_id"),
            "account_id": record.get("account_id"),
            "api_key_id": record.get("api_key_id"),
            "ts": _timestamp(record.get("timestamp")),
            "model": record.get("model"),
            "client_ip": client.get("ip"),
            "client_asn": client.get("asn"),
            "client_asn_kind": client.get("asn_kind"),
            "client_country": client.get("country"),
            "user_agent": client.get("user_agent"),
            "prompt_chars": len(prompt),
            "messages": len(messages),
            "user_turns": len(user_texts),
            "system_hash": keyed_hash(key, b"system", system) if system else None,
            "tools_hash": (keyed_hash(key, b"tools", orjson.dumps(
                tools, option=orjson.OPT_SORT_KEYS)) if tools else None),
            "tool_count": len(tools),
            # Exact repeats of a whole request (an evaluation sweep run again, a bot's fixed
            # turn) against never-repeated sweeps (coverage partitioning); case and spacing
            # do not make a request new.
            "prompt_hash": keyed_hash(key, b"request", *(
                " ".join(part.lower().split()) for part in (
                    system or "", *(f"{m.get('role')}:{text_of(m.get('content'))}"
                                    for m in messages)))),
            "cot": elicited.cot,
            "grading": elicited.grading,
            "tool_trace": elicited.tool_trace,
            "capability": capability(prompt, has_tools=bool(tools), grading=elicited.grading),
            "language": guess_language(prompt),
            "n": request.get("n"),
            "max_tokens": request.get("max_tokens"),
            "temperature": request.get("temperature"),
            "logprobs": request.get("logprobs"),
            "top_logprobs": request.get("top_logprobs"),
            "reasoning_budget": reasoning.get("budget_tokens") if reasoning.get("enabled")
            else None,
            "output_tokens": (record.get("usage") or {}).get("output_tokens"),
        })
    for row, sketch in zip(rows, sketch_many(prompts, key), strict=True):
        row["band_keys"] = list(sketch.band_keys)
        row["line_hashes"] = list(sketch.line_hashes)
        row["head_key"] = sketch.head_key
        row["tail_key"] = sketch.tail_key
        row["skeleton"] = sketch.excerpt
    return pa.Table.from_pylist(rows, schema=FEATURES_SCHEMA)
