"""``distillwatch serve`` as a command: its help, --hash-keys, and two gateway processes
sharing decisions and counters through the machine's Redis."""

from __future__ import annotations

import os
import subprocess
import time

import httpx
import orjson
import pytest
import typer

from distillwatch.cli import _register_all, app
from distillwatch.gateway.identity import key_id

from .conftest import ADMIN_TOKEN, REDIS_URL, VENV_BIN, chat_body, free_port, wait_for

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def _serve_command():
    _register_all()
    return typer.main.get_command(app).commands["serve"]


def test_help_lists_every_option():
    command = _serve_command()
    options = [opt for param in command.params if param.param_type_name == "option"
               for opt in param.opts if opt.startswith("--")]
    assert {"--upstream", "--host", "--port", "--scan", "--policy", "--redis-url",
            "--admin-token-file", "--trusted-proxy", "--log-dir", "--account-header",
            "--key-map", "--key-file", "--accounts"} <= set(options)
    shown = subprocess.run([str(VENV_BIN / "distillwatch"), "serve", "--help"],
                           capture_output=True, text=True, env=ENV, timeout=60).stdout
    missing = [opt for opt in options if opt not in shown]
    assert missing == []
    for words in ("Example", "DISTILLWATCH_REDIS_URL", "/admin/decisions", "/healthz"):
        assert words in shown


def test_hash_keys_prints_the_key_ids_the_gateway_logs(tmp_path):
    key = tmp_path / "fp.key"
    key.write_text("a-fingerprint-key-of-enough-length")
    result = subprocess.run([str(VENV_BIN / "distillwatch"), "serve", "--hash-keys",
                             "--key-file", str(key)], input="sk-one\nsk-two\n",
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [key_id(b"a-fingerprint-key-of-enough-length", t)
                                     for t in ("sk-one", "sk-two")]


def test_serve_refuses_bad_configuration(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("retry_after: 5\n")
    result = subprocess.run([str(VENV_BIN / "distillwatch"), "serve", "--upstream",
                             "http://127.0.0.1:1", "--policy", str(policy)],
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 2 and "Unknown key 'retry_after'" in result.stderr


@pytest.fixture
def two_gateways(upstream, redis_prefix, tmp_path):
    token = tmp_path / "admin.token"
    token.write_text(ADMIN_TOKEN)
    policy = tmp_path / "policy.yaml"
    policy.write_text("redis: {refresh_s: 0.1, flush_s: 0.02}\n"
                      "limits: {account: [{window_s: 60, max_requests: 6}]}\n")
    processes, urls = [], []
    for _ in range(2):
        port = free_port()
        processes.append(subprocess.Popen(
            [str(VENV_BIN / "distillwatch"), "serve", "--upstream", upstream.url,
             "--port", str(port), "--redis-url", REDIS_URL, "--redis-prefix", redis_prefix,
             "--admin-token-file", str(token), "--policy", str(policy), "--no-detector"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV))
        urls.append(f"http://127.0.0.1:{port}")

    def ready():
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode())
        try:
            return all(httpx.get(f"{url}/healthz", timeout=1).json()["state"]["ok"]
                       for url in urls)
        except httpx.HTTPError:
            return False

    wait_for(ready, timeout=30, interval=0.1)
    clients = [httpx.Client(base_url=url, timeout=10) for url in urls]
    yield clients
    for client in clients:
        client.close()
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(10)


def test_two_processes_share_decisions_and_counters(two_gateways):
    first, second = two_gateways
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    who = {"x-account-id": "acct-shared"}
    assert second.post("/v1/chat/completions", json=chat_body(), headers=who).status_code == 200
    put = first.put("/admin/decisions/account:acct-shared", headers=auth,
                    json={"kind": "block", "reason": "seen on replica one"})
    assert put.status_code == 200
    started = time.monotonic()
    wait_for(lambda: second.post("/v1/chat/completions", json=chat_body(),
                                 headers=who).status_code == 403, timeout=2)
    assert time.monotonic() - started < 2
    listed = second.get("/admin/decisions?layer=admin", headers=auth).json()["decisions"]
    assert [(d["subject"], d["reason"]) for d in listed] == [("account:acct-shared",
                                                              "seen on replica one")]
    assert first.delete("/admin/decisions/account:acct-shared", headers=auth).status_code == 200
    wait_for(lambda: second.post("/v1/chat/completions", json=chat_body(),
                                 headers=who).status_code == 200, timeout=2)
    # One rate limit for both replicas: 6 per minute in all, not 6 each.
    busy = {"x-account-id": "acct-busy"}
    codes = []
    for turn in range(16):
        client = (first, second)[turn % 2]
        codes.append(client.post("/v1/chat/completions", json=chat_body(),
                                 headers=busy).status_code)
        time.sleep(0.08)
    assert 6 <= codes.count(200) <= 8 and codes.count(429) >= 8, codes
    assert orjson.loads(first.get("/healthz").content)["state"]["backend"] == "redis"
