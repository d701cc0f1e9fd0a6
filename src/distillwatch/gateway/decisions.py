"""Decisions the gateway enforces, their precedence, the scan they come from, and the policy.

A :class:`Decision` applies to one *subject*: ``account:<id>``, ``key:<key id>`` (the keyed
hash of an API key, never the key) or ``ip:<address>``. It comes from one of three sources:

- ``scan``: the ``decision`` column of a scan's ``accounts.jsonl`` (``load_scan``);
- ``detector``: the online matcher, which sets decisions through the state object;
- ``admin``: the admin API. An admin decision overrides the others, ``allow`` included (an
  explicit ``allow`` is an allow-list entry).

plus ``limit``, a throttle made on the spot when a sliding-window rate limit is exceeded.
Between scan, detector and limit the stronger decision wins (``block`` > ``verify`` >
``throttle`` > ``monitor`` > ``allow``). :func:`resolve` is that rule.

The gateway policy (``conf/gateway.yaml``, or ``--policy FILE``) is read by
:func:`load_policy` into a :class:`GatewayPolicy`; unknown keys are an error naming the key
and the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import yaml

from distillwatch.exceptions import DistillwatchConfigError, DistillwatchInputError

DECISION_KINDS = ("allow", "monitor", "throttle", "verify", "block")
RANK = {kind: rank for rank, kind in enumerate(DECISION_KINDS)}
SOURCES = ("scan", "detector", "admin", "limit")
SUBJECT_KINDS = ("account", "key", "ip")
REFUSING = frozenset({"throttle", "verify", "block"})


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a subject's requests, and why.

    Args:
        kind: One of :data:`DECISION_KINDS`.
        reason: Why (shown in the admin API and metrics, never sent to the client).
        source: ``scan``, ``detector``, ``admin`` or ``limit``.
        campaign_id: The campaign behind it, if any.
        expires_at: Epoch seconds after which it no longer applies (None: never).

    Raises:
        DistillwatchConfigError: On an unknown kind or source.
    """

    kind: str
    reason: str = ""
    source: str = "admin"
    campaign_id: str | None = None
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in RANK:
            raise DistillwatchConfigError(
                f"Unknown decision {self.kind!r}; use one of {', '.join(DECISION_KINDS)}")
        if self.source not in SOURCES:
            raise DistillwatchConfigError(
                f"Unknown decision source {self.source!r}; use one of {', '.join(SOURCES)}")

    @property
    def rank(self) -> int:
        """Strength: 0 for ``allow`` up to 4 for ``block``."""
        return RANK[self.kind]

    def expired(self, now: float) -> bool:
        """True once ``expires_at`` has passed."""
        return self.expires_at is not None and now >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the admin API's and Redis's representation)."""
        return {"kind": self.kind, "reason": self.reason, "source": self.source,
                "campaign_id": self.campaign_id, "expires_at": self.expires_at}

    def to_json(self) -> bytes:
        """:meth:`to_dict` as JSON bytes."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """The inverse of :meth:`to_dict` (unknown keys are ignored: newer replicas may add)."""
        return cls(kind=data["kind"], reason=data.get("reason") or "",
                   source=data.get("source") or "admin", campaign_id=data.get("campaign_id"),
                   expires_at=data.get("expires_at"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Decision:
        """The inverse of :meth:`to_json`."""
        return cls.from_dict(orjson.loads(raw))


def subject(kind: str, value: str) -> str:
    """``account:acct-1`` and the like.

    Raises:
        DistillwatchConfigError: On an unknown subject kind.
    """
    if kind not in SUBJECT_KINDS:
        raise DistillwatchConfigError(
            f"Unknown subject kind {kind!r}; use one of {', '.join(SUBJECT_KINDS)}")
    return f"{kind}:{value}"


def parse_subject(text: str) -> tuple[str, str]:
    """``("account", "acct-1")`` for ``"account:acct-1"``.

    Raises:
        DistillwatchConfigError: If it has no known ``kind:`` prefix or an empty value.
    """
    kind, _, value = text.partition(":")
    if kind not in SUBJECT_KINDS or not value:
        raise DistillwatchConfigError(
            f"Subject {text!r} must be account:<id>, key:<key id> or ip:<address>")
    return kind, value


def stronger(first: Decision | None, second: Decision | None) -> Decision | None:
    """The stronger of two decisions (the first on a tie; None counts as nothing)."""
    if first is None:
        return second
    if second is None or first.rank >= second.rank:
        return first
    return second


def resolve(admin: Iterable[Decision | None], others: Iterable[Decision | None],
            now: float) -> Decision | None:
    """The decision that applies, given the live decisions of every subject of a request.

    Admin decisions override all others (the strongest admin decision when several subjects
    have one); otherwise the strongest of the scan, detector and limit decisions applies.
    Expired decisions are skipped.
    """
    chosen = None
    for decision in admin:
        if decision is not None and not decision.expired(now):
            chosen = stronger(chosen, decision)
    if chosen is not None:
        return chosen
    for decision in others:
        if decision is not None and not decision.expired(now):
            chosen = stronger(chosen, decision)
    return chosen


@dataclass(frozen=True)
class ScanDecisions:
    """What a scan's output folder says: a decision per account, and its campaigns.

    Attributes:
        decisions: ``account:<id>`` → :class:`Decision` (source ``scan``); ``allow`` rows are
            left out (allow is what no decision means).
        campaigns: The ``campaigns`` list of ``campaigns.json`` (empty without that file).
        accounts: How many account lines were read.
    """

    decisions: dict[str, Decision]
    campaigns: list[dict]
    accounts: int

    @property
    def counts(self) -> dict[str, int]:
        """Number of decisions per kind."""
        out: dict[str, int] = {}
        for decision in self.decisions.values():
            out[decision.kind] = out.get(decision.kind, 0) + 1
        return out


def scan_files(scan_dir: Path) -> tuple[Path, Path]:
    """``accounts.jsonl`` and ``campaigns.json`` of a scan output folder."""
    return scan_dir / "accounts.jsonl", scan_dir / "campaigns.json"


def load_scan(scan_dir: Path) -> ScanDecisions:
    """Read the decisions of a scan output folder (``scan --out DIR``).

    Args:
        scan_dir: The folder; it must hold ``accounts.jsonl``; ``campaigns.json`` is optional.

    Returns:
        The decisions (``allow`` rows left out) and campaigns.

    Raises:
        DistillwatchInputError: If ``accounts.jsonl`` is missing or a line is malformed
            (names the file and line).
    """
    accounts_path, campaigns_path = scan_files(scan_dir)
    if not accounts_path.is_file():
        raise DistillwatchInputError(
            "No accounts.jsonl: --scan must name the output folder of `distillwatch scan "
            "--out DIR`", str(scan_dir))
    decisions: dict[str, Decision] = {}
    count = 0
    with accounts_path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{accounts_path}:{number}"
            try:
                row = orjson.loads(line)
                account, kind = row["account_id"], row.get("decision") or "allow"
            except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                raise DistillwatchInputError(
                    f"Not an accounts.jsonl line (JSON object with account_id and decision): "
                    f"{error}", where) from None
            if kind not in RANK:
                raise DistillwatchInputError(f"Unknown decision {kind!r}", where)
            count += 1
            if kind == "allow":
                continue
            reasons = row.get("reasons") or []
            decisions[f"account:{account}"] = Decision(
                kind, reason=",".join(reasons) if isinstance(reasons, list) else str(reasons),
                source="scan", campaign_id=row.get("campaign_id"))
    campaigns: list[dict] = []
    if campaigns_path.is_file():
        try:
            campaigns = orjson.loads(campaigns_path.read_bytes()).get("campaigns") or []
        except (orjson.JSONDecodeError, AttributeError) as error:
            raise DistillwatchInputError(f"campaigns.json is not a scan's campaigns document: "
                                         f"{error}", str(campaigns_path)) from None
    return ScanDecisions(decisions, campaigns, count)


# --- the gateway policy --------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_requests`` forwarded requests per subject in any ``window_s`` seconds."""

    window_s: float
    max_requests: int


@dataclass(frozen=True)
class GatewayPolicy:
    """The gateway's policy file (``conf/gateway.yaml`` documents every key).

    Attributes:
        retry_after_s: ``Retry-After`` of a throttle decision's 429.
        verification_url: The verification step a ``verify`` 403 names.
        fail_open: On Redis loss, True serves from the last decisions read; False answers 503.
        scan_reload_s: How often the ``--scan`` files are checked for changes.
        redis_timeout_s: Timeout of every Redis call.
        redis_refresh_s: How often a replica checks that its decision cache is current.
        redis_flush_s: How often a replica adds its request counts to the shared counters.
        limit_buckets: Buckets per sliding window (more: finer, costlier).
        limits: ``account`` / ``key`` / ``ip`` → their :class:`RateLimit` list.
        withhold_reasoning: For ``monitor`` subjects, strip reasoning / thinking content.
        connect_timeout_s: Upstream connect timeout.
        read_timeout_s: Upstream read timeout (between bytes, not for the whole answer).
        max_connections: Upstream connections open at most (more requests wait).
        max_idle_connections: Idle upstream connections kept for reuse.
        keepalive_expiry_s: How long an idle upstream connection is reused (keep it below
            the upstream's own keep-alive timeout).
        rotate_mb: A log file is closed and a new one opened past this size (compressed).
        rotate_s: ... or past this age.
        queue_size: Exchanges waiting to be written; past it they are dropped and counted.
        compress_level: gzip level of the log (1 fastest, 9 smallest).
        log_refused: Also log requests refused by a decision (without a response).
        writer_nice: How much lower than the request path the log's writer thread runs
            (Linux nice steps, 0 to 19): the scheduler then lets the event loop, woken by a
            request, run first instead of waiting behind the writer.
    """

    retry_after_s: int = 60
    verification_url: str = "https://example.com/verify-account"
    fail_open: bool = True
    scan_reload_s: float = 5.0
    redis_timeout_s: float = 0.25
    redis_refresh_s: float = 0.5
    redis_flush_s: float = 0.05
    limit_buckets: int = 10
    limits: dict[str, tuple[RateLimit, ...]] = field(default_factory=dict)
    withhold_reasoning: bool = False
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 600.0
    max_connections: int = 512
    max_idle_connections: int = 64
    keepalive_expiry_s: float = 4.0
    rotate_mb: float = 64.0
    rotate_s: float = 3600.0
    queue_size: int = 10_000
    compress_level: int = 1
    log_refused: bool = False
    writer_nice: int = 10


# YAML section -> {key: (attribute, type)}
_SCHEMA: dict[str | None, dict[str, tuple[str, type]]] = {
    None: {"retry_after_s": ("retry_after_s", int),
           "verification_url": ("verification_url", str),
           "fail_open": ("fail_open", bool), "scan_reload_s": ("scan_reload_s", float)},
    "redis": {"timeout_s": ("redis_timeout_s", float), "refresh_s": ("redis_refresh_s", float),
              "flush_s": ("redis_flush_s", float)},
    "monitor": {"withhold_reasoning": ("withhold_reasoning", bool)},
    "upstream": {"connect_timeout_s": ("connect_timeout_s", float),
                 "read_timeout_s": ("read_timeout_s", float),
                 "max_connections": ("max_connections", int),
                 "max_idle_connections": ("max_idle_connections", int),
                 "keepalive_expiry_s": ("keepalive_expiry_s", float)},
    "sink": {"rotate_mb": ("rotate_mb", float), "rotate_s": ("rotate_s", float),
             "queue_size": ("queue_size", int), "compress_level": ("compress_level", int),
             "log_refused": ("log_refused", bool), "writer_nice": ("writer_nice", int)},
}
POLICY_KEYS = sorted([*(k for k in _SCHEMA[None]), "limits", "limits.buckets",
                      *(f"limits.{s}" for s in SUBJECT_KINDS),
                      *(f"{section}.{key}" for section, keys in _SCHEMA.items() if section
                        for key in keys)])


def _typed(value: Any, kind: type, where: str, source: str) -> Any:
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int | float) and not isinstance(value, bool) if kind is float else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, kind))
    if not ok:
        raise DistillwatchConfigError(f"'{where}' must be {kind.__name__}, not {value!r}", source)
    if kind in (int, float) and (value < 0 or not math.isfinite(value)):
        raise DistillwatchConfigError(f"'{where}' must be a finite number ≥ 0", source)
    return kind(value)


def _limits(section: Any, source: str) -> tuple[int | None, dict[str, tuple[RateLimit, ...]]]:
    if not isinstance(section, dict):
        raise DistillwatchConfigError("'limits' must be a mapping", source)
    buckets = None
    out: dict[str, tuple[RateLimit, ...]] = {}
    for key, value in section.items():
        if key == "buckets":
            buckets = _typed(value, int, "limits.buckets", source)
            if not 1 <= buckets <= 120:
                raise DistillwatchConfigError("'limits.buckets' must be 1 to 120", source)
            continue
        if key not in SUBJECT_KINDS:
            raise DistillwatchConfigError(
                f"Unknown key 'limits.{key}'; use buckets, {', '.join(SUBJECT_KINDS)}", source)
        if not isinstance(value, list):
            raise DistillwatchConfigError(
                f"'limits.{key}' must be a list of {{window_s, max_requests}}", source)
        rules = []
        for index, rule in enumerate(value):
            where = f"limits.{key}[{index}]"
            if not isinstance(rule, dict) or set(rule) != {"window_s", "max_requests"}:
                raise DistillwatchConfigError(
                    f"'{where}' must have exactly window_s and max_requests", source)
            window = _typed(rule["window_s"], float, f"{where}.window_s", source)
            if window <= 0:
                raise DistillwatchConfigError(f"'{where}.window_s' must be > 0", source)
            rules.append(RateLimit(window, _typed(rule["max_requests"], int,
                                                  f"{where}.max_requests", source)))
        out[key] = tuple(rules)
    return buckets, out


def policy_from_dict(data: dict[str, Any], source: str = "policy") -> GatewayPolicy:
    """A :class:`GatewayPolicy` from a parsed policy document (strict: unknown keys raise).

    Raises:
        DistillwatchConfigError: Naming the unknown or ill-typed key and ``source``.
    """
    if not isinstance(data, dict):
        raise DistillwatchConfigError("A gateway policy must be a YAML mapping", source)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "limits":
            buckets, values["limits"] = _limits(value, source)
            if buckets is not None:
                values["limit_buckets"] = buckets
        elif key in _SCHEMA[None]:
            attribute, kind = _SCHEMA[None][key]
            values[attribute] = _typed(value, kind, key, source)
        elif key in _SCHEMA:
            if not isinstance(value, dict):
                raise DistillwatchConfigError(f"'{key}' must be a mapping", source)
            for sub, sub_value in value.items():
                if sub not in _SCHEMA[key]:
                    raise DistillwatchConfigError(
                        f"Unknown key '{key}.{sub}'; known: {', '.join(_SCHEMA[key])}", source)
                attribute, kind = _SCHEMA[key][sub]
                values[attribute] = _typed(sub_value, kind, f"{key}.{sub}", source)
        else:
            raise DistillwatchConfigError(
                f"Unknown key '{key}'; known: {', '.join(sorted([*_SCHEMA[None], 'limits', *(s for s in _SCHEMA if s)]))}",  # noqa: E501
                source)
    if not 1 <= values.get("compress_level", 6) <= 9:
        raise DistillwatchConfigError("'sink.compress_level' must be 1 to 9", source)
    if not 0 <= values.get("writer_nice", 10) <= 19:
        raise DistillwatchConfigError("'sink.writer_nice' must be 0 to 19", source)
    if values.get("redis_timeout_s", 0.25) <= 0:
        raise DistillwatchConfigError("'redis.timeout_s' must be > 0", source)
    known = {f.name for f in fields(GatewayPolicy)}
    return GatewayPolicy(**{k: v for k, v in values.items() if k in known})


def load_policy(path: Path | None = None) -> GatewayPolicy:
    """The policy in ``path``, or the built-in ``conf/gateway.yaml``.

    Raises:
        DistillwatchConfigError: If the file is missing, not YAML, or has unknown keys.
    """
    builtin = "built-in conf/gateway.yaml"
    data = _read_yaml(
        resources.files("distillwatch").joinpath("conf/gateway.yaml").read_text("utf-8"),
        builtin)
    if path is None:
        return policy_from_dict(data, builtin)
    if not path.is_file():
        raise DistillwatchConfigError(f"Policy file {path} does not exist")
    given = _read_yaml(path.read_text(encoding="utf-8"), str(path))
    # Check the file alone first, so an error names the file, then lay it over the default.
    policy_from_dict(given, str(path))
    return policy_from_dict(_merge(data, given), str(path))


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DistillwatchConfigError(f"Policy is not valid YAML: {error}", source) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DistillwatchConfigError("A gateway policy must be a YAML mapping", source)
    return data


def _merge(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    # Mappings merge key by key; anything else (lists of limits included) replaces.
    out = dict(base)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = _merge(base[key], value)
        else:
            out[key] = value
    return out
