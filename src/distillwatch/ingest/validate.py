"""Check one Exchange record (``shared/schema/exchange.schema.json``) and say what is wrong.

``check_exchange`` returns the first problem as a (field, reason) pair, or None. Unknown extra
fields are kept, never rejected. Very long message text is accepted and capped, so one pasted
book does not stall the scan; the record is marked ``truncated``.
"""

from __future__ import annotations

from datetime import UTC, datetime

OPERATIONS = {"chat", "messages", "completions", "responses", "embeddings"}
ROLES = {"system", "developer", "user", "assistant", "tool"}
MAX_MESSAGE_CHARS = 256_000
_KEEP_EDGE = MAX_MESSAGE_CHARS // 2

_OPTIONAL_INT = ("max_tokens", "n", "top_logprobs")
_OPTIONAL_NUMBER = ("temperature", "top_p")
_OPTIONAL_BOOL = ("logprobs", "stream")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_timestamp(value: object) -> datetime | str:
    """The timestamp as an aware datetime, or the reason it is not one."""
    if not isinstance(value, str):
        return "timestamp must be an RFC 3339 string"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return f"timestamp {value[:40]!r} is not RFC 3339"
    if moment.tzinfo is None:
        return f"timestamp {value[:40]!r} has no UTC offset (add Z or +00:00)"
    return moment


def canonical_timestamp(moment: datetime) -> str:
    """``2026-05-02T10:00:00.123456Z``: the instant in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_exchange(record: object) -> tuple[str, str] | None:
    """The first problem of ``record`` as (field, reason), or None if it is a valid Exchange."""
    if not isinstance(record, dict):
        return "$", "record is not a JSON object"
    for field in ("exchange_id", "account_id", "model"):
        value = record.get(field)
        if value is None:
            return field, f"missing required field '{field}'"
        if not isinstance(value, str) or not value:
            return field, f"'{field}' must be a non-empty string"
    moment = parse_timestamp(record.get("timestamp"))
    if isinstance(moment, str):
        if "timestamp" not in record:
            return "timestamp", "missing required field 'timestamp'"
        return "timestamp", moment
    operation = record.get("operation")
    if operation is not None and operation not in OPERATIONS:
        return "operation", f"unknown operation {operation!r}"
    client = record.get("client")
    if client is not None:
        if not isinstance(client, dict):
            return "client", "'client' must be an object"
        if client.get("asn") is not None and not _is_int(client["asn"]):
            return "client.asn", "'client.asn' must be an integer"
    request = record.get("request")
    if not isinstance(request, dict):
        return "request", ("missing required field 'request'" if request is None
                           else "'request' must be an object")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        return "request.messages", "'request.messages' must be a non-empty list"
    for index, message in enumerate(messages):
        where = f"request.messages[{index}]"
        if not isinstance(message, dict):
            return where, "a message must be an object"
        if message.get("role") not in ROLES:
            return f"{where}.role", f"unknown role {message.get('role')!r}"
        content = message.get("content")
        if not isinstance(content, str | list):
            return f"{where}.content", "content must be a string or a list of parts"
    for field in _OPTIONAL_INT:
        if request.get(field) is not None and not _is_int(request[field]):
            return f"request.{field}", f"'request.{field}' must be an integer"
    for field in _OPTIONAL_NUMBER:
        value = request.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"request.{field}", f"'request.{field}' must be a number"
    for field in _OPTIONAL_BOOL:
        if request.get(field) is not None and not isinstance(request[field], bool):
            return f"request.{field}", f"'request.{field}' must be true or false"
    if request.get("tools") is not None and not isinstance(request["tools"], list):
        return "request.tools", "'request.tools' must be a list"
    return None


def cap_text(record: dict) -> bool:
    """Cap very long message text in place (keeping both ends); True if anything was cut."""
    cut = False
    for message in record["request"]["messages"]:
        content = message.get("content")
        if isinstance(content, str) and len(content) > MAX_MESSAGE_CHARS:
            message["content"] = f"{content[:_KEEP_EDGE]}\n[…]\n{content[-_KEEP_EDGE:]}"
            cut = True
    return cut
