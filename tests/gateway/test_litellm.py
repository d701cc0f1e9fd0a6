"""The LiteLLM adapter: its enforcer on its own, then inside a real LiteLLM proxy on loopback.

The first part drives :class:`LiteLLMEnforcer` with what LiteLLM hands its hooks (shapes taken
from LiteLLM 1.102.4) and needs no LiteLLM. The second starts ``litellm --config`` from
``.venv-litellm`` as a subprocess, with models pointing at the fake upstream of ``conftest``,
the distillwatch guardrail configured in its ``config.yaml``, a throwaway Redis shared with a
``distillwatch serve`` gateway (whose admin API sets decisions the proxy then enforces), and
``tests/gateway/files/litellm/custom_auth.py`` standing in for LiteLLM's key database.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import random
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
import yaml

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.gateway.decisions import Decision
from distillwatch.gateway.identity import key_id, key_id_of_digest
from distillwatch.gateway.litellm import (
    AdapterSettings,
    LiteLLMEnforcer,
    anthropic_message,
    client_body,
)
from distillwatch.ingest.validate import check_exchange

from .conftest import RedisServer, free_port, gz_lines, wait_for
from .test_detector import campaign, template_indicators, templated, write_scan

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).parent / "files" / "litellm"
LITELLM_VENV = Path(os.environ.get("DISTILLWATCH_LITELLM_VENV", ROOT / ".venv-litellm"))
KEY = b"litellm-adapter-test-key-0123456"


# --- the enforcer alone ----------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, detail: dict, headers: dict) -> None:
        super().__init__(status)
        self.status, self.detail, self.headers = status, detail, headers


def uak(user_id: str | None = "acct-1", token: str | None = "ab" * 32, **fields):
    return SimpleNamespace(user_id=user_id, token=token, team_id=fields.get("team_id"),
                           org_id=fields.get("org_id"), end_user_id=fields.get("end_user_id"))


def hook_data(body: dict, peer: str = "198.51.100.7", forwarded: str | None = None,
              call_id: str = "call-1", metadata_key: str = "metadata") -> dict:
    """``data`` as LiteLLM hands it to ``async_pre_call_hook`` (what it adds to the body)."""
    headers = {"content-type": "application/json", "user-agent": "python-httpx/0.28"}
    if forwarded:
        headers["x-forwarded-for"] = forwarded
    return {**body, "litellm_call_id": call_id, "litellm_logging_obj": object(),
            "secret_fields": {"raw_headers": {"authorization": "Bearer sk-secret-raw-key"}},
            "proxy_server_request": {"url": "http://proxy/v1/chat/completions",
                                     "method": "POST", "headers": headers, "body": None},
            metadata_key: {"requester_ip_address": peer, "user_agent": "python-httpx/0.28",
                           "user_api_key_hash": "ab" * 32, "headers": headers}}


def success_kwargs(call_id: str, response: dict) -> dict:
    return {"litellm_call_id": call_id, "api_key": "sk-upstream-provider-key",
            "standard_logging_object": {"litellm_call_id": call_id, "status": "success",
                                        "response": response}}


CHAT = {"model": "gpt-test", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Say hello."}]}
CHAT_ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-test",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "Hello world!"}}],
               "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}


def enforcer(tmp_path: Path, **settings) -> LiteLLMEnforcer:
    tmp_path.mkdir(parents=True, exist_ok=True)
    settings.setdefault("log_dir", tmp_path / "logs")
    key_file = tmp_path / "fp.key"
    key_file.write_bytes(KEY)
    return LiteLLMEnforcer(AdapterSettings(key_file=key_file, **settings),
                           reject=Refused)


def run(coroutine):
    return asyncio.run(coroutine)


def test_settings_from_params_over_environment():
    environ = {"DISTILLWATCH_REDIS_URL": "redis://10.0.0.3:6379/0",
               "DISTILLWATCH_LOG_DIR": "/var/log/dw", "DISTILLWATCH_ACCOUNT_FIELD": "team_id",
               "DISTILLWATCH_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
               "DISTILLWATCH_DETECTOR": "off"}
    settings = AdapterSettings.from_sources({"log_dir": "/srv/dw-logs", "verify_ssl": True,
                                             "account_field": "team_id,user_id"}, environ)
    assert settings.redis_url == "redis://10.0.0.3:6379/0"
    assert settings.log_dir == Path("/srv/dw-logs")  # the parameter wins
    assert settings.account_fields == ("team_id", "user_id")
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.0.0/16")
    assert settings.detector is False
    assert AdapterSettings.from_sources({}, {}) == AdapterSettings()
    with pytest.raises(DistillwatchConfigError, match="account_field email.*user_id"):
        AdapterSettings.from_sources({"account_field": "email"}, {})
    with pytest.raises(DistillwatchConfigError, match="'detector' must be true or false"):
        AdapterSettings.from_sources({"detector": "maybe"}, {})


def test_client_body_drops_what_litellm_adds_and_credentials():
    data = hook_data({**CHAT, "temperature": 0.2, "api_key": "sk-client-provider-key"})
    data["_litellm_strip_stream_usage"] = True
    assert client_body(data) == {**CHAT, "temperature": 0.2}
    # On /v1/messages LiteLLM's metadata is litellm_metadata: the client's own is kept.
    anthropic = hook_data({"model": "claude-test", "max_tokens": 5, "messages": [],
                           "metadata": {"user_id": "end-7"}}, metadata_key="litellm_metadata")
    assert client_body(anthropic)["metadata"] == {"user_id": "end-7"}
    assert "litellm_metadata" not in client_body(anthropic)


def test_identity_key_id_and_client_ip_through_trusted_proxies(tmp_path):
    dw = enforcer(tmp_path, trusted_proxies=("10.0.0.0/8",), account_fields=("team_id",
                                                                              "user_id"))
    assert dw.identity(uak("u-1", team_id="team-9")) == ("team-9", key_id_of_digest(KEY, "ab" * 32))
    assert dw.identity(uak("u-1")) == ("u-1", key_id_of_digest(KEY, "ab" * 32))
    assert dw.identity(uak(None, None)) == (None, None)
    # The peer is a trusted proxy: the header is walked; an untrusted peer's header is not.
    assert dw.client_ip(hook_data(CHAT, "10.0.0.5", "6.6.6.6, 203.0.113.7")) == "203.0.113.7"
    assert dw.client_ip(hook_data(CHAT, "198.51.100.9", "1.2.3.4")) == "198.51.100.9"
    # use_x_forwarded_for: LiteLLM's requester_ip_address is then the header, not the peer.
    trusting = LiteLLMEnforcer(dw.settings, reject=Refused, forwarded_for_trusted=lambda: True,
                               gateway=dw.gateway)
    assert trusting.client_ip(hook_data(CHAT, "6.6.6.6")) is None


def test_decisions_refuse_in_the_apis_shape_and_allowed_requests_feed_the_detector(tmp_path):
    scan = write_scan(tmp_path / "scan", [campaign("C-0001", ["sk-0000000000000001"])], [
        {"account_id": "acct-block", "decision": "block", "campaign_id": "C-0001"},
        {"account_id": "acct-verify", "decision": "verify", "campaign_id": "C-0001"},
        {"account_id": "acct-watch", "decision": "monitor", "campaign_id": "C-0001"}])
    dw = enforcer(tmp_path, scan_dir=scan, policy_file=FILES / "policy.yaml")

    async def scenario():
        await dw.pre_call(uak("acct-ok"), hook_data(CHAT), "acompletion")
        refusals = {}
        for account, call_type in (("acct-block", "acompletion"),
                                   ("acct-verify", "anthropic_messages")):
            with pytest.raises(Refused) as caught:
                await dw.pre_call(uak(account), hook_data(CHAT), call_type)
            refusals[account] = caught.value
        await dw.gateway.state.set_override("account:acct-slow", Decision("throttle"))
        with pytest.raises(Refused) as caught:
            await dw.pre_call(uak("acct-slow"), hook_data(CHAT), "aresponses")
        refusals["acct-slow"] = caught.value
        await dw.gateway.state.set_override("account:acct-watch", Decision("monitor"))
        await dw.pre_call(uak("acct-watch"), hook_data(CHAT, call_id="c-2"), "acompletion")
        # Other endpoints (embeddings, ...) are refused too, in OpenAI's shape, not logged.
        with pytest.raises(Refused):
            await dw.pre_call(uak("acct-block"), hook_data({"input": "x"}), "aembedding")
        stats = dict(dw.gateway.detector.detector.stats)
        await dw.close()
        return refusals, stats

    refusals, stats = run(scenario())
    block, verify, slow = refusals["acct-block"], refusals["acct-verify"], refusals["acct-slow"]
    assert (block.status, block.headers["x-distillwatch-decision"]) == (403, "block")
    assert block.detail["error"]["code"] == "account_blocked"
    assert verify.status == 403 and verify.detail["type"] == "error"  # Anthropic's shape
    assert "https://verify.example.test/start" in verify.detail["error"]["message"]
    assert (slow.status, slow.headers["retry-after"]) == (429, "17")
    assert stats["observed"] == 2  # acct-ok and the monitored account, not the refused
    assert set(dw._pending) == {"call-1", "c-2"}


def test_adapter_errors_fail_open_or_refuse_with_503_when_fail_closed(tmp_path):
    dw = enforcer(tmp_path)

    def broken(*_args):
        raise RuntimeError("adapter bug")

    dw.gateway.state.check = dw.gateway.state.decision_for = broken
    run(dw.pre_call(uak(), hook_data(CHAT), "acompletion"))  # passes: fail-open
    assert dw.errors == 1
    closed_policy = tmp_path / "closed.yaml"
    closed_policy.write_text("fail_open: false\n")
    closed = enforcer(tmp_path, policy_file=closed_policy)
    closed.gateway.state.check = closed.gateway.state.decision_for = broken
    with pytest.raises(Refused) as caught:
        run(closed.pre_call(uak(), hook_data(CHAT), "acompletion"))
    assert caught.value.status == 503 and caught.value.headers["retry-after"] == "1"
    # Components that cannot start (a full disk, ...): the same rule.
    async def no_start():
        raise OSError("no space left on device")

    for adapter, passes in ((enforcer(tmp_path / "a"), True),
                            (enforcer(tmp_path / "b", policy_file=closed_policy), False)):
        adapter.gateway.startup = no_start
        if passes:
            run(adapter.pre_call(uak(), hook_data(CHAT), "acompletion"))
        else:
            with pytest.raises(Refused, match="503"):
                run(adapter.pre_call(uak(), hook_data(CHAT), "acompletion"))
    # The logging callbacks never raise either.
    del dw.gateway.state.decision_for
    run(dw.pre_call(uak(), hook_data(CHAT, call_id="z"), "acompletion"))
    dw.gateway.sink.write = broken
    dw.log_success(success_kwargs("z", CHAT_ANSWER))
    assert dw.errors == 2


def test_logged_exchanges_are_valid_and_carry_no_key(tmp_path):
    dw = enforcer(tmp_path)
    anthropic_body = {"model": "claude-test", "max_tokens": 64, "system": "Be brief.",
                      "messages": [{"role": "user", "content": "Say hello."}]}
    # LiteLLM logs /v1/messages answers converted to the chat shape.
    anthropic_logged = {**CHAT_ANSWER, "id": "msg_1", "model": "claude-test", "choices": [
        {"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Hi there.", "reasoning_content": "A greeting."}}]}

    async def scenario():
        await dw.pre_call(uak("acct-1"), hook_data(CHAT, call_id="a"), "acompletion")
        await dw.pre_call(uak("acct-2"), hook_data(anthropic_body, call_id="b",
                                                   metadata_key="litellm_metadata"),
                          "anthropic_messages")
        await dw.pre_call(uak("acct-3"), hook_data(CHAT, call_id="c"), "acompletion")
        dw.log_success(success_kwargs("a", CHAT_ANSWER))
        dw.log_success(success_kwargs("b", anthropic_logged))
        dw.log_failure({"litellm_call_id": "c", "exception": TimeoutError("slow"),
                        "standard_logging_object": {"error_information": {
                            "error_code": "504", "error_class": "Timeout"}}})
        dw.log_success(success_kwargs("never-seen", CHAT_ANSWER))  # guardrail did not run
        dw.log_success(success_kwargs("a", CHAT_ANSWER))  # logged once only
        assert dw.gateway.sink.drain()
        await dw.close()

    run(scenario())
    records = gz_lines(tmp_path / "logs", "exchanges-*.jsonl.gz")
    assert [r["account_id"] for r in records] == ["acct-1", "acct-2", "acct-3"]
    assert all(check_exchange(r) is None for r in records)
    chat, messages, failed = records
    assert chat["operation"] == "chat" and chat["response"]["text"] == "Hello world!"
    assert chat["client"] == {"ip": "198.51.100.7", "user_agent": "python-httpx/0.28"}
    assert chat["api_key_id"] == key_id_of_digest(KEY, "ab" * 32)
    assert messages["operation"] == "messages" and messages["response"]["text"] == "Hi there."
    assert messages["request"]["system"] == "Be brief."
    assert (failed["response"]["status"], failed["response"]["error_type"]) == (504, "Timeout")
    assert dw.unmatched == 2  # the call the guardrail never saw, and the repeated event
    everything = b"".join(gzip.decompress(p.read_bytes())
                          for p in (tmp_path / "logs").rglob("*.gz"))
    for secret in (b"sk-secret-raw-key", b"sk-upstream-provider-key", b"ab" * 32):
        assert secret not in everything


def test_anthropic_message_undoes_litellms_chat_conversion():
    message = anthropic_message({"id": "msg_1", "model": "claude-test", "choices": [
        {"finish_reason": "length", "message": {"content": "Hi", "tool_calls": [
            {"id": "t1", "function": {"name": "look", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
    assert message["type"] == "message" and message["stop_reason"] == "max_tokens"
    assert [block["type"] for block in message["content"]] == ["text", "tool_use"]
    assert message["usage"] == {"input_tokens": 5, "output_tokens": 2}


# --- a real LiteLLM proxy ----------------------------------------------------------------------

LITELLM_BIN = LITELLM_VENV / "bin" / "litellm"
needs_litellm = pytest.mark.skipif(
    not LITELLM_BIN.exists(),
    reason=f"no LiteLLM venv at {LITELLM_VENV}: `make litellm-venv` (part of `make test`) "
           "creates it, docs/litellm.md says how by hand")
API_KEY = "sk-dwtest-{}"
MASTER_KEY = "sk-dwtest-master-0123456789"


class Proxy:
    """A LiteLLM proxy subprocess and what the tests learn from it."""

    def __init__(self, url: str, process: subprocess.Popen, log: Path, log_dir: Path,
                 redis: RedisServer, prefix: str) -> None:
        self.url, self.process, self.log, self.log_dir = url, process, log, log_dir
        self.redis, self.prefix = redis, prefix
        self.statuses: list[int] = []
        self.client = httpx.Client(base_url=url, timeout=30)
        # A second client on another loopback address: a peer that is not a trusted proxy.
        self.untrusted = httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(
            local_address="127.0.0.2"))

    def post(self, path: str, account: str, body: dict, *, untrusted: bool = False,
             headers: dict | None = None) -> httpx.Response:
        client = self.untrusted if untrusted else self.client
        response = client.post(path, json=body, headers={
            "authorization": f"Bearer {API_KEY.format(account)}", **(headers or {})})
        self.statuses.append(response.status_code)
        return response

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def chat(text: str = "Say hello.", **extra) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": text}], **extra}


@pytest.fixture(scope="module")
def proxy(upstream, tmp_path_factory):
    if not LITELLM_BIN.exists():
        pytest.skip(f"no LiteLLM venv at {LITELLM_VENV}")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    folder = tmp_path_factory.mktemp("litellm")
    redis = RedisServer(folder)
    redis.start()
    rng = random.Random(3)
    scan = write_scan(folder / "scan", [campaign(
        "C-0001", template_indicators([templated(rng) for _ in range(40)]))], [
        {"account_id": "acct-block", "decision": "block", "campaign_id": "C-0001"},
        {"account_id": "acct-verify", "decision": "verify", "campaign_id": "C-0001"},
        {"account_id": "acct-watch", "decision": "monitor", "campaign_id": "C-0001"}])
    # template_indicators keys its fingerprints with test_detector's key: the proxy uses it.
    from .test_detector import KEY as DETECTOR_KEY

    (folder / "fp.key").write_bytes(DETECTOR_KEY)
    shutil.copy(FILES / "custom_auth.py", folder / "custom_auth.py")
    # The detector as docs/litellm.md recommends inside LiteLLM: fingerprinting in a thread (a
    # worker process, the built-in default, is spawned by re-importing LiteLLM's launcher and
    # takes seconds before its first batch).
    detector = yaml.safe_load(resources.files("distillwatch").joinpath(
        "conf/detector.yaml").read_text("utf-8"))
    (folder / "detector.yaml").write_text(yaml.safe_dump({**detector, "executor": "thread"}))
    prefix = f"dwtest-litellm-{os.getpid()}"
    config = {
        "model_list": [
            {"model_name": "gpt-test", "litellm_params": {
                "model": "openai/gpt-test", "api_base": f"{upstream.url}/v1",
                "api_key": "sk-upstream-provider-key"}},
            {"model_name": "claude-test", "litellm_params": {
                "model": "anthropic/claude-test", "api_base": upstream.url,
                "api_key": "sk-ant-upstream-provider-key"}}],
        "guardrails": [{"guardrail_name": "distillwatch", "litellm_params": {
            "guardrail": "distillwatch.gateway.litellm.DistillwatchGuardrail",
            "mode": ["pre_call", "post_call"], "default_on": True, "scan_dir": str(scan),
            "policy_file": str(FILES / "policy.yaml"), "redis_url": redis.url,
            "redis_prefix": prefix, "key_file": str(folder / "fp.key"),
            "trusted_proxies": ["127.0.0.1/32"], "account_field": "user_id",
            "detector_settings": str(folder / "detector.yaml")}}],
        "general_settings": {"master_key": MASTER_KEY,
                             "custom_auth": "custom_auth.user_api_key_auth"},
        "litellm_settings": {"num_retries": 0},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    log_dir = folder / "exchanges"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC"))},
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list at start
           "DISTILLWATCH_LOG_DIR": str(log_dir),    # one setting from the environment
           # uvicorn must not rewrite the peer itself: the adapter walks X-Forwarded-For.
           "FORWARDED_ALLOW_IPS": "192.0.2.1", "NO_PROXY": "*", "PYTHONUNBUFFERED": "1"}
    port = free_port()
    log = folder / "litellm.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(LITELLM_BIN), "--config", str(folder / "config.yaml"), "--host", "127.0.0.1",
             "--port", str(port)], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    handle = Proxy(f"http://127.0.0.1:{port}", process, log, log_dir, redis, prefix)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"litellm exited with {process.returncode}:\n{handle.output()}")
            try:
                if handle.client.get("/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"litellm did not start within 90 s:\n{handle.output()}")
            time.sleep(0.25)
        yield handle
    finally:
        handle.client.close()
        handle.untrusted.close()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        redis.kill()


@needs_litellm
def test_allowed_accounts_get_the_upstreams_answer_unchanged(proxy, upstream):
    response = proxy.post("/v1/chat/completions", "ok", chat())
    assert response.status_code == 200, response.text
    sent = orjson.loads(upstream.responses[-1])
    got = response.json()
    assert got["id"] == sent["id"] and got["choices"][0]["message"]["content"] == "Hello world!"
    assert got["choices"][0]["finish_reason"] == sent["choices"][0]["finish_reason"]
    assert got["usage"]["completion_tokens"] == sent["usage"]["completion_tokens"]
    streamed = proxy.post("/v1/chat/completions", "ok", chat(stream=True))
    assert streamed.status_code == 200
    deltas = [orjson.loads(line[6:]) for line in streamed.text.splitlines()
              if line.startswith("data: {")]
    assert "".join((d["choices"][0]["delta"].get("content") or "") for d in deltas
                   if d.get("choices")) == "Hello world!"
    anthropic = proxy.post("/v1/messages", "ok", {
        "model": "claude-test", "max_tokens": 64, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello."}]})
    assert anthropic.status_code == 200, anthropic.text
    assert anthropic.json()["content"][-1]["text"] == "Hi there."


def _sse_data(text: str) -> list[dict]:
    return [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


@needs_litellm
def test_monitored_accounts_get_answers_with_reasoning_withheld(proxy, upstream):
    # The policy withholds reasoning from monitor subjects; acct-ok keeps it.
    ask = chat(reasoning_effort="low")
    plain = proxy.post("/v1/chat/completions", "ok", ask)
    assert plain.status_code == 200, plain.text
    assert plain.json()["choices"][0]["message"]["reasoning_content"]
    watched = proxy.post("/v1/chat/completions", "watch", ask)
    assert watched.status_code == 200, watched.text
    message = watched.json()["choices"][0]["message"]
    assert message["content"] == "Hello world!" and not message.get("reasoning_content")
    assert "think step by step" not in watched.text
    streamed = proxy.post("/v1/chat/completions", "watch", {**ask, "stream": True})
    assert streamed.status_code == 200
    deltas = [d["choices"][0]["delta"] for d in _sse_data(streamed.text) if d.get("choices")]
    assert "".join(d.get("content") or "" for d in deltas) == "Hello world!"
    assert not any(d.get("reasoning_content") for d in deltas)
    plain_stream = proxy.post("/v1/chat/completions", "ok", {**ask, "stream": True})
    assert "Let me think" in "".join(
        d["choices"][0]["delta"].get("reasoning_content") or ""
        for d in _sse_data(plain_stream.text) if d.get("choices"))
    think = {"model": "claude-test", "max_tokens": 64, "thinking": {"type": "enabled",
                                                                    "budget_tokens": 32},
             "messages": [{"role": "user", "content": "Say hello."}]}
    anthropic = proxy.post("/v1/messages", "watch", think)
    assert anthropic.status_code == 200, anthropic.text
    blocks = anthropic.json()["content"]
    assert blocks[-1]["text"] == "Hi there."
    assert all(not b.get("thinking") for b in blocks)
    assert "greeting" not in anthropic.text
    kept = proxy.post("/v1/messages", "ok", think)
    assert "greeting" in kept.text
    streamed = proxy.post("/v1/messages", "watch", {**think, "stream": True})
    assert streamed.status_code == 200, streamed.text
    assert "greeting" not in streamed.text and "Hi " in streamed.text


@needs_litellm
def test_scan_decisions_refuse_with_403_naming_the_verification_step(proxy, upstream):
    before = len(upstream.requests)
    blocked = proxy.post("/v1/chat/completions", "block", chat())
    assert blocked.status_code == 403, blocked.text
    assert blocked.headers["x-distillwatch-decision"] == "block"
    assert "not permitted" in blocked.json()["error"]["message"]
    verify = proxy.post("/v1/chat/completions", "verify", chat())
    assert verify.status_code == 403
    assert "https://verify.example.test/start" in verify.json()["error"]["message"]
    anthropic = proxy.post("/v1/messages", "verify", {
        "model": "claude-test", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]})
    assert anthropic.status_code == 403
    assert anthropic.json()["type"] == "error"  # LiteLLM answers in Anthropic's shape
    assert "verify.example.test" in anthropic.json()["error"]["message"]
    assert len(upstream.requests) == before  # refused before any upstream spend


def status_becomes(send, status: int, timeout: float = 5.0) -> httpx.Response:
    """Send until the answer has ``status`` (a decision reaches the proxy through Redis)."""
    deadline = time.monotonic() + timeout
    while True:
        response = send()
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            return response
        time.sleep(0.05)


@needs_litellm
def test_a_decision_set_through_serves_admin_api_applies_in_litellm(proxy, make_gateway):
    gateway = make_gateway(redis_url=proxy.redis.url, redis_prefix=proxy.prefix)
    assert proxy.post("/v1/chat/completions", "throttle", chat()).status_code == 200
    put = gateway.admin("PUT", "/admin/decisions/account:acct-throttle",
                        json={"kind": "throttle", "reason": "test"})
    assert put.status_code == 200, put.text
    throttled = status_becomes(
        lambda: proxy.post("/v1/chat/completions", "throttle", chat()), 429)
    assert throttled.headers["retry-after"] == "17"  # the policy file's retry_after_s
    assert "Retry after 17 seconds" in throttled.json()["error"]["message"]
    gateway.admin("DELETE", "/admin/decisions/account:acct-throttle")
    status_becomes(lambda: proxy.post("/v1/chat/completions", "throttle", chat()), 200)
    # An IP decision: the client IP is read through the trusted proxy (127.0.0.1) only.
    gateway.admin("PUT", "/admin/decisions/ip:203.0.113.7", json={"kind": "block"})
    forwarded = {"x-forwarded-for": "198.51.100.1, 203.0.113.7"}
    status_becomes(lambda: proxy.post("/v1/chat/completions", "ip", chat(),
                                      headers=forwarded), 403)
    spoofed = proxy.post("/v1/chat/completions", "ip", chat("spoofed"), untrusted=True,
                         headers=forwarded)
    assert spoofed.status_code == 200  # from 127.0.0.2, not a trusted proxy: header ignored


@needs_litellm
def test_a_new_head_of_a_known_campaign_is_throttled_by_the_online_detector(proxy):
    rng = random.Random(21)
    statuses = []
    for _ in range(20):
        statuses.append(proxy.post("/v1/chat/completions", "newhead",
                                   {**templated(rng), "model": "gpt-test"}).status_code)
        if statuses[-1] == 429:
            break
        time.sleep(0.1)  # the detector works in the background, off the request path
    assert statuses[-1] == 429, statuses  # the target: within 20 exchanges
    ordinary = [proxy.post("/v1/chat/completions", "ordinary",
                           chat(f"What is {n} squared?")).status_code for n in range(8)]
    assert ordinary == [200] * 8


@needs_litellm
def test_an_adapter_fault_lets_the_request_through_never_a_500(proxy):
    response = proxy.post("/v1/chat/completions", "fault", chat())
    assert response.status_code == 200, response.text
    assert "injected adapter fault" in proxy.output()


@needs_litellm
def test_exchange_log_holds_valid_exchanges_without_any_key(proxy):
    marker = f"log-check-{time.time_ns()}"
    sent = [proxy.post("/v1/chat/completions", "ok", chat(marker)),
            proxy.post("/v1/chat/completions", "ok", chat(marker, stream=True)),
            proxy.post("/v1/messages", "ok", {
                "model": "claude-test", "max_tokens": 64, "system": "Be brief.",
                "messages": [{"role": "user", "content": marker}]}),
            proxy.post("/v1/chat/completions", "ip", chat(marker), untrusted=True,
                       headers={"x-forwarded-for": "6.6.6.6"}),
            proxy.post("/v1/chat/completions", "block", chat(marker))]
    assert [r.status_code for r in sent] == [200, 200, 200, 200, 403]

    def ours():
        if not proxy.log_dir.is_dir():
            return []
        return [r for r in gz_lines(proxy.log_dir, "exchanges-*.jsonl.gz")
                if r["request"]["messages"][-1]["content"] == marker]

    found = wait_for(lambda: len(ours()) >= 4 and ours(), timeout=10)
    time.sleep(0.3)
    found = ours()
    assert len(found) == 4  # the refused request is not logged (policy: log_refused false)
    assert all(check_exchange(record) is None for record in found)
    (spoofed,) = [r for r in found if r["account_id"] == "acct-ip"]
    chat_json, chat_stream, messages = sorted(
        [r for r in found if r["account_id"] == "acct-ok"],
        key=lambda r: (r["operation"], bool(r["request"]["stream"])))
    assert [r["response"]["text"] for r in (chat_json, chat_stream, messages)] == [
        "Hello world!", "Hello world!", "Hi there."]
    assert messages["operation"] == "messages" and messages["request"]["system"] == "Be brief."
    token_hash = hashlib.sha256(API_KEY.format("ok").encode()).hexdigest()
    assert chat_json["account_id"] == "acct-ok"
    assert chat_json["api_key_id"] == key_id_of_digest(detector_key(), token_hash)
    # the key id serve gives the same key: one decision on key:KID holds in both
    assert chat_json["api_key_id"] == key_id(detector_key(), API_KEY.format("ok"))
    assert chat_json["client"]["ip"] == "127.0.0.1"
    assert (spoofed["account_id"], spoofed["client"]["ip"]) == ("acct-ip", "127.0.0.2")
    everything = b"".join(gzip.decompress(p.read_bytes()) for p in proxy.log_dir.rglob("*.gz"))
    secrets = [MASTER_KEY, "sk-upstream-provider-key", "sk-ant-upstream-provider-key",
               API_KEY.format("ok"), API_KEY.format("ip"), token_hash]
    assert not [s for s in secrets if s.encode() in everything]


def detector_key() -> bytes:
    from .test_detector import KEY as DETECTOR_KEY

    return DETECTOR_KEY


@needs_litellm
def test_redis_loss_fails_open_and_keeps_enforcing_the_last_decisions(proxy, make_gateway):
    gateway = make_gateway(redis_url=proxy.redis.url, redis_prefix=proxy.prefix)
    gateway.admin("PUT", "/admin/decisions/account:acct-throttle", json={"kind": "block"})
    status_becomes(lambda: proxy.post("/v1/chat/completions", "throttle", chat()), 403)
    proxy.redis.kill()  # the proxy's Redis is gone for good (this test runs last)
    started = time.monotonic()
    assert proxy.post("/v1/chat/completions", "ok", chat()).status_code == 200
    assert proxy.post("/v1/chat/completions", "block", chat()).status_code == 403  # scan
    # The admin decision is still enforced, from the adapter's local mirror.
    assert proxy.post("/v1/chat/completions", "throttle", chat()).status_code == 403
    assert time.monotonic() - started < 5
    assert not [s for s in proxy.statuses if s >= 500], proxy.statuses


@needs_litellm
def test_a_mode_without_pre_call_is_refused_when_litellm_builds_the_guardrail(tmp_path):
    # Run in LiteLLM's own venv: the guardrail class is built on LiteLLM's CustomGuardrail.
    script = """
import sys
from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.gateway.litellm import DistillwatchGuardrail
for mode in ("post_call", ["pre_call", "post_call"], "pre_call"):
    try:
        DistillwatchGuardrail(guardrail_name="dw", event_hook=mode, default_on=True,
                              detector=False)
        print("accepted", mode)
    except DistillwatchConfigError as error:
        print("refused", mode, error)
"""
    done = subprocess.run([str(LITELLM_VENV / "bin" / "python"), "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FORWARDED_ALLOW_IPS": "192.0.2.1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused post_call") and "lacks pre_call" in lines[0]
    assert lines[1:] == ["accepted ['pre_call', 'post_call']", "accepted pre_call"]
