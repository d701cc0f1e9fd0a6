"""Who sent a request: the account and the key id, never the key.

The account is read from a header set by the provider's own authentication layer in front of
the gateway (``X-Account-Id`` by default). Where there is none, the bearer token (OpenAI's
``Authorization: Bearer …`` or Anthropic's ``x-api-key``) is hashed with the fingerprint key
and looked up in a key map (key id → account). The key id, ``kid-`` and 24 hex digits of a
keyed BLAKE2b of the token, is what the Exchange log carries as ``api_key_id``; the token
itself is never logged or stored.

The account header must be set (or removed) by that layer on every request: a client that can
reach the gateway directly could otherwise name any account.

Key map files: a JSON object ``{"kid-…": "acct-1", …}`` (``.json``); JSONL lines
``{"api_key_id": "kid-…", "account_id": "acct-1"}``; or CSV with ``api_key_id,account_id``
columns. ``distillwatch serve --hash-keys`` prints the key ids of tokens read on stdin.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import orjson

from distillwatch.exceptions import DistillwatchInputError

DEFAULT_ACCOUNT_HEADER = "x-account-id"
_DIGEST_BYTES = 12


def key_id(key: bytes, token: str | bytes) -> str:
    """The keyed hash naming an API key (``kid-`` + 24 hex digits); one-way without ``key``.

    It is the keyed hash of the key's SHA-256 hex digest, the form in which LiteLLM keeps and
    hands over its keys (``hash_token``), so that ``serve`` and the LiteLLM guardrail name a
    key alike and share its decisions (:func:`key_id_of_digest`).
    """
    raw = token.encode() if isinstance(token, str) else token
    return key_id_of_digest(key, hashlib.sha256(raw).hexdigest())


def key_id_of_digest(key: bytes, digest: str) -> str:
    """The key id of a key known only by its SHA-256 hex digest (LiteLLM's ``token``)."""
    return "kid-" + hashlib.blake2b(digest.encode(), key=key[:64],
                                    digest_size=_DIGEST_BYTES).hexdigest()


def bearer_token(authorization: bytes | None, api_key: bytes | None) -> bytes | None:
    """The API key of a request: ``Authorization: Bearer X`` or ``x-api-key: X``."""
    if authorization:
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    return None


def load_key_map(path: Path) -> dict[str, str]:
    """Key id → account from a key map file (``.json`` object, ``.csv``, else JSONL).

    Raises:
        DistillwatchInputError: If the file is missing or a row lacks a key id or account,
            naming the file and line.
    """
    if not path.is_file():
        raise DistillwatchInputError(f"Key map file {path} does not exist")
    text = path.read_bytes()
    if path.suffix == ".csv":
        out = {}
        rows = csv.DictReader(text.decode("utf-8").splitlines())
        for number, row in enumerate(rows, start=2):
            if not row.get("api_key_id") or not row.get("account_id"):
                raise DistillwatchInputError("A key map row needs api_key_id and account_id",
                                             f"{path}:{number}")
            out[row["api_key_id"]] = row["account_id"]
        return out
    if path.suffix == ".json":
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise DistillwatchInputError(f"Key map is not JSON: {error}", str(path)) from None
        if not isinstance(document, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in document.items()):
            raise DistillwatchInputError("A JSON key map maps key ids to account ids (strings)",
                                         str(path))
        return document
    out = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            out[row["api_key_id"]] = row["account_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise DistillwatchInputError(
                'A key map line is {"api_key_id": "kid-…", "account_id": "…"}',
                f"{path}:{number}") from None
    return out


class Identity:
    """Account and key id of requests, from their raw (lower-case) ASGI headers.

    Args:
        key: The fingerprint key (the same as the scan's, so key ids match the batch logs).
        account_header: Header carrying the account (default ``x-account-id``).
        key_map: Key id → account, for requests without the header.

    Example:
        >>> who = Identity(b"k" * 32)
        >>> who.resolve({b"x-account-id": b"acct-1", b"authorization": b"Bearer sk-1"})[0]
        'acct-1'
    """

    def __init__(self, key: bytes, account_header: str = DEFAULT_ACCOUNT_HEADER,
                 key_map: dict[str, str] | None = None) -> None:
        self.key = key
        self.account_header = account_header.lower().encode("latin-1")
        self.key_map = key_map or {}
        self._ids: dict[bytes, str] = {}

    def key_id(self, token: bytes) -> str:
        """The key id of a token (memoised: tokens repeat)."""
        found = self._ids.get(token)
        if found is None:
            if len(self._ids) >= 65_536:
                self._ids.clear()
            found = self._ids[token] = key_id(self.key, token)
        return found

    def resolve(self, headers: dict[bytes, bytes]) -> tuple[str | None, str | None]:
        """(account, key id) of a request; either may be None."""
        token = bearer_token(headers.get(b"authorization"), headers.get(b"x-api-key"))
        kid = self.key_id(token) if token else None
        raw = headers.get(self.account_header)
        account = raw.decode("utf-8", "replace").strip() if raw else None
        if not account and kid is not None:
            account = self.key_map.get(kid)
        return account or None, kid
