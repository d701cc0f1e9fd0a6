"""The Exchange log: every proxied exchange, as the next scan reads it (JSONL.gz).

The request path hands over what it saw (:class:`Seen`: identity, raw request and response
bytes) and goes on; a writer thread does the rest, off the event loop: it parses the request
(unless the request path already did), decodes and reassembles the answer (a JSON body, or a
server-sent event stream rebuilt into the final message: OpenAI chat / completion chunks,
Anthropic ``message_start`` … ``message_delta``, the Responses API's ``response.completed``),
builds the Exchange with :func:`distillwatch.ingest.formats.to_exchange`, and appends it.

Handing over is an append to a ``collections.deque`` (no lock) and, only when the writer is
asleep, one wake-up; the writer then lingers a few milliseconds (``linger_s``) so that it
wakes once for a handful of exchanges, not once for each, and takes everything queued. All
the work (parsing, reassembly, the record, JSON, gzip, the write) is the writer's. It still
runs Python under the GIL (~50 µs an exchange; gzip and the write release it), one exchange
at a time, so the event loop never waits on it for longer than one exchange's share.

Crash safety: the exchanges the writer takes at one wake-up (a few milliseconds' worth; at
most ``MAX_MEMBER_BYTES`` of JSON) are compressed together into one complete gzip member and
appended with a single ``write``; gzip readers read a file of members as one stream. A process
killed at any moment leaves every file ending on a whole member, so ``distillwatch ingest``
reads every file without a reject; what is lost is the batch being written and the exchanges
still queued (at most about ``linger_s`` × the request rate, e.g. 5 at 1,000 exchanges/s,
while the writer keeps up; :meth:`ExchangeSink.drain` waits for the queue to empty). One
member per batch rather than per exchange: each ``zlib.compress`` call sets up and frees a
~260 KB deflate state, which cost more than compressing a typical exchange. Files rotate by
size and age; names carry the start time, host, process id and a sequence number, so replicas
can share one folder.

Records that are not valid Exchanges (a malformed client body, a request without a model) are
not mixed into the log: they go, with the reason, to ``.rejected/`` inside the log folder
(hidden, so ``ingest LOG_DIR`` reads only exchanges).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from distillwatch.ingest.formats import to_exchange
from distillwatch.ingest.validate import check_exchange
from distillwatch.workers import lower_priority

logger = logging.getLogger(__name__)

OPERATIONS = {"openai_chat": "chat", "openai_responses": "responses",
              "openai_completions": "completions", "anthropic_messages": "messages"}
MAX_REJECTED_BODY = 65_536
MAX_MEMBER_BYTES = 1 << 20  # JSON bytes compressed into one gzip member at most


@dataclass(slots=True)
class Seen:
    """One exchange as the request path saw it (raw; parsed later by the writer).

    Attributes:
        api: ``openai_chat``, ``openai_responses``, ``openai_completions`` or
            ``anthropic_messages``.
        ts: Epoch seconds when the request arrived.
        account_id / key_id / client_ip / user_agent: Identity and network.
        request_body: The body as sent by the client.
        request_json: The body parsed already (None: the writer parses it).
        status: HTTP status returned to the client.
        response_body: The answer's bytes as the upstream sent them (None: no answer).
        content_encoding: The answer's ``Content-Encoding``, if any.
        streamed: True for a server-sent event stream.
        error_type: Set when the gateway knows why there is no (complete) answer, e.g.
            ``client_disconnected``, ``upstream_unreachable``, or the refusing decision.
    """

    api: str
    ts: float
    account_id: str | None
    key_id: str | None
    client_ip: str | None
    user_agent: str | None
    request_body: bytes
    request_json: dict | None
    status: int
    response_body: bytes | None
    content_encoding: str | None = None
    streamed: bool = False
    error_type: str | None = None


# --- decoding and reassembly -----------------------------------------------------------------


def decode_body(body: bytes, encoding: str | None) -> bytes | None:
    """The body without its content encoding (gzip, deflate, zstd); None if undecodable.

    A truncated stream (a client that left mid-answer) gives what could be decoded.
    """
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding in ("gzip", "x-gzip", "deflate"):
            wbits = 47 if encoding != "deflate" else (15 if body[:1] == b"\x78" else -15)
            return zlib.decompressobj(wbits).decompress(body)
        if encoding == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    except (zlib.error, ValueError, ImportError):
        return None
    return None


def sse_events(body: bytes) -> Iterator[tuple[str | None, bytes]]:
    """(event name, data) of each server-sent event of ``body``; multi-line data joined."""
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        if data:
            yield name, b"\n".join(data)


def _json_events(body: bytes) -> Iterator[dict]:
    for _, data in sse_events(body):
        if data.startswith(b"{"):
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict):
                yield event


def _reassemble_chat(body: bytes, completions: bool) -> dict:
    texts: list[str] = []
    reasoning: list[str] = []
    out: dict = {}
    finish = None
    for chunk in _json_events(body):
        for field in ("id", "model", "created", "system_fingerprint"):
            if field in chunk and field not in out:
                out[field] = chunk[field]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if completions:
                texts.append(choice.get("text") or "")
            else:
                delta = choice.get("delta") or {}
                texts.append(delta.get("content") or "")
                reasoning.append(delta.get("reasoning_content") or delta.get("reasoning") or "")
            finish = choice.get("finish_reason") or finish
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
    text = "".join(texts)
    if completions:
        out.update(object="text_completion",
                   choices=[{"index": 0, "text": text, "finish_reason": finish}])
    else:
        message: dict = {"role": "assistant", "content": text or None}
        if any(reasoning):
            message["reasoning_content"] = "".join(reasoning)
        out.update(object="chat.completion",
                   choices=[{"index": 0, "message": message, "finish_reason": finish}])
    return out


def _reassemble_anthropic(body: bytes) -> dict:
    message: dict = {"type": "message", "content": []}
    blocks: dict[int, dict] = {}
    for event in _json_events(body):
        kind = event.get("type")
        if kind == "message_start":
            message.update({k: v for k, v in (event.get("message") or {}).items()
                            if k != "content"})
        elif kind == "content_block_start":
            blocks[event.get("index", len(blocks))] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            block = blocks.setdefault(event.get("index", 0), {"type": "text", "text": ""})
            delta = event.get("delta") or {}
            for field, key in (("text", "text"), ("thinking", "thinking"),
                               ("partial_json", "input_json")):
                if field in delta:
                    block[key] = (block.get(key) or "") + delta[field]
        elif kind == "message_delta":
            message.update({k: v for k, v in (event.get("delta") or {}).items()
                            if v is not None})
            if event.get("usage"):
                message["usage"] = {**(message.get("usage") or {}), **event["usage"]}
    message["content"] = [blocks[index] for index in sorted(blocks)]
    return message


def _reassemble_responses(body: bytes) -> dict:
    final = None
    texts: list[str] = []
    for event in _json_events(body):
        kind = event.get("type")
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            final = event.get("response")
        elif kind == "response.output_text.delta":
            texts.append(event.get("delta") or "")
    if isinstance(final, dict):
        return final
    return {"object": "response", "status": "incomplete",
            "output": [{"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": "".join(texts)}]}]}


def reassemble(api: str, body: bytes) -> dict:
    """The final answer rebuilt from the server-sent events of a streamed one."""
    if api == "anthropic_messages":
        return _reassemble_anthropic(body)
    if api == "openai_responses":
        return _reassemble_responses(body)
    return _reassemble_chat(body, completions=api == "openai_completions")


def _error_type(status: int, response: dict) -> str | None:
    if status < 400:
        return None
    error = response.get("error")
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        return error["type"]
    return f"http_{status}"


def iso_time(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-05-02T10:00:00.123Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def build_exchange(seen: Seen, exchange_id: str) -> tuple[dict | None, tuple[str | None, str]
                                                          | None]:
    """The Exchange record of ``seen``, or None and the problem (field, reason)."""
    request = seen.request_json
    if request is None:
        try:
            request = orjson.loads(seen.request_body)
        except orjson.JSONDecodeError as error:
            return None, (None, f"request body is not JSON: {error}")
    if not isinstance(request, dict):
        return None, (None, "request body is not a JSON object")
    response: dict = {}
    if seen.response_body:
        body = decode_body(seen.response_body, seen.content_encoding)
        if body is not None:
            if seen.streamed:
                response = reassemble(seen.api, body)
            else:
                try:
                    parsed = orjson.loads(body)
                    response = parsed if isinstance(parsed, dict) else {}
                except orjson.JSONDecodeError:
                    response = {}
    upstream_id = response.get("id")
    record = {"request_id": exchange_id, "timestamp": iso_time(seen.ts),
              "account_id": seen.account_id or seen.key_id or "anonymous",
              "api_key_id": seen.key_id, "client_ip": seen.client_ip,
              "user_agent": seen.user_agent, "request": request, "response": response,
              "status": seen.status}
    try:
        exchange = to_exchange(record)
    except (AttributeError, TypeError, KeyError) as error:
        return None, (None, f"request is not a {seen.api} request: {error}")
    # The route says which API it is; the body-sniffing in to_exchange cannot always tell
    # (an Anthropic error answer looks like nothing).
    exchange["operation"] = OPERATIONS[seen.api]
    exchange["source_format"] = seen.api
    exchange["response"]["status"] = seen.status
    exchange["response"]["error_type"] = seen.error_type or _error_type(seen.status, response)
    if upstream_id:
        exchange["upstream_id"] = upstream_id
    exchange["gateway"] = {"streamed": seen.streamed}
    problem = check_exchange(exchange)
    if problem is not None:
        return None, problem
    return exchange, None


# --- the writer ------------------------------------------------------------------------------


class _RotatingFile:
    """Appends gzip members to ``<prefix>-<start>-<host>-<pid>-<seq>.jsonl.gz`` files."""

    def __init__(self, folder: Path, prefix: str, rotate_bytes: int, rotate_s: float,
                 level: int) -> None:
        self.folder, self.prefix = folder, prefix
        self.rotate_bytes, self.rotate_s, self.level = rotate_bytes, rotate_s, level
        self.host = socket.gethostname().split(".")[0] or "host"
        self.fd: int | None = None
        self.path: Path | None = None
        self.size = 0
        self.opened_at = 0.0
        self.sequence = 0
        self.files: list[Path] = []

    def _open(self) -> None:
        self.close()
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        while True:
            self.sequence += 1
            path = self.folder / (f"{self.prefix}-{stamp}-{self.host}-{os.getpid()}-"
                                  f"{self.sequence:04d}.jsonl.gz")
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND,
                                  0o640)
                break
            except FileExistsError:
                continue
        self.path, self.size, self.opened_at = path, 0, time.monotonic()
        self.files.append(path)

    def write(self, lines: list[bytes]) -> None:
        """Append ``lines`` (whole JSON lines) as gzip members of at most
        ``MAX_MEMBER_BYTES`` (and at most ``rotate_bytes``) of JSON each, one ``write`` each:
        a file outgrows ``rotate_bytes`` by one member at most."""
        limit = min(MAX_MEMBER_BYTES, self.rotate_bytes)
        group: list[bytes] = []
        size = 0
        for line in lines:
            if group and size + len(line) > limit:
                self._member(b"".join(group))
                group, size = [], 0
            group.append(line)
            size += len(line)
        if group:
            self._member(group[0] if len(group) == 1 else b"".join(group))

    def _member(self, data: bytes) -> None:
        if (self.fd is None or self.size >= self.rotate_bytes
                or time.monotonic() - self.opened_at >= self.rotate_s):
            self._open()
        member = memoryview(zlib.compress(data, self.level, wbits=31))
        # One write for the whole member (a loop only for the rare short write).
        while member:
            written = os.write(self.fd, member)
            member = member[written:]
            self.size += written

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Writer:
    """Turns exchanges into Exchange records and appends them (the writer thread's work)."""

    def __init__(self, folder: Path, rotate_bytes: int, rotate_s: float, level: int) -> None:
        self.log = _RotatingFile(folder, "exchanges", rotate_bytes, rotate_s, level)
        self.rejects = _RotatingFile(folder / ".rejected", "rejected", rotate_bytes, rotate_s,
                                     level)
        self.handled = self.written = self.rejected = self.failed = 0

    def batch(self, batch: list[Seen]) -> None:
        """Turn ``batch`` into records and append them (one gzip member per file)."""
        lines: list[bytes] = []
        rejects: list[bytes] = []
        for seen in batch:
            try:
                self._one(seen, lines, rejects)
            except Exception:  # noqa: BLE001 - one bad exchange must not stop the log
                self.failed += 1
                logger.exception("Could not log an exchange")
        try:
            if lines:
                self.log.write(lines)
                self.written += len(lines)
            if rejects:
                self.rejects.write(rejects)
                self.rejected += len(rejects)
        except OSError:
            self.failed += len(lines) + len(rejects)
            logger.exception("Could not write %d exchanges to the log", len(lines) + len(rejects))
        finally:
            self.handled += len(batch)

    def _one(self, seen: Seen, lines: list[bytes], rejects: list[bytes]) -> None:
        exchange_id = f"dw-{int(seen.ts * 1e6):x}-{os.urandom(6).hex()}"
        exchange, problem = build_exchange(seen, exchange_id)
        if exchange is not None:
            lines.append(orjson.dumps(exchange) + b"\n")
            return
        field, reason = problem
        rejects.append(orjson.dumps({
            "exchange_id": exchange_id, "timestamp": iso_time(seen.ts), "api": seen.api,
            "field": field, "reason": reason, "account_id": seen.account_id,
            "api_key_id": seen.key_id, "client_ip": seen.client_ip, "status": seen.status,
            "request_body": seen.request_body[:MAX_REJECTED_BODY].decode("utf-8", "replace"),
        }) + b"\n")

    def close(self) -> None:
        self.log.close()
        self.rejects.close()


class ExchangeSink:
    """Writes exchanges to rotating JSONL.gz files from a background thread.

    Args:
        folder: The log folder (created if missing).
        rotate_bytes: Start a new file past this many compressed bytes.
        rotate_s: ... or past this age in seconds.
        queue_size: Exchanges that may wait; past it :meth:`write` drops and counts them.
        level: gzip compression level.
        linger_s: How long the writer, once woken, waits for more exchanges before it writes
            (fewer wake-ups of the thread, each one for a batch; 0: none).
        writer_nice: Nice steps the writer thread takes below the thread that starts it
            (Linux; elsewhere, or when not allowed, it runs at the same priority). The
            event loop, woken by a request, then gets a core ahead of the writer: on two
            cores at 1,000 req/s this took the added p50 from ~0.33 to ~0.27 ms and the p99
            from ~0.8 to ~0.5 ms (``benchmarks/README.md``). The writer still has every
            otherwise idle moment of the machine; under overload its queue fills first
            (``queue_size``; dropped exchanges are counted).

    Example:
        >>> sink = ExchangeSink(Path("logs"))       # doctest: +SKIP
        >>> sink.start(); sink.write(seen); sink.close()  # doctest: +SKIP
    """

    def __init__(self, folder: Path, *, rotate_bytes: int = 64 << 20, rotate_s: float = 3600.0,
                 queue_size: int = 10_000, level: int = 6, linger_s: float = 0.005,
                 writer_nice: int = 0) -> None:
        self.folder = Path(folder)
        self._writer = _Writer(self.folder, rotate_bytes, rotate_s, level)
        self._pending: deque[Seen] = deque()
        self._queue_size = queue_size
        self._linger = linger_s
        self._wake = threading.Event()    # set by write() when the writer may be asleep
        self._hurry = threading.Event()   # set by drain() / close(): no lingering
        self._closing = False
        self._accepted = 0                # exchanges queued so far (the writer counts handled)
        self._thread: threading.Thread | None = None
        self._nice = writer_nice
        self.writer_priority: int | None = None  # the writer thread's nice value, once known
        self.dropped = 0

    @property
    def written(self) -> int:
        """Exchanges logged."""
        return self._writer.written

    @property
    def rejected(self) -> int:
        """Records set aside in ``.rejected/`` (not valid Exchanges)."""
        return self._writer.rejected

    @property
    def failed(self) -> int:
        """Exchanges that could not be logged (an error, logged)."""
        return self._writer.failed

    @property
    def depth(self) -> int:
        """Exchanges waiting to be written."""
        return len(self._pending)

    @property
    def files(self) -> list[Path]:
        """The log files this sink opened, oldest first."""
        return list(self._writer.log.files)

    def start(self) -> None:
        """Start the writer thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="distillwatch-sink",
                                        daemon=True)
        self._thread.start()

    def write(self, seen: Seen) -> bool:
        """Queue one exchange (never blocks); False if the queue was full and it was dropped."""
        pending = self._pending
        if len(pending) >= self._queue_size or self._closing:
            self.dropped += 1
            return False
        pending.append(seen)
        self._accepted += 1
        if not self._wake.is_set():
            self._wake.set()
        return True

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        target = self._accepted
        deadline = time.monotonic() + timeout
        self._hurry.set()
        try:
            while self._writer.handled < target:
                if time.monotonic() > deadline or self._thread is None:
                    return self._writer.handled >= target
                time.sleep(0.002)
            return True
        finally:
            self._hurry.clear()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread and close the files."""
        if self._thread is not None:
            self._closing = True
            self._hurry.set()
            self._wake.set()
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("Exchange log writer still busy at shutdown; %d not written",
                               self.depth)
            self._thread = None

    def _run(self) -> None:
        # Linux: this thread alone (nice values are per thread). Elsewhere the whole process
        # would go lower with it, so the writer keeps the process's priority there.
        if sys.platform == "linux":
            self.writer_priority = lower_priority(self._nice)
        wake, hurry = self._wake, self._hurry
        while True:
            wake.wait()
            if self._linger and not self._closing:
                hurry.wait(self._linger)  # let a few more arrive: one wake-up for them all
            wake.clear()  # before taking the queue: an exchange queued from now on wakes us
            self._write_pending()
            if self._closing:
                self._write_pending()  # one queued just as close() was called
                break
        self._writer.close()

    def _write_pending(self) -> None:
        pending, writer = self._pending, self._writer
        while pending:
            batch, size = [], 0
            while pending and size < MAX_MEMBER_BYTES:
                seen = pending.popleft()
                batch.append(seen)
                size += len(seen.request_body) + len(seen.response_body or b"") + 512
            writer.batch(batch)
