"""The LiteLLM proxy adapter: distillwatch's decisions and Exchange log inside a LiteLLM proxy.

For providers that already run the LiteLLM proxy instead of ``distillwatch serve``. One
guardrail class, declared in LiteLLM's ``config.yaml`` (``docs/litellm.md`` has a complete
example)::

    guardrails:
      - guardrail_name: distillwatch
        litellm_params:
          guardrail: distillwatch.gateway.litellm.DistillwatchGuardrail
          mode: [pre_call, post_call]   # pre_call is required: refusals before any upstream
                                        # spend; post_call: withhold_reasoning (optional)
          default_on: true
          scan_dir: /srv/distillwatch/scan       # any setting below; or its environment variable
          redis_url: redis://10.0.0.3:6379/0

It is built from the same components as the gateway (:class:`~distillwatch.gateway.app.Gateway`:
the state, the scan loader and reloader, the online detector, the refusal bodies, the Exchange
sink), so one Redis carries one set of decisions for ``distillwatch serve`` replicas and LiteLLM
proxies alike: a decision set through ``serve``'s admin API applies in LiteLLM within
milliseconds.

At each hook:

- ``async_pre_call_hook`` (before LiteLLM calls the upstream): the account is a field of
  LiteLLM's ``user_api_key_dict`` (``account_field``: ``user_id`` by default, or ``team_id``,
  ``org_id``, ``end_user_id``; several, comma-separated, are tried in order); the key id is the
  keyed hash of ``user_api_key_dict.token`` (LiteLLM's SHA-256 of the API key: the key itself is
  never seen here, nor logged); the client IP is LiteLLM's TCP peer walked back through
  ``X-Forwarded-For`` over ``trusted_proxies`` only (see below). The decision in force then
  applies: ``allow`` / ``monitor`` pass, ``throttle`` raises ``fastapi.HTTPException(429)``
  with ``Retry-After``, ``verify`` / ``block`` raise ``HTTPException(403)`` whose body names the
  verification step (LiteLLM answers them in the endpoint's error shape, never as a 500). A
  request that passes is handed to the online detector (``OnlineDetector.observe``: enqueued,
  never awaited) and remembered under LiteLLM's call id for the log.
- ``async_post_call_success_hook`` / ``async_post_call_streaming_iterator_hook`` (run by
  LiteLLM only when ``mode`` includes ``post_call``): for a ``monitor`` subject under the
  policy's ``monitor.withhold_reasoning``, the answer's reasoning / thinking text is blanked
  (chat ``reasoning_content`` and thinking blocks, Responses reasoning items, Anthropic
  ``thinking`` blocks; streamed reasoning deltas are dropped), as ``serve`` does. Every other
  answer passes through untouched.
- ``async_log_success_event`` / ``async_log_failure_event`` (after the answer; LiteLLM registers
  every guardrail as a logging callback, so no ``callbacks:`` entry is needed): the request
  remembered at pre-call plus ``kwargs["standard_logging_object"]["response"]`` go to the
  gateway's Exchange sink, in the Exchange schema. Requests refused here are not logged unless
  the policy's ``sink.log_refused`` says so, as in the gateway.

Failures of the adapter itself (a bug, an unreadable request) never take the proxy down: they
are logged and the request passes under the policy's ``fail_open`` (the default), or is refused
with 503 under fail-closed. Redis loss is the state's business, as in the gateway: fail-open
serves from the local mirror, fail-closed answers 503.

The client IP: LiteLLM's ``general_settings.use_x_forwarded_for`` believes the header as sent;
leave it off (the adapter then ignores the address LiteLLM derives from the header and knows no
IP). Note also that uvicorn, which runs LiteLLM, rewrites the peer from ``X-Forwarded-For`` for
the peers listed in ``$FORWARDED_ALLOW_IPS`` (default ``127.0.0.1,::1``): set it to the same
proxies as ``trusted_proxies``, or to an address no peer has to turn that off.

Settings (``litellm_params`` of the guardrail win over the environment):

=================== ================================== =============================================
parameter           environment                        what
=================== ================================== =============================================
scan_dir            DISTILLWATCH_SCAN_DIR              output folder of ``distillwatch scan``
policy_file         DISTILLWATCH_POLICY_FILE           gateway policy YAML (``conf/gateway.yaml``)
redis_url           DISTILLWATCH_REDIS_URL             share state with other replicas / ``serve``
redis_prefix        DISTILLWATCH_REDIS_PREFIX          key prefix; the same as ``serve``'s
key_file            DISTILLWATCH_KEY_FILE              fingerprint key file (else
                                                       ``$DISTILLWATCH_FINGERPRINT_KEY``)
log_dir             DISTILLWATCH_LOG_DIR               Exchange log folder (none: no log)
trusted_proxies     DISTILLWATCH_TRUSTED_PROXIES       CIDRs, a list or comma-separated
account_field       DISTILLWATCH_ACCOUNT_FIELD         ``user_id`` (default), ``team_id``, ...
accounts            DISTILLWATCH_ACCOUNTS              account files for the detector
stix                DISTILLWATCH_STIX                  partner STIX bundles for the detector
detector_settings   DISTILLWATCH_DETECTOR_SETTINGS     detector YAML (``conf/detector.yaml``)
detector            DISTILLWATCH_DETECTOR              ``false`` turns the online matcher off
=================== ================================== =============================================

Importing this module needs no LiteLLM: only the guardrail class, built on first access of
``DistillwatchGuardrail``, imports ``litellm`` and ``fastapi``. :class:`LiteLLMEnforcer` holds
everything else and is what the unit tests drive. Like ``app.py`` this is a service module (it
reads environment variables); the library never imports it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.gateway.app import Gateway, GatewayConfig, default_detector
from distillwatch.gateway.decisions import REFUSING, load_policy
from distillwatch.gateway.errors import (
    SseWithholder,
    blank_reasoning_item,
    blank_thinking_block,
    withhold_event,
    withhold_json,
)
from distillwatch.gateway.identity import key_id_of_digest
from distillwatch.gateway.sink import Seen
from distillwatch.ingest.formats import API_BY_CALL_TYPE  # other call types: checked, not logged

logger = logging.getLogger(__name__)

ACCOUNT_FIELDS = ("user_id", "team_id", "org_id", "end_user_id")
# The gateway's GatewayConfig wants an upstream; LiteLLM does the forwarding, so none is used.
_NO_UPSTREAM = "http://litellm-adapter.invalid"
# Keys LiteLLM adds to the request body it hands to hooks, or that carry credentials.
_DROPPED_KEYS = frozenset({
    "secret_fields", "proxy_server_request", "litellm_logging_obj", "litellm_call_id",
    "litellm_metadata", "guardrail_to_apply", "api_key", "headers", "extra_headers",
    "provider_specific_header", "azure_ad_token", "aws_access_key_id", "aws_secret_access_key",
    "aws_session_token", "vertex_credentials", "client_secret",
})
_PENDING_MAX = 50_000
_PENDING_TTL_S = 3600.0
_ERROR_LOG_EVERY_S = 10.0
_START_TIMEOUT_S = 10.0
_FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "function_call": "tool_use", "content_filter": "refusal"}

_ENV = {"scan_dir": "DISTILLWATCH_SCAN_DIR", "policy_file": "DISTILLWATCH_POLICY_FILE",
        "redis_url": "DISTILLWATCH_REDIS_URL", "redis_prefix": "DISTILLWATCH_REDIS_PREFIX",
        "key_file": "DISTILLWATCH_KEY_FILE", "log_dir": "DISTILLWATCH_LOG_DIR",
        "trusted_proxies": "DISTILLWATCH_TRUSTED_PROXIES",
        "account_field": "DISTILLWATCH_ACCOUNT_FIELD", "accounts": "DISTILLWATCH_ACCOUNTS",
        "stix": "DISTILLWATCH_STIX", "detector_settings": "DISTILLWATCH_DETECTOR_SETTINGS",
        "detector": "DISTILLWATCH_DETECTOR"}
PARAMS = tuple(_ENV)


# --- settings --------------------------------------------------------------------------------


def _paths(value: Any, name: str) -> tuple[Path, ...]:
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise DistillwatchConfigError(f"'{name}' must be a path, a list of paths or a "
                                      f"comma-separated string, not {value!r}")
    return tuple(Path(str(item).strip()) for item in items if str(item).strip())


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise DistillwatchConfigError(f"'{name}' must be a list or a comma-separated string, "
                                      f"not {value!r}")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise DistillwatchConfigError(f"'{name}' must be true or false, not {value!r}")


@dataclass(frozen=True)
class AdapterSettings:
    """What the adapter enforces and logs (see the module docstring for each setting).

    Build it with :meth:`from_sources`; paths are checked when the gateway is built.
    """

    scan_dir: Path | None = None
    policy_file: Path | None = None
    redis_url: str | None = None
    redis_prefix: str = "distillwatch"
    key_file: Path | None = None
    log_dir: Path | None = None
    trusted_proxies: tuple[str, ...] = ()
    account_fields: tuple[str, ...] = ("user_id",)
    accounts: tuple[Path, ...] = ()
    stix: tuple[Path, ...] = ()
    detector_settings: Path | None = None
    detector: bool = True

    @classmethod
    def from_sources(cls, params: Mapping[str, Any] | None = None,
                     environ: Mapping[str, str] | None = None) -> AdapterSettings:
        """Settings from the guardrail's ``litellm_params`` over the environment.

        Args:
            params: The guardrail's parameters (other LiteLLM parameters are ignored).
            environ: Environment variables (default ``os.environ``).

        Raises:
            DistillwatchConfigError: On a value of the wrong kind or an unknown account field,
                naming the parameter.
        """
        environ = os.environ if environ is None else environ
        params = params or {}
        raw: dict[str, Any] = {}
        for name, variable in _ENV.items():
            value = params.get(name)
            if value is None and environ.get(variable):
                value = environ[variable]
            raw[name] = value

        def path(name: str) -> Path | None:
            value = raw[name]
            return Path(str(value)) if value not in (None, "") else None

        fields = _strings(raw["account_field"], "account_field") or ("user_id",)
        unknown = [f for f in fields if f not in ACCOUNT_FIELDS]
        if unknown:
            raise DistillwatchConfigError(
                f"Unknown account_field {', '.join(unknown)}; use one or more of "
                f"{', '.join(ACCOUNT_FIELDS)} (comma-separated, tried in order)")
        return cls(scan_dir=path("scan_dir"), policy_file=path("policy_file"),
                   redis_url=str(raw["redis_url"]) if raw["redis_url"] else None,
                   redis_prefix=str(raw["redis_prefix"] or "distillwatch"),
                   key_file=path("key_file"), log_dir=path("log_dir"),
                   trusted_proxies=_strings(raw["trusted_proxies"], "trusted_proxies"),
                   account_fields=fields, accounts=_paths(raw["accounts"], "accounts"),
                   stix=_paths(raw["stix"], "stix"),
                   detector_settings=path("detector_settings"),
                   detector=True if raw["detector"] in (None, "") else _flag(raw["detector"],
                                                                            "detector"))


def gateway_config(settings: AdapterSettings) -> GatewayConfig:
    """The gateway configuration the adapter's components are built from.

    Raises:
        DistillwatchConfigError: On a missing policy, key, account or STIX file.
    """
    from distillwatch.cli.ingest import fingerprint_key

    for path in (*settings.accounts, *settings.stix):
        if not path.is_file():
            raise DistillwatchConfigError(f"No such file: {path}")
    key, unkeyed = fingerprint_key(settings.key_file)
    if unkeyed:
        logger.warning("distillwatch: no fingerprint key (key_file / "
                       "$DISTILLWATCH_FINGERPRINT_KEY): key ids and fingerprints are unkeyed "
                       "and will not match a keyed scan")
    return GatewayConfig(
        upstream=_NO_UPSTREAM, policy=load_policy(settings.policy_file),
        scan_dir=settings.scan_dir, accounts=settings.accounts, stix=settings.stix,
        detector_settings=settings.detector_settings, redis_url=settings.redis_url,
        redis_prefix=settings.redis_prefix, trusted_proxies=settings.trusted_proxies,
        log_dir=settings.log_dir, key=key,
        detector=default_detector if settings.detector else None)


# --- what LiteLLM hands the hooks --------------------------------------------------------------


def client_body(data: Mapping[str, Any]) -> dict[str, Any]:
    """The request body as the client sent it, from the ``data`` LiteLLM hands its hooks.

    Drops what LiteLLM adds (its metadata, call id, logging object, the raw headers in
    ``secret_fields``, keys starting ``litellm_`` / ``_litellm``) and any credential the body
    may carry (``api_key`` and the like). On the routes where LiteLLM keeps its own metadata
    in ``litellm_metadata`` (Anthropic, Responses) the client's ``metadata`` is kept.
    """
    own_metadata = "metadata" if "litellm_metadata" not in data else None
    out = {}
    for name, value in data.items():
        if (name in _DROPPED_KEYS or name == own_metadata or name.startswith(
                ("litellm_", "_litellm")) or name.endswith("_api_key") or "secret" in name):
            continue
        out[name] = value
    return out


def _metadata(data: Mapping[str, Any]) -> Mapping[str, Any]:
    found = data.get("litellm_metadata")
    if not isinstance(found, Mapping):
        found = data.get("metadata")
    return found if isinstance(found, Mapping) else {}


def _request_headers(data: Mapping[str, Any]) -> Mapping[str, Any]:
    request = data.get("proxy_server_request")
    headers = request.get("headers") if isinstance(request, Mapping) else None
    return headers if isinstance(headers, Mapping) else {}


def anthropic_message(response: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages answer from the OpenAI chat shape LiteLLM logs it in.

    LiteLLM's standard logging object carries ``/v1/messages`` answers converted to a chat
    completion (streamed ones reassembled); the Exchange of an Anthropic call is built from the
    Anthropic shape, so the conversion is undone: text and ``reasoning_content`` (as a
    ``thinking`` block), ``stop_reason``, ``usage`` in input / output tokens.
    """
    if response.get("type") == "message" or "content" in response:
        return dict(response)  # already Anthropic-shaped
    choice = (response.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    content: list[dict] = []
    if message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"]})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = (call or {}).get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": function.get("arguments")})
    usage = response.get("usage") or {}
    finish = choice.get("finish_reason")
    return {"id": response.get("id"), "type": "message", "role": "assistant",
            "model": response.get("model"), "content": content,
            "stop_reason": _FINISH_TO_STOP.get(finish, finish),
            "usage": {"input_tokens": usage.get("prompt_tokens"),
                      "output_tokens": usage.get("completion_tokens")}}


@dataclass(slots=True)
class _Pending:
    """A request that passed the pre-call hook, waiting for its answer to be logged."""

    api: str
    ts: float
    account: str | None
    key_id: str | None
    ip: str | None
    user_agent: str | None
    body: bytes
    parsed: dict


def _bounded_put(table: dict, key: str, value: Any, ts_of: Callable[[Any], float]) -> None:
    """``table[key] = value``, first forgetting the oldest entries (insertion order) past
    ``_PENDING_MAX`` entries or ``_PENDING_TTL_S`` seconds: calls whose answer never came."""
    now = ts_of(value)
    while table and (len(table) >= _PENDING_MAX or
                     now - ts_of(next(iter(table.values()))) > _PENDING_TTL_S):
        del table[next(iter(table))]
    table[key] = value


# --- withhold_reasoning on LiteLLM's answer objects ---------------------------------------------

# Reasoning fields of LiteLLM's chat messages and deltas (its own, and the providers').
_REASONING_FIELDS = ("reasoning_content", "thinking_blocks", "reasoning", "reasoning_details")


def _drop_reasoning(holder: Any) -> bool:
    if isinstance(holder, dict):
        return bool([holder.pop(name) for name in _REASONING_FIELDS
                     if holder.get(name) is not None])
    changed = False
    for name in _REASONING_FIELDS:
        if getattr(holder, name, None) is not None:
            try:
                delattr(holder, name)  # LiteLLM's Message leaves unset fields out of its JSON
            except AttributeError:
                setattr(holder, name, None)
            changed = True
    return changed


def withhold_answer(api: str, response: Any) -> bool:
    """Blank the reasoning / thinking text of one LiteLLM answer in place (a ``ModelResponse``
    or its streamed chunk, a ``ResponsesAPIResponse``, an Anthropic message as a dict or an
    object); True if any was there."""
    if isinstance(response, dict):
        return withhold_json(api, response)
    changed = False
    for item in getattr(response, "output", None) or ():  # the Responses API
        changed |= blank_reasoning_item(item)
    for choice in getattr(response, "choices", None) or ():
        for holder in (getattr(choice, "message", None), getattr(choice, "delta", None)):
            if holder is not None:
                changed |= _drop_reasoning(holder)
    for block in getattr(response, "content", None) or ():  # an Anthropic message
        changed |= blank_thinking_block(block)
    return changed


def withhold_chunk(api: str, chunk: Any) -> bool:
    """Blank the reasoning of one streamed chunk (an event dict or LiteLLM's chunk object) in
    place; False: drop the chunk, it carried reasoning only."""
    if isinstance(chunk, dict):
        kept = withhold_event(api, chunk)  # blanks in place, or None to drop
        return kept is not None
    kind = getattr(chunk, "type", None)
    if not isinstance(kind, str):  # a chat chunk: choices with deltas
        withhold_answer(api, chunk)
        return True
    if kind.startswith(("response.reasoning_text.", "response.reasoning_summary_text.")):
        if kind.endswith(".delta"):
            return False
        chunk.text = ""
    elif kind == "content_block_delta" and getattr(getattr(chunk, "delta", None), "type",
                                                   None) == "thinking_delta":
        return False
    for name in ("item", "part", "content_block"):
        found = getattr(chunk, name, None)
        if found is not None:
            blank_reasoning_item(found)
            blank_thinking_block(found)
    response = getattr(chunk, "response", None)
    if response is not None:
        withhold_answer(api, response)
    return True


# --- the enforcer (no LiteLLM import) ----------------------------------------------------------


def _default_reject(status: int, detail: dict, headers: dict[str, str]) -> BaseException:
    from fastapi import HTTPException

    return HTTPException(status_code=status, detail=detail, headers=headers)


class LiteLLMEnforcer:
    """The adapter's work, apart from LiteLLM's classes: decisions, detector feed, log.

    Args:
        settings: What to enforce and where to log.
        reject: Makes the exception a refusal raises, from (status, JSON detail, headers);
            default ``fastapi.HTTPException`` (what LiteLLM turns into that status).
        forwarded_for_trusted: Returns True when LiteLLM's ``use_x_forwarded_for`` is on (its
            ``requester_ip_address`` is then the header as sent, not the peer).
        gateway: Prebuilt components (tests); default built from ``settings``.

    Raises:
        DistillwatchError: On settings that cannot be used (a missing scan folder or policy).
    """

    def __init__(self, settings: AdapterSettings,
                 reject: Callable[[int, dict, dict[str, str]], BaseException] = _default_reject,
                 forwarded_for_trusted: Callable[[], bool] = lambda: False,
                 gateway: Gateway | None = None) -> None:
        self.settings = settings
        self.gateway = gateway or Gateway(gateway_config(settings))
        self.policy = self.gateway.policy
        self._reject = reject
        self._forwarded_for_trusted = forwarded_for_trusted
        self._pending: dict[str, _Pending] = {}
        # call id -> (API, when): answers to strip of their reasoning
        self._withheld: dict[str, tuple[str, float]] = {}
        self._started = False
        self._start_lock: asyncio.Lock | None = None
        self._start_failed_at: float | None = None
        self._cleanups: set[asyncio.Task] = set()
        self._error_logged_at = 0.0
        self._warned: set[str] = set()
        self.errors = 0
        self.unmatched = 0
        if "FORWARDED_ALLOW_IPS" not in os.environ:
            self._warn_once("uvicorn", "distillwatch: $FORWARDED_ALLOW_IPS is unset, so the "
                            "uvicorn server LiteLLM runs rewrites the client address from "
                            "X-Forwarded-For for peers 127.0.0.1 and ::1; set it to the same "
                            "proxies as trusted_proxies (docs/litellm.md)")

    # -- lifecycle --
    async def start(self) -> bool:
        """Start the components inside LiteLLM's event loop (once); False if they failed."""
        if self._started:
            return True
        if self._start_failed_at is not None and time.monotonic() - self._start_failed_at < 5:
            return False
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return True
            try:
                async with asyncio.timeout(_START_TIMEOUT_S):
                    await self.gateway.startup()
            except Exception:  # noqa: BLE001 - a timeout included: requests go on (fail_open)
                self._start_failed_at = time.monotonic()
                logger.exception("distillwatch: the adapter's components did not start (time "
                                 "limit %g s); requests pass meanwhile under fail_open, a new "
                                 "try in 5 s", _START_TIMEOUT_S)
                # What did start is stopped in the background: a request must not wait on it.
                cleanup = asyncio.create_task(self._stop_quietly())
                self._cleanups.add(cleanup)
                cleanup.add_done_callback(self._cleanups.discard)
                return False
            self._started = True
            if self.gateway.sink is not None:
                atexit.register(self.gateway.sink.close)
            logger.info("distillwatch: enforcing in LiteLLM (state %s, scan %s, log %s, "
                        "detector %s)", "Redis" if self.settings.redis_url else "in-process",
                        self.settings.scan_dir, self.settings.log_dir,
                        "on" if self.gateway.detector is not None else "off")
            return True

    async def _stop_quietly(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_START_TIMEOUT_S):
                await self.gateway.shutdown()

    async def close(self) -> None:
        """Stop the components (tests; LiteLLM has no shutdown hook for guardrails)."""
        if self._started:
            await self.gateway.shutdown()
            self._started = False

    # -- identity and network --
    def identity(self, user_api_key_dict: Any) -> tuple[str | None, str | None]:
        """(account, key id) from LiteLLM's ``UserAPIKeyAuth``; the key id is that of
        ``token`` (LiteLLM's SHA-256 of the key: the same key id as ``serve`` gives the key);
        the key itself is never read."""
        account = None
        for name in self.settings.account_fields:
            value = getattr(user_api_key_dict, name, None)
            if value:
                account = str(value)
                break
        token = getattr(user_api_key_dict, "token", None)
        kid = key_id_of_digest(self.gateway.identity.key, str(token)) if token else None
        return account, kid

    def client_ip(self, data: Mapping[str, Any]) -> str | None:
        """The client IP: LiteLLM's TCP peer, walked back through trusted proxies only."""
        if self._forwarded_for_trusted():
            self._warn_once("xff", "distillwatch: LiteLLM's use_x_forwarded_for is on, so its "
                            "requester_ip_address is the header as the client sent it; client "
                            "IPs are unknown until it is turned off (trusted_proxies does the "
                            "same job safely)")
            return None
        peer = _metadata(data).get("requester_ip_address") or None
        addresses = self.gateway.addresses
        if peer is None or not addresses.networks:
            return peer
        forwarded = _request_headers(data).get("x-forwarded-for")
        return addresses.resolve(peer, str(forwarded) if forwarded else None)

    # -- the pre-call hook --
    def _decide(self, account: str | None, key_id: str | None, ip: str | None, now: float
                ) -> tuple[str, int | None]:
        return self.gateway.decide(account, key_id, ip, now)

    def refusal(self, api: str | None, kind: str, retry_after: int | None = None
                ) -> BaseException:
        """The exception refusing a request: the gateway's own answer for ``kind`` in ``api``'s
        error shape (429 + ``Retry-After`` for throttle, 403 for verify / block, 503)."""
        answer = self.gateway.answers.get(api, kind, retry_after)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in answer.headers
                   if k not in (b"content-type", b"content-length")}
        return self._reject(answer.status, orjson.loads(answer.body), headers)

    async def pre_call(self, user_api_key_dict: Any, data: dict, call_type: str) -> None:
        """Apply the decision in force to one request; raises the refusal, else returns.

        Never raises anything but a refusal: the adapter's own errors are logged and the
        request passes (``fail_open``) or is refused with 503 (fail-closed).
        """
        try:
            refusal = await self._pre_call(user_api_key_dict, data, call_type)
        except Exception as error:  # noqa: BLE001 - the proxy must outlive the adapter's bugs
            refusal = self._failed("pre-call hook", error, API_BY_CALL_TYPE.get(call_type))
        if refusal is not None:
            raise refusal

    async def _pre_call(self, user_api_key_dict: Any, data: dict, call_type: str
                        ) -> BaseException | None:
        if not await self.start():
            return None if self.policy.fail_open else self.refusal(
                API_BY_CALL_TYPE.get(call_type), "unavailable")
        now = time.time()
        api = API_BY_CALL_TYPE.get(call_type)
        account, kid = self.identity(user_api_key_dict)
        ip = self.client_ip(data)
        kind, retry = self._decide(account, kid, ip, now)
        gateway = self.gateway
        logged = gateway.sink is not None and api is not None
        if kind in REFUSING or kind == "unavailable":
            if logged and kind != "unavailable" and self.policy.log_refused:
                body, parsed = self._body(data)
                gateway.sink.write(Seen(api, now, account, kid, ip, self._user_agent(data),
                                        body, parsed, 429 if kind == "throttle" else 403,
                                        None, error_type=kind))
            return self.refusal(api, kind, retry)
        call_id = data.get("litellm_call_id")
        if kind == "monitor" and self.policy.withhold_reasoning and api and call_id:
            _bounded_put(self._withheld, str(call_id), (api, now), lambda first: first[1])
        if api is None or (gateway.detector is None and not logged):
            return None
        body, parsed = self._body(data)
        user_agent = self._user_agent(data)
        if gateway.detector is not None:
            gateway.detector.observe(api, account, kid, ip, user_agent, parsed, now)
        if logged and call_id:
            self._remember(str(call_id), _Pending(api, now, account, kid, ip, user_agent, body,
                                                  parsed))
        return None

    @staticmethod
    def _body(data: Mapping[str, Any]) -> tuple[bytes, dict]:
        # A copy, as JSON: LiteLLM and later guardrails go on changing `data` in place.
        raw = orjson.dumps(client_body(data), default=str)
        return raw, orjson.loads(raw)

    @staticmethod
    def _user_agent(data: Mapping[str, Any]) -> str | None:
        agent = _metadata(data).get("user_agent") or _request_headers(data).get("user-agent")
        return str(agent) if agent else None

    def _remember(self, call_id: str, pending: _Pending) -> None:
        _bounded_put(self._pending, call_id, pending, lambda first: first.ts)

    # -- the post-call hooks: withhold_reasoning for monitored subjects --
    def _withholds(self, data: Mapping[str, Any]) -> str | None:
        """The API of a call whose answer loses its reasoning (a ``monitor`` subject under
        ``monitor.withhold_reasoning``), else None; each call is answered once."""
        call_id = data.get("litellm_call_id")
        found = self._withheld.pop(str(call_id), None) if call_id else None
        return found[0] if found else None

    def post_call(self, data: Mapping[str, Any], response: Any) -> Any:
        """The answer of one call (LiteLLM's ``async_post_call_success_hook``), its reasoning /
        thinking text blanked when the call withholds it; otherwise untouched."""
        try:
            api = self._withholds(data)
            if api is not None:
                withhold_answer(api, response)
        except Exception as error:  # noqa: BLE001 - the answer goes out as it is
            self._failed("post-call hook", error, None)
        return response

    async def stream(self, data: Mapping[str, Any], response: AsyncIterator[Any]
                     ) -> AsyncIterator[Any]:
        """A streamed answer (LiteLLM's ``async_post_call_streaming_iterator_hook``), chunk by
        chunk: passed through, or with reasoning deltas dropped when the call withholds them."""
        try:
            api = self._withholds(data)
        except Exception as error:  # noqa: BLE001
            api = None
            self._failed("streaming hook", error, None)
        if api is None:
            async for chunk in response:
                yield chunk
            return
        raw = SseWithholder(api)
        async for chunk in response:
            if isinstance(chunk, bytes | bytearray):
                kept = raw.feed(bytes(chunk))
                if kept:
                    yield kept
            elif withhold_chunk(api, chunk):
                yield chunk
        tail = raw.close()
        if tail:
            yield tail

    # -- the logging callbacks --
    def log_success(self, kwargs: Mapping[str, Any], response_obj: Any = None) -> None:
        """Log one answered request (LiteLLM's ``async_log_success_event``)."""
        try:
            self._log(kwargs, response_obj, failed=False)
        except Exception as error:  # noqa: BLE001 - logging must never break the proxy
            self._failed("success log", error, None)

    def log_failure(self, kwargs: Mapping[str, Any], response_obj: Any = None) -> None:
        """Log one request that failed after the pre-call hook let it through (upstream
        error, a later guardrail's refusal); refusals of this adapter are not in the table."""
        try:
            self._log(kwargs, response_obj, failed=True)
        except Exception as error:  # noqa: BLE001
            self._failed("failure log", error, None)

    def _log(self, kwargs: Mapping[str, Any], response_obj: Any, failed: bool) -> None:
        sink = self.gateway.sink
        if sink is None:
            return
        payload = kwargs.get("standard_logging_object") or {}
        call_id = kwargs.get("litellm_call_id") or payload.get("litellm_call_id")
        pending = self._pending.pop(str(call_id), None) if call_id else None
        if pending is None:
            if not failed:
                self.unmatched += 1  # not seen by the pre-call hook (guardrail not run)
            return
        if failed:
            status, error_type = self._failure_status(kwargs, payload)
            response_body = None
        else:
            response = payload.get("response")
            if not isinstance(response, dict):
                dump = getattr(response_obj, "model_dump", None)
                response = dump() if callable(dump) else {}
            if pending.api == "anthropic_messages":
                response = anthropic_message(response)
            status, error_type = 200, None
            response_body = orjson.dumps(response, default=str)
        sink.write(Seen(pending.api, pending.ts, pending.account, pending.key_id, pending.ip,
                        pending.user_agent, pending.body, pending.parsed, status, response_body,
                        error_type=error_type))

    @staticmethod
    def _failure_status(kwargs: Mapping[str, Any], payload: Mapping[str, Any]
                        ) -> tuple[int, str]:
        info = payload.get("error_information") or {}
        code = str(info.get("error_code") or "")
        exception = kwargs.get("exception")
        status = getattr(exception, "status_code", None)
        if code.isdigit() and 100 <= int(code) <= 599:
            status = int(code)
        if not isinstance(status, int) or not 100 <= status <= 599:
            status = 500
        kind = info.get("error_class") or (type(exception).__name__ if exception else None)
        return status, str(kind or f"http_{status}")

    # -- failures of the adapter --
    def _failed(self, where: str, error: BaseException, api: str | None
                ) -> BaseException | None:
        self.errors += 1
        now = time.monotonic()
        if now - self._error_logged_at >= _ERROR_LOG_EVERY_S:
            self._error_logged_at = now
            logger.error("distillwatch: %s failed (%d adapter errors so far); %s", where,
                         self.errors, "request allowed (fail_open)" if self.policy.fail_open
                         else "request refused with 503 (fail-closed)",
                         exc_info=(type(error), error, error.__traceback__))
        if self.policy.fail_open or where != "pre-call hook":
            return None
        try:
            return self.refusal(api, "unavailable")
        except Exception:  # noqa: BLE001 - even the refusal failed: let the request pass
            return None

    def _warn_once(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(message)


# --- the LiteLLM classes (built on first access: they need litellm installed) ------------------

_ENFORCERS: dict[AdapterSettings, LiteLLMEnforcer] = {}


def enforcer_for(settings: AdapterSettings, **options: Any) -> LiteLLMEnforcer:
    """The process's enforcer for ``settings`` (one per distinct settings: LiteLLM may build a
    guardrail more than once, and they must share one state, sink and detector)."""
    found = _ENFORCERS.get(settings)
    if found is None:
        found = _ENFORCERS[settings] = LiteLLMEnforcer(settings, **options)
    return found


def _use_x_forwarded_for() -> bool:
    try:
        from litellm.proxy import proxy_server
    except ImportError:
        return False
    settings = getattr(proxy_server, "general_settings", None) or {}
    return settings.get("use_x_forwarded_for") is True


def _build_guardrail_class() -> type:
    from litellm.integrations.custom_guardrail import CustomGuardrail
    from litellm.types.guardrails import GuardrailEventHooks

    class DistillwatchGuardrail(CustomGuardrail):
        """distillwatch's decisions before the upstream call, its Exchange log after it.

        Built by LiteLLM from ``config.yaml`` (``guardrail:
        distillwatch.gateway.litellm.DistillwatchGuardrail``, ``mode: [pre_call,
        post_call]``); every
        setting of the module docstring may be given in ``litellm_params``.
        """

        def __init__(self, **kwargs: Any) -> None:
            ours = {name: kwargs.pop(name) for name in PARAMS if name in kwargs}
            kwargs.setdefault("supported_event_hooks", [GuardrailEventHooks.pre_call,
                                                        GuardrailEventHooks.post_call])
            super().__init__(**kwargs)
            hooks = self.event_hook if isinstance(self.event_hook, list) else [self.event_hook]
            if all(isinstance(hook, str) for hook in hooks) and "pre_call" not in hooks:
                raise DistillwatchConfigError(
                    f"guardrail {self.guardrail_name}: mode {self.event_hook!r} lacks pre_call, "
                    "so no decision would be enforced; use mode: pre_call or [pre_call, "
                    "post_call]")
            if not self.default_on:
                logger.warning("distillwatch: guardrail %s has default_on false: it runs only "
                               "for requests that name it, so a campaign can leave it out",
                               self.guardrail_name)
            self.enforcer = enforcer_for(AdapterSettings.from_sources(ours),
                                         forwarded_for_trusted=_use_x_forwarded_for)

        async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
            await self.enforcer.pre_call(user_api_key_dict, data, call_type)
            return None  # the request goes on unchanged

        async def async_post_call_success_hook(self, data, user_api_key_dict, response):
            return self.enforcer.post_call(data, response)

        async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response,
                                                          request_data):
            async for chunk in self.enforcer.stream(request_data, response):
                yield chunk

        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            self.enforcer.log_success(kwargs, response_obj)

        async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
            self.enforcer.log_failure(kwargs, response_obj)

    DistillwatchGuardrail.__module__ = __name__
    DistillwatchGuardrail.__qualname__ = "DistillwatchGuardrail"
    return DistillwatchGuardrail


_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    if name == "DistillwatchGuardrail":
        if name not in _CLASSES:
            _CLASSES[name] = _build_guardrail_class()
        return _CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> Iterable[str]:
    return sorted([*globals(), "DistillwatchGuardrail"])
