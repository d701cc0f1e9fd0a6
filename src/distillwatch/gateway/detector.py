"""The online detector: stops new accounts of known campaigns within their first requests.

The gateway hands every forwarded request to :meth:`OnlineDetector.observe`, which only puts
it on a bounded queue (full: dropped and counted, never waited on). :meth:`OnlineDetector.run`
takes the queue in batches, turns each request into the Exchange record batch ingest would make
of the same provider log line (``ingest.readers.accept``: the same conversion, validation and
capping), fingerprints the batch with ``fingerprint.features_from_arrow`` (the batch code, its
scaffold columns only, so a request's scaffold keys are the keys the scan computed for the
same exchange), matches the keys against :class:`~distillwatch.gateway.indicators.Indicators`,
adds the evidence to sliding-window :class:`Counters` (shared by every replica when they live
in Redis) and sets a decision for an account once its evidence is enough.

The rules mirror batch's caution (``docs/detector.md``: one family of evidence alone never
links two accounts; thousands of developers run one open-source agent):

- **Scaffold keys weigh by kind.** A scaffold line, the opening or the closing of the masked
  prompt: 1.0; a MinHash band: 0.5 (bands of one sketch are correlated: together at most
  ``band_cap``); a system-prompt or tool-schema hash: 0.5. A key that the requests of
  ``shared_key_accounts`` protected accounts (declared organisation, verified, or allowed by the
  scan) also carry is common legitimate text and weighs ``shared_key_factor`` of that.
- **Per request**, the keys it shares with campaign C sum to a score: from
  ``template_min_score`` (2.0: several keys) the request is a *template hit* for C, from
  ``touch_min_score`` (1.0) it *touches* C and its keys count towards the account's distinct
  keys of C (an agent's system prompt and tools together touch, never hit).
- **Network hit**: the request comes from one of C's /24s (or addresses). ASNs are reported but
  are not evidence by default: proxy, VPN and hosting ASNs carry ordinary customers too.
- **Concealment** of the account: batch's own ``risky_signup``, ``fresh_account`` and
  ``ip_rotation`` signals on the account file and the client IPs seen, combined by noisy-OR.
- **Decisions**, per account over ``window_s`` (the strongest applies):

  ============ ============================================================== ============
  rule         evidence for campaign C                                        default
  ============ ============================================================== ============
  payment      pays with one of C's payment fingerprints (account file) and   ``verify``
               one template or network hit, or distinct keys of weight 2
  two_families scaffold (2 template hits, or distinct keys of weight 3) and   ``verify``
               2 requests from C's networks
  expand       one family plus concealment (batch's campaign expansion): 4    ``throttle``
               touching requests, ≥ 30 % of the account's, distinct keys of
               weight 2, concealment ≥ 0.5
  repeat       one family: 4 touching requests, ≥ 50 % of the account's,      ``throttle``
               distinct keys of weight 3
  ============ ============================================================== ============

  ``expand`` and ``repeat`` never apply to a protected account (declared organisation,
  verified, or allowed by the scan): such an account needs two families.

Known members of a campaign (the scan's ``accounts.jsonl``) are left to the scan's decision.
An ``admin`` decision on the account is never overridden, and a decision is only set when it
is stronger than the one in force. Volume counters (account, API key and client IP requests
in the last hour) are reported in every decision's reason.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson
import pyarrow as pa
import yaml

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.fingerprint.addresses import host_of
from distillwatch.fingerprint.arrays import whole
from distillwatch.gateway.decisions import RANK, Decision
from distillwatch.gateway.indicators import AccountInfo, Indicators, key_fingerprint
from distillwatch.gateway.state import Addition
from distillwatch.io.arrow_layout import is_user_turn
from distillwatch.workers import lower_priority, watch_parent

logger = logging.getLogger(__name__)

APIS = ("openai_chat", "openai_responses", "openai_completions", "anthropic_messages")
# Key kinds, in the order ``scaffold_keys`` lays them out.
KINDS = ("band", "line", "head", "tail", "system", "tools")
RULES = ("payment", "two_families", "expand", "repeat")
# Decided subjects remembered by this replica (to skip re-deciding); pruned of expired ones.
_DECIDED_CACHE = 100_000
# ``ingest.formats.to_exchange`` tells the wire format from the body and the response; the
# gateway knows the API, so a response stub names it (the request is converted as batch does).
_RESPONSE_HINT: dict[str, dict] = {
    "openai_chat": {}, "openai_completions": {},
    "openai_responses": {"object": "response"}, "anthropic_messages": {"type": "message"},
}


@dataclass(frozen=True)
class Observed:
    """One request as the gateway saw it.

    Args:
        account_id: From the provider's auth header or the key map.
        key_id: Keyed hash of the API key (never the key).
        client_ip: The real client IP (through trusted proxies only).
        user_agent: The client's ``User-Agent``.
        api: ``openai_chat``, ``openai_responses``, ``openai_completions`` or
            ``anthropic_messages``.
        body: The JSON request body, parsed, or as sent (bytes: parsed where it is
            fingerprinted; a body that is not a JSON object is not fingerprinted).
        ts: Epoch seconds.
    """

    account_id: str | None
    key_id: str | None
    client_ip: str | None
    user_agent: str | None
    api: str
    body: dict | bytes
    ts: float


class Counters(Protocol):
    """Sliding-window counters and decisions (``state.LocalState``, ``state.RedisState``)."""

    async def add_many(self, additions: Sequence[Addition]) -> list[float]:
        """Add ``amount`` to each ``(name, subject, window_s, now, amount)`` window; the
        sums over their last ``window_s`` seconds, in order (one round trip for all)."""
        ...

    async def set_decision(self, subject: str, decision: Decision) -> None:
        """Set the subject's decision."""
        ...

    async def get_decision(self, subject: str) -> Decision | None:
        """The subject's decision in force, if any."""
        ...


@dataclass(frozen=True)
class Match:
    """One indicator a request matched, as ``campaigns.json`` shows it.

    Attributes:
        campaign_id: The campaign the indicator belongs to.
        kind: ``template``, ``ip_prefix``, ``asn`` or ``payment_fingerprint``.
        value: ``sk-…``, ``203.0.113.0/24``, ``64500`` or ``pf-…``.
        scaffold: For a template, the kind of scaffold key (``band``, ``line``, ``head``,
            ``tail``, ``system``, ``tools``).
    """

    campaign_id: str
    kind: str
    value: str
    scaffold: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What the detector made of one request.

    Attributes:
        subject: ``account:<id>`` (or ``key:<id>`` / ``ip:<address>`` without an account).
        account_id: The request's account.
        matches: Every indicator the request matched.
        template_hits: Campaigns for which the request is a template hit.
        touched: Campaigns the request touches (its keys count for the account).
        decision: The decision this batch set for the subject (on the subject's last request
            of the batch), else None.
        rule: The rule behind ``decision``.
    """

    subject: str | None
    account_id: str | None
    matches: tuple[Match, ...] = ()
    template_hits: tuple[str, ...] = ()
    touched: tuple[str, ...] = ()
    decision: Decision | None = None
    rule: str | None = None


@dataclass(frozen=True)
class DetectorSettings:
    """The online detector's knobs (``conf/detector.yaml`` documents each).

    Raises:
        DistillwatchConfigError: From :meth:`from_path_or_dict` on an unknown key or a value of
            the wrong type or range.
    """

    queue_size: int = 10_000
    max_batch: int = 1024
    batch_wait_s: float = 0.1
    executor: str = "process"
    worker_nice: int = 10
    weight_band: float = 0.5
    band_cap: float = 1.5
    weight_line: float = 1.0
    weight_head: float = 1.0
    weight_tail: float = 1.0
    weight_system: float = 0.5
    weight_tools: float = 0.5
    template_min_score: float = 2.0
    touch_min_score: float = 1.0
    shared_key_accounts: int = 2
    shared_key_factor: float = 0.25
    window_s: float = 86_400.0
    volume_window_s: float = 3_600.0
    min_keys: float = 3.0
    repeat_min_touches: int = 4
    repeat_min_share: float = 0.5
    expand_min_keys: float = 2.0
    expand_min_share: float = 0.3
    expand_min_concealment: float = 0.5
    concealment_prior: float = 8.0
    two_min_hits: int = 2
    network_min_hits: int = 2
    payment_min_hits: int = 1
    payment_min_keys: float = 2.0
    asn_is_network: bool = False
    decision_payment: str = "verify"
    decision_two_families: str = "verify"
    decision_expand: str = "throttle"
    decision_repeat: str = "throttle"
    ttl_s: float = 86_400.0

    def __post_init__(self) -> None:
        if self.executor not in ("inline", "thread", "process"):
            raise DistillwatchConfigError(
                f"detector.executor must be inline, thread or process, not {self.executor!r}")
        for rule in RULES:
            kind = getattr(self, f"decision_{rule}")
            if kind not in RANK or kind == "allow":
                raise DistillwatchConfigError(
                    f"detector.decision_{rule} must be monitor, throttle, verify or block, "
                    f"not {kind!r}")
        if not 0 <= self.worker_nice <= 19:
            raise DistillwatchConfigError("detector.worker_nice must be 0 to 19")
        if self.queue_size < 1 or self.max_batch < 1:
            raise DistillwatchConfigError("detector.queue_size and max_batch must be ≥ 1")

    def weight(self, kind: str) -> float:
        """The weight of one scaffold key of ``kind``."""
        return float(getattr(self, f"weight_{kind}"))

    @classmethod
    def from_path_or_dict(cls, source: str | Path | Mapping[str, Any] | None
                          ) -> DetectorSettings:
        """Settings from a YAML file, a mapping, or the built-in ``conf/detector.yaml``.

        Raises:
            DistillwatchConfigError: If the file is missing or not YAML, or a key is unknown
                or of the wrong type (the message names the key and the file).
        """
        where = "built-in conf/detector.yaml"
        if source is None:
            text = resources.files("distillwatch").joinpath("conf/detector.yaml").read_text(
                "utf-8")
            source = _yaml(text, where)
        elif isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise DistillwatchConfigError(f"Path {path} does not point to a valid file.")
            where = str(path)
            source = _yaml(path.read_text(encoding="utf-8"), where)
        else:
            where = "detector settings"
        if not isinstance(source, Mapping):
            raise DistillwatchConfigError("Detector settings must be a mapping", where)
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, value in source.items():
            if name not in known:
                raise DistillwatchConfigError(
                    f"Unknown detector setting {name!r}; known: {', '.join(known)}", where)
            default = known[name].default
            ok = (isinstance(value, bool) if isinstance(default, bool) else
                  isinstance(value, int) and not isinstance(value, bool)
                  if isinstance(default, int) else
                  isinstance(value, int | float) and not isinstance(value, bool)
                  if isinstance(default, float) else isinstance(value, type(default)))
            if not ok or (isinstance(value, int | float) and not isinstance(value, bool)
                          and value < 0):
                raise DistillwatchConfigError(
                    f"Detector setting {name!r} must be a non-negative "
                    f"{type(default).__name__}, not {value!r}", where)
            values[name] = type(default)(value)
        try:
            return cls(**values)
        except DistillwatchConfigError as error:
            raise DistillwatchConfigError(error.message, where) from None


def _yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise DistillwatchConfigError(f"Detector settings are not valid YAML: {error}",
                                      where) from None


def _concealment_signals() -> tuple:
    from distillwatch.signals.builtin.identity import FreshAccount, RiskySignup
    from distillwatch.signals.builtin.network import IpRotation

    return RiskySignup(), FreshAccount(), IpRotation()


# Batch's per-account concealment signals that need only the account file and the client IPs.
_CONCEALMENT = _concealment_signals()


# --- requests -> Exchange records -> scaffold keys (pure; may run in a worker process) -----


def _subject(request: Observed) -> str | None:
    if request.account_id:
        return f"account:{request.account_id}"
    if request.key_id:
        return f"key:{request.key_id}"
    if request.client_ip:
        return f"ip:{host_of(request.client_ip)}"
    return None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _chat_body(body: dict, owned: bool) -> dict:
    """The body as batch conversion takes it: unless the body is ``owned`` (parsed here),
    the parts that conversion edits in place copied, so that the caller's body is never
    modified."""
    if owned:
        return body
    out = dict(body)
    if isinstance(body.get("messages"), list):
        out["messages"] = [dict(m) if isinstance(m, dict) else m for m in body["messages"]]
    if isinstance(body.get("tools"), list):
        out["tools"] = [{**t, "function": dict(t["function"])}
                        if isinstance(t, dict) and isinstance(t.get("function"), dict) else t
                        for t in body["tools"]]
    return out


def exchange_record(request: Observed, exchange_id: str) -> dict | None:
    """The Exchange record batch ingest makes of this request logged as a provider log line.

    Goes through ``ingest.readers.accept`` (``to_exchange``, validation, capping of very long
    text), so fingerprints equal the scan's for the same exchange. The response is left empty
    (fingerprints read only the request).

    Returns:
        The record, or None when batch would reject the request (no messages, bad fields).
    """
    from distillwatch.ingest.readers import accept

    parsed = request.body
    owned = isinstance(parsed, bytes | bytearray | memoryview)
    if owned:
        try:
            parsed = orjson.loads(parsed)
        except orjson.JSONDecodeError:
            return None
    if request.api not in _RESPONSE_HINT or not isinstance(parsed, dict):
        return None
    body = _chat_body(parsed, owned)
    if not body.get("model"):
        body["model"] = "unknown"
    line = {"request_id": exchange_id, "timestamp": _iso(request.ts),
            "account_id": request.account_id or _subject(request) or "anonymous",
            "api_key_id": request.key_id, "client_ip": request.client_ip,
            "user_agent": request.user_agent, "request": body,
            "response": dict(_RESPONSE_HINT[request.api])}
    record, problem = accept(line)
    return record if problem is None else None


@dataclass
class ScaffoldKeys:
    """The scaffold keys of a batch's fingerprinted requests, flattened.

    Attributes:
        rows: Index in the batch of each fingerprinted request.
        key_row: For every key, its position in ``rows``.
        key_kind: For every key, its index in :data:`KINDS`.
        keys: The keys (signed 64-bit, as ``features_from_arrow`` computes them).
    """

    rows: np.ndarray
    key_row: np.ndarray
    key_kind: np.ndarray
    keys: np.ndarray


def _ints(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    array = whole(column)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), valid


def _scaffold_messages(record: dict) -> dict:
    """The record with only the messages its scaffold keys read: the first system or
    developer message (the system prompt where none is declared) and the last user message.
    An agent's request carries its whole history; the rest of it would be laid out and
    flattened for nothing."""
    messages = record["request"]["messages"]
    system = next((m for m in messages if m.get("role") in ("system", "developer")), None)
    user = next((m for m in reversed(messages) if is_user_turn(m)), None)
    kept = [m for m in messages if m is system or m is user]
    if kept and len(kept) < len(messages):
        record["request"] = {**record["request"], "messages": kept}
    return record


def scaffold_keys(batch: list[Observed], key: bytes, start_id: int = 0) -> ScaffoldKeys:
    """Fingerprint a batch of requests with the batch code and return their scaffold keys.

    Args:
        batch: The requests.
        key: The provider's fingerprint key (the scan's).
        start_id: Number of the first request (synthetic exchange ids).
    """
    from distillwatch.fingerprint.features import SCAFFOLD_COLUMNS, features_from_arrow
    from distillwatch.io.arrow_layout import to_arrow

    rows, records = [], []
    for index, request in enumerate(batch):
        record = exchange_record(request, f"gw-{start_id + index}")
        if record is not None:
            rows.append(index)
            records.append(_scaffold_messages(record))
    empty = np.zeros(0, np.int64)
    if not records:
        return ScaffoldKeys(np.asarray(rows, np.int64), empty, empty, empty)
    features = features_from_arrow(to_arrow(records), key, columns=SCAFFOLD_COLUMNS)
    count = len(records)
    parts_row, parts_kind, parts_key = [], [], []

    def add(row_index: np.ndarray, kind: str, values: np.ndarray) -> None:
        parts_row.append(row_index)
        parts_kind.append(np.full(len(values), KINDS.index(kind), np.int8))
        parts_key.append(values)

    for kind in ("band", "line"):
        column = features.column("band_keys" if kind == "band" else "line_hashes")
        lists = column.combine_chunks()
        offsets = lists.offsets.to_numpy()
        values = lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        add(np.repeat(np.arange(count), np.diff(offsets)), kind, values)
    for kind, name in (("head", "head_key"), ("tail", "tail_key"),
                       ("system", "system_hash"), ("tools", "tools_hash")):
        values, valid = _ints(features.column(name))
        add(np.flatnonzero(valid), kind, values[valid])
    return ScaffoldKeys(np.asarray(rows, np.int64), np.concatenate(parts_row),
                        np.concatenate(parts_kind), np.concatenate(parts_key))


def _sorted_keys(keys: Iterable[int]) -> np.ndarray:
    """The campaigns' template keys, sorted once for :func:`_found`."""
    return np.unique(np.fromiter(keys, np.int64))


def _found(keys: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Positions of ``keys`` that are in the sorted ``index``: a binary search per key
    (``np.isin`` sorted the whole index again for every batch: ~40 ms for 200k keys, which
    held the event loop and every request waiting on it)."""
    if not len(index) or not len(keys):
        return np.zeros(0, np.int64)
    at = np.minimum(np.searchsorted(index, keys), len(index) - 1)
    return np.flatnonzero(index[at] == keys)


_JUDGE_GROUP = 4  # subjects judged between two turns of the event loop
_MATCH_SLICE = 16  # requests matched between two turns of the event loop


def _start_worker(parent: int, nice: int) -> None:
    """In the fingerprinting worker: exit with the gateway, and run ``nice`` steps below it,
    so that a request woken on a busy core never waits behind a batch."""
    watch_parent(parent)
    lower_priority(nice)


def _scaffold_keys_job(batch: list[Observed], key: bytes, start_id: int) -> ScaffoldKeys:
    # Module-level so a process pool can pickle it.
    return scaffold_keys(batch, key, start_id)


# --- evidence ------------------------------------------------------------------------------


@dataclass
class _Evidence:
    """One subject's evidence in one batch."""

    requests: int = 0
    ts: float = 0.0
    last: int = -1  # index of the subject's last request in the batch
    account_id: str | None = None
    key_id: str | None = None
    client_ip: str | None = None
    hits: Counter = field(default_factory=Counter)      # campaign -> template hits
    touches: Counter = field(default_factory=Counter)   # campaign -> requests touching it
    network: Counter = field(default_factory=Counter)   # campaign -> network hits
    # scaffold key -> (weight, campaigns, is a band key)
    keys: dict[int, tuple[float, tuple[str, ...], bool]] = field(default_factory=dict)
    places: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    ips: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Plan:
    """One subject to judge: its evidence and what the indicators say of its account."""

    subject: str
    item: _Evidence
    facts: AccountInfo | None
    paying: frozenset[str]   # campaigns whose payment fingerprints the account uses
    campaigns: list[str]     # campaigns it has any evidence for


class OnlineDetector:
    """Matches requests against campaign indicators and decides on accounts in the background.

    Args:
        indicators: What is known of campaigns and accounts.
        counters: Sliding-window counters and decisions (shared by replicas through Redis).
        key: The fingerprint key the scan used (fingerprints match only under one key).
        settings: The detector's knobs (default: the built-in ``conf/detector.yaml``).
        asn_lookup: Client IP → ASN, for ASN indicators (the gateway sees only the IP).

    Example:
        >>> detector = OnlineDetector(Indicators.build(scan_dir=Path("out")), LocalState(),
        ...                           key, DetectorSettings())
        >>> task = asyncio.create_task(detector.run())
        >>> detector.observe(Observed("acct-1", None, "198.51.100.7", None, "openai_chat",
        ...                           body, time.time()))
    """

    def __init__(self, indicators: Indicators, counters: Counters, key: bytes,
                 settings: DetectorSettings | None = None,
                 asn_lookup: Callable[[str], int | None] | None = None) -> None:
        self.settings = settings or DetectorSettings.from_path_or_dict(None)
        # Swapped whole by reload (possibly from another thread): a batch reads it once.
        self._loaded = (indicators, _sorted_keys(indicators.template_keys))
        self.counters = counters
        self.key = key
        self.asn_lookup = asn_lookup
        self._pending: deque[Observed] = deque()
        self._idle: asyncio.Future | None = None  # set while run() waits for a first request
        self._executor: Executor | None = None
        self._sequence = 0
        # Scaffold keys that protected accounts' requests carry: key -> those accounts (a few).
        self._shared: dict[int, set[str]] = {}
        # Subjects this replica has decided: subject -> (rank, expires_at).
        self._decided: dict[str, tuple[int, float]] = {}
        self.stats: Counter = Counter()

    # --- the queue (a deque: observe and run share the event loop) --------------------------

    @property
    def pending(self) -> int:
        """Requests observed and not yet taken into a batch."""
        return len(self._pending)

    def observe(self, request: Observed) -> None:
        """Enqueue a request; never blocks: when the queue is full it is dropped and counted.

        Appending costs no wake-up of the loop, except for the first request after it went
        idle (an ``asyncio.Queue`` woke the batching task for every request)."""
        if len(self._pending) >= self.settings.queue_size:
            self.stats["dropped"] += 1
            return
        self._pending.append(request)
        self.stats["observed"] += 1
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def run(self) -> None:
        """The background loop, until cancelled: from the first request after an idle spell,
        waits ``batch_wait_s`` for more, then takes a batch of up to ``max_batch`` (at once
        while more than that wait). Errors are logged and counted."""
        settings, pending = self.settings, self._pending
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not pending:
                    self._idle = loop.create_future()
                    try:
                        await self._idle
                    finally:
                        self._idle = None
                if len(pending) < settings.max_batch:
                    await asyncio.sleep(settings.batch_wait_s)
                batch = [pending.popleft() for _ in range(min(len(pending), settings.max_batch))]
                try:
                    await self.process(batch, verdicts=False)
                except Exception:  # the loop must outlive one bad batch
                    self.stats["errors"] += 1
                    logger.exception("Online detector batch of %d requests failed", len(batch))
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None

    def reload(self, indicators: Indicators) -> None:
        """Swap in new indicators; a batch in progress finishes with the old ones."""
        self._loaded = (indicators, _sorted_keys(indicators.template_keys))
        self._shared = {}
        self.stats["reloads"] += 1

    @property
    def indicators(self) -> Indicators:
        """The indicators in use."""
        return self._loaded[0]

    # --- one batch -------------------------------------------------------------------------

    async def _keys(self, batch: list[Observed]) -> ScaffoldKeys:
        start = self._sequence
        self._sequence += len(batch)
        mode = self.settings.executor
        if mode == "inline":
            return scaffold_keys(batch, self.key, start)
        if self._executor is None:
            # spawn: forking a process that runs an event loop and threads is unsafe.
            self._executor = (ThreadPoolExecutor(1, thread_name_prefix="dw-detector")
                              if mode == "thread" else ProcessPoolExecutor(
                                  1, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_start_worker,
                                  initargs=(os.getpid(), self.settings.worker_nice)))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _scaffold_keys_job, batch,
                                          self.key, start)

    async def process(self, batch: list[Observed], verdicts: bool = True) -> list[Verdict]:
        """Fingerprint, match and accumulate one batch; set decisions where evidence is enough.

        Args:
            batch: The requests.
            verdicts: False skips making the verdicts (the background loop reads none).

        Returns:
            One verdict per request, in order (none when ``verdicts`` is False).
        """
        if not batch:
            return []
        started = time.perf_counter()
        keys = await self._keys(batch)
        self.stats["fingerprint_s"] += time.perf_counter() - started
        return await self.process_keyed(batch, keys, verdicts)

    async def process_keyed(self, batch: list[Observed], keys: ScaffoldKeys,
                            verdicts: bool = True) -> list[Verdict]:
        """:meth:`process` for a batch already fingerprinted (``scaffold_keys(batch, key)``).

        Replays fingerprint many requests at once and decide in batches of simulated time.
        The batch is matched a slice of requests at a time, with a turn of the event loop
        between slices (as between the groups of subjects judged after): a whole batch at
        once held the requests arriving meanwhile for milliseconds.
        """
        started = time.perf_counter()
        indicators, index_keys = self._loaded
        self.stats["batches"] += 1
        self.stats["processed"] += len(batch)
        self.stats["invalid"] += len(batch) - len(keys.rows)
        found = _found(keys.keys, index_keys)
        # The found keys in request order, so that a slice of requests finds its own.
        found_rows = keys.rows[keys.key_row[found]]
        order = np.argsort(found_rows, kind="stable")
        found, found_rows = found[order], found_rows[order]
        matches: list[list[Match]] = [[] for _ in batch]
        scored: list[dict] = [{} for _ in batch]
        evidence: dict[str, _Evidence] = {}
        for start in range(0, len(batch), _MATCH_SLICE):
            if start:
                await asyncio.sleep(0)
            rows = range(start, min(start + _MATCH_SLICE, len(batch)))
            low, high = np.searchsorted(found_rows, (rows.start, rows.stop))
            self._match(batch, keys, found[low:high], rows, indicators, matches, scored)
            self._gather(batch, rows, matches, scored, indicators, evidence)
        settings = self.settings
        hits = [tuple(c for c, (score, _) in per.items() if score >= settings.template_min_score)
                for per in scored]
        self.stats["template_hits"] += sum(1 for h in hits if h)
        await asyncio.sleep(0)
        decided = await self._accumulate(evidence, indicators)
        out = []
        if verdicts:
            for index, request in enumerate(batch):
                subject = _subject(request)
                decision, rule = decided.get(subject, (None, None)) if subject else (None, None)
                last = subject in evidence and evidence[subject].last == index
                touched = tuple(c for c, (score, _) in scored[index].items()
                                if score >= settings.touch_min_score)
                out.append(Verdict(subject, request.account_id, tuple(matches[index]),
                                   hits[index], touched, decision if last else None,
                                   rule if last else None))
        self.stats["match_s"] += time.perf_counter() - started
        return out

    def _protected(self, account_id: str | None, indicators: Indicators) -> bool:
        """Declared organisation, verified, or allowed by the scan (and in no campaign)."""
        facts = indicators.account(account_id)
        if facts is not None and (facts.organization_id or facts.verified):
            return True
        scanned = indicators.scanned(account_id)
        return scanned is not None and scanned.decision == "allow" and not scanned.campaign_id

    def _match(self, batch: list[Observed], keys: ScaffoldKeys, found: np.ndarray,
               rows: range, indicators: Indicators, matches: list[list[Match]],
               scored: list[dict]) -> None:
        """Fill ``matches`` and ``scored`` (per request {campaign: (score, {key: weight})}) for
        the requests ``rows``, whose found keys are the positions ``found``."""
        settings = self.settings
        for position in found:
            row = int(keys.rows[keys.key_row[position]])
            kind = KINDS[keys.key_kind[position]]
            value = int(keys.keys[position])
            request = batch[row]
            weight = settings.weight(kind)
            sharers = self._shared.get(value)
            if request.account_id and self._protected(request.account_id, indicators):
                if sharers is None:
                    sharers = self._shared[value] = set()
                if len(sharers) < settings.shared_key_accounts:
                    sharers.add(request.account_id)
            if sharers is not None and len(sharers) >= settings.shared_key_accounts:
                weight *= settings.shared_key_factor
            for campaign in indicators.campaigns_of_template(value):
                matches[row].append(Match(campaign, "template", key_fingerprint(value), kind))
                entry = scored[row].setdefault(campaign, [0.0, 0.0, {}])
                entry[0 if kind == "band" else 1] += weight
                entry[2][value] = (weight, kind == "band")
        for row in rows:
            request = batch[row]
            if scored[row]:
                scored[row] = {campaign: (min(bands, settings.band_cap) + others, weights)
                               for campaign, (bands, others, weights) in scored[row].items()}
            for campaign, shown in indicators.campaigns_of_ip(request.client_ip):
                matches[row].append(Match(campaign, "ip_prefix", shown))
            if self.asn_lookup is not None and request.client_ip:
                asn = self.asn_lookup(request.client_ip)
                for campaign in indicators.campaigns_of_asn(asn):
                    matches[row].append(Match(campaign, "asn", str(asn)))

    def _gather(self, batch: list[Observed], rows: range, matches: list[list[Match]],
                scored: list[dict], indicators: Indicators,
                evidence: dict[str, _Evidence]) -> None:
        """Add the evidence of the requests ``rows`` to their subjects' in ``evidence``."""
        settings = self.settings
        network_kinds = {"ip_prefix", "asn"} if settings.asn_is_network else {"ip_prefix"}
        for index in rows:
            request = batch[index]
            subject = _subject(request)
            if subject is None:
                continue
            scanned = indicators.scanned(request.account_id)
            if scanned is not None and scanned.campaign_id:
                continue  # a known member: the scan's decision applies
            item = evidence.get(subject)
            if item is None:
                item = evidence[subject] = _Evidence(account_id=request.account_id)
            item.requests += 1
            item.ts = max(item.ts, request.ts)
            item.last = index
            # An IPv6 client is its /64: its devices and a proxy's rotation change the rest.
            host = host_of(request.client_ip)
            item.key_id, item.client_ip = request.key_id or item.key_id, host
            if host:
                item.ips.add(host)
            for campaign, (score, weights) in scored[index].items():
                if score < settings.touch_min_score:
                    continue
                item.touches[campaign] += 1
                if score >= settings.template_min_score:
                    item.hits[campaign] += 1
                for value, (weight, band) in weights.items():
                    held = item.keys.get(value)
                    item.keys[value] = (max(weight, held[0]) if held else weight,
                                        tuple(sorted({campaign, *(held[1] if held else ())})),
                                        band)
            network = set()
            for match in matches[index]:
                if match.kind in network_kinds:
                    item.places[match.campaign_id].add(match.value)
                    network.add(match.campaign_id)
            for campaign in network:
                item.network[campaign] += 1

    async def _accumulate(self, evidence: dict[str, _Evidence], indicators: Indicators
                          ) -> dict[str, tuple[Decision, str]]:
        # Subjects are judged a group at a time: each group's windows are added in one
        # call (one Redis round trip; in process no task per window), with a turn of the
        # event loop between groups, so that no request waits long behind a batch.
        decided: dict[str, tuple[Decision, str]] = {}
        items = list(evidence.items())
        for start in range(0, len(items), _JUDGE_GROUP):
            if start:
                await asyncio.sleep(0)
            plans = [self._plan(subject, item, indicators)
                     for subject, item in items[start:start + _JUDGE_GROUP]]
            for plan, sums in zip(plans, await self._counts(plans), strict=True):
                result = await self._judge(plan, sums, indicators)
                if result is not None:
                    decided[plan.subject] = result
        return decided

    def _plan(self, subject: str, item: _Evidence, indicators: Indicators) -> _Plan:
        facts = indicators.account(item.account_id)
        paying = indicators.campaigns_of_payment(facts.payment_fingerprint if facts else None)
        campaigns = sorted({c for _, owners, _ in item.keys.values() for c in owners}
                           | set(item.network) | set(paying))
        return _Plan(subject, item, facts, frozenset(paying), campaigns)

    async def _counts(self, plans: list[_Plan]) -> list[dict[str, float]]:
        """Add the group's evidence to the sliding windows; per subject the new sums by name."""
        settings = self.settings
        window, volume = settings.window_s, settings.volume_window_s
        stages = []
        for plan in plans:
            subject, item, now = plan.subject, plan.item, plan.item.ts
            adds = {"requests": ("req", subject, window, now, item.requests),
                    "hour": ("req_volume", subject, volume, now, item.requests)}
            if item.key_id and not subject.startswith("key:"):
                adds["key_hour"] = ("req_volume", f"key:{item.key_id}", volume, now,
                                    item.requests)
            if item.client_ip and not subject.startswith("ip:"):
                adds["ip_hour"] = ("req_volume", f"ip:{item.client_ip}", volume, now,
                                   item.requests)
            # Distinct scaffold keys over the window: a key counts when first seen in it.
            for value in sorted(item.keys):
                adds[f"seen:{value}"] = (f"seen:{value}", subject, window, now, 1.0)
            for ip in sorted(item.ips):
                adds[f"ip:{ip}"] = (f"ip_seen:{ip}", subject, window, now, 1.0)
            stages.append(adds)
        all_sums = await self._add_all(stages)
        stages = []
        for plan, sums in zip(plans, all_sums, strict=True):
            subject, item, now = plan.subject, plan.item, plan.item.ts
            new_ips = sum(1 for ip in item.ips if sums[f"ip:{ip}"] < 1.5)
            fresh: Counter = Counter()  # (campaign, is band) -> weight of keys new in the window
            for value, (weight, owners, band) in item.keys.items():
                if sums[f"seen:{value}"] < 1.5:
                    for campaign in owners:
                        fresh[campaign, band] += weight
            adds = {"ips": ("ips", subject, window, now, new_ips)}
            for campaign in plan.campaigns:
                for name, amount in (("tpl", item.hits[campaign]),
                                     ("touch", item.touches[campaign]),
                                     ("net", item.network[campaign]),
                                     ("kband", fresh[campaign, True]),
                                     ("kother", fresh[campaign, False])):
                    adds[f"{name}:{campaign}"] = (f"{name}:{campaign}", subject, window, now,
                                                  amount)
            stages.append(adds)
        for plan, sums, more in zip(plans, all_sums, await self._add_all(stages), strict=True):
            sums.update(more)
            for campaign in plan.campaigns:
                # Band keys of one frame are correlated across requests too: capped as in one.
                sums[f"keys:{campaign}"] = (min(sums[f"kband:{campaign}"], settings.band_cap)
                                            + sums[f"kother:{campaign}"])
        return all_sums

    async def _add_all(self, stages: list[dict[str, tuple]]) -> list[dict[str, float]]:
        """Every stage's additions in one call; per stage its sums by name."""
        sums = iter(await self.counters.add_many(
            [addition for stage in stages for addition in stage.values()]))
        return [{name: next(sums) for name in stage} for stage in stages]

    def _rule(self, sums: dict[str, float], campaign: str, paying: bool, one_family: bool,
              concealment: float) -> str | None:
        settings = self.settings
        hits, touches = sums[f"tpl:{campaign}"], sums[f"touch:{campaign}"]
        network, keys = sums[f"net:{campaign}"], sums[f"keys:{campaign}"]
        if paying and (hits + network >= settings.payment_min_hits
                       or keys >= settings.payment_min_keys):
            return "payment"
        scaffold = hits >= settings.two_min_hits or keys >= settings.min_keys
        if scaffold and network >= settings.network_min_hits:
            return "two_families"
        if not one_family or touches < settings.repeat_min_touches:
            return None
        share = touches / max(sums["requests"], 1.0)
        if keys >= settings.expand_min_keys and share >= settings.expand_min_share \
                and concealment >= settings.expand_min_concealment:
            return "expand"
        if keys >= settings.min_keys and share >= settings.repeat_min_share:
            return "repeat"
        return None

    def _concealment(self, facts: AccountInfo | None, sums: dict[str, float], now: float
                     ) -> float:
        """The account's concealment evidence, by batch's own signals (``risky_signup``,
        ``fresh_account``, ``ip_rotation``) combined as batch does (noisy-OR of weighted
        strengths). Age is measured at this request, not the first (never more fresh)."""
        from distillwatch.score.scorer import noisy_or

        created = facts.created_at if facts else None
        profile = {
            "signup_channel": np.array([facts.signup_channel if facts else None], object),
            "verified": np.array([facts.verified if facts else None], object),
            "age_days_at_first_seen": np.array(
                [(now - created) / 86400.0 if created is not None else np.nan]),
            "exchanges": np.array([sums["requests"]]),
            "distinct_ips": np.array([sums["ips"]]),
        }
        weighted = [signal.weight * signal.strength(profile, self.settings.concealment_prior)[1]
                    for signal in _CONCEALMENT]
        return float(noisy_or(weighted)[0])

    async def _judge(self, plan: _Plan, sums: dict[str, float], indicators: Indicators
                     ) -> tuple[Decision, str] | None:
        settings, subject, item, facts = self.settings, plan.subject, plan.item, plan.facts
        now, campaigns, paying = item.ts, plan.campaigns, plan.paying
        one_family = not self._protected(item.account_id, indicators)
        concealment = self._concealment(facts, sums, now) if campaigns else 0.0
        best: tuple[int, float, str, str] | None = None  # (rank, evidence, campaign, rule)
        for campaign in campaigns:
            rule = self._rule(sums, campaign, campaign in paying, one_family, concealment)
            if rule is None:
                continue
            candidate = (RANK[getattr(settings, f"decision_{rule}")],
                         sums[f"keys:{campaign}"] + sums[f"net:{campaign}"], campaign, rule)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is None:
            return None
        rank, _, campaign, rule = best
        held = self._decided.get(subject)
        if held is not None and held[0] >= rank and held[1] > now:
            return None
        existing = await self.counters.get_decision(subject)
        if existing is not None and not existing.expired(now) and (
                existing.source == "admin" or existing.rank >= rank):
            return None
        reason = self._reason(item, indicators, campaign, rule, sums, campaign in paying,
                              facts, concealment)
        decision = Decision(getattr(settings, f"decision_{rule}"), reason=reason,
                            source="detector", campaign_id=campaign,
                            expires_at=now + settings.ttl_s)
        await self.counters.set_decision(subject, decision)
        if len(self._decided) >= _DECIDED_CACHE:
            self._decided = {s: held for s, held in self._decided.items() if held[1] > now}
        self._decided[subject] = (rank, now + settings.ttl_s)
        self.stats[f"decisions_{decision.kind}"] += 1
        return decision, rule

    def _reason(self, item: _Evidence, indicators: Indicators, campaign: str, rule: str,
                sums: dict[str, float], pays: bool, facts: AccountInfo | None,
                concealment: float) -> str:
        """The decision's evidence in words and figures (fingerprints, never text)."""
        info = indicators.campaigns.get(campaign)
        hits, network = sums[f"tpl:{campaign}"], sums[f"net:{campaign}"]
        seen = ("an account the scan did not see" if indicators.scanned(item.account_id) is None
                else "an account the scan saw outside any campaign")
        parts = [f"{rule.replace('_', ' ')} rule: campaign {campaign}, {seen}"]
        if pays and facts is not None:
            parts.append(f"pays with {facts.payment_fingerprint}, shared by the campaign's "
                         "accounts")
        hours = self.settings.window_s / 3600
        touches = sums[f"touch:{campaign}"]
        if touches:
            keys = sorted(key_fingerprint(k) for k, (_, owners, _) in item.keys.items()
                          if campaign in owners)
            shown = ", ".join(keys[:3]) + (" …" if len(keys) > 3 else "")
            parts.append(f"{touches:.0f} of its {sums['requests']:.0f} requests in {hours:g} h "
                         f"carry the campaign's scaffolds ({hits:.0f} of them several keys at "
                         f"once; key weight {sums[f'keys:{campaign}']:.1f} of the campaign's "
                         f"{indicators.template_count(campaign)} fingerprints: {shown})")
        if network:
            places = sorted(item.places.get(campaign, ()))
            parts.append(f"{network:.0f} requests in {hours:g} h from the campaign's networks "
                         f"({', '.join(places[:3])})")
        if rule == "expand" or concealment:
            parts.append(f"concealment {concealment:.2f} (sign-up "
                         f"{facts.signup_channel if facts else 'unknown'}, "
                         f"{'verified' if facts and facts.verified else 'unverified'}; "
                         f"{sums['ips']:.0f} client IPs for {sums['requests']:.0f} requests)")
        pace = (f"{sums['hour']:.0f} requests in the last "
                f"{self.settings.volume_window_s / 3600:g} h")
        if info is not None and info.per_account_day:
            pace += f" (the campaign's accounts average {info.per_account_day:.0f} a day)"
        if "key_hour" in sums:
            pace += f"; its API key {sums['key_hour']:.0f}"
        if "ip_hour" in sums:
            pace += f"; its client IP {sums['ip_hour']:.0f}"
        parts.append(pace)
        return "; ".join(parts)
