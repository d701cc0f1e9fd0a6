"""The proxy against a real fake upstream on loopback: pass-through, streaming, refusals,
hot reload, the reasoning countermeasure, rate limits, upstream failures."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import httpx
import orjson
import pytest

from distillwatch.gateway.decisions import GatewayPolicy, RateLimit

from .conftest import (
    anthropic_body,
    chat_body,
    completions_body,
    free_port,
    gz_lines,
    responses_body,
    wait_for,
)

APIS = {"openai_chat": ("/v1/chat/completions", chat_body),
        "openai_responses": ("/v1/responses", responses_body),
        "openai_completions": ("/v1/completions", completions_body),
        "anthropic_messages": ("/v1/messages", anthropic_body)}


@pytest.fixture(params=["builtin", "uvicorn"])
def gateway_server(request) -> str:
    """Every proxy test under both servers: the same behaviour is required of each."""
    return request.param


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade",
              "proxy-authorization"}


def _scan_dir(tmp_path, decisions: dict[str, str]):
    folder = tmp_path / "scan"
    folder.mkdir(exist_ok=True)
    lines = [orjson.dumps({"account_id": account, "score": 0.9, "decision": kind,
                           "exchanges": 10, "campaign_id": None, "reasons": ["test"]})
             for account, kind in decisions.items()]
    tmp = folder / "accounts.jsonl.tmp"
    tmp.write_bytes(b"\n".join(lines) + b"\n")
    os.replace(tmp, folder / "accounts.jsonl")
    return folder


@pytest.mark.parametrize("api", list(APIS))
def test_json_answers_pass_byte_for_byte_with_status_and_headers(make_gateway, upstream, api):
    gateway = make_gateway()
    path, body = APIS[api]
    # Odd spacing, key order and non-ASCII: a re-encoded body would differ.
    raw = (b'{ "model":"m" ,  "z": 1, "note": "caf\xc3\xa9 \\u00e9",' +
           orjson.dumps(body())[1:])
    response = gateway.client.post(path, content=raw, headers={
        "content-type": "application/json", "x-account-id": "acct-pass",
        "authorization": "Bearer sk-secret-1", "x-custom": "kept",
        "connection": "keep-alive, x-drop-me", "x-drop-me": "hop"})
    seen = upstream.requests[-1]
    assert seen["body"] == raw
    sent_headers = {k.decode(): v.decode() for k, v in seen["headers"]}
    assert sent_headers["x-custom"] == "kept"
    assert sent_headers["authorization"] == "Bearer sk-secret-1"
    assert sent_headers["x-account-id"] == "acct-pass"
    assert sent_headers["host"] == upstream.url.removeprefix("http://")
    assert "x-drop-me" not in sent_headers and "user-agent" in sent_headers
    assert response.status_code == 200
    assert response.content == upstream.responses[-1]
    assert response.headers["x-upstream-body-sha256"] == hashlib.sha256(raw).hexdigest()
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers["x-request-id"].startswith("req-")
    assert "x-distillwatch-reasoning" not in response.headers


def test_upstream_cookies_are_never_replayed_to_other_requests(make_gateway, upstream):
    gateway = make_gateway()
    first = gateway.client.post("/v1/chat/completions", json=chat_body())
    assert first.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    with httpx.Client(base_url=gateway.url) as stranger:
        stranger.post("/v1/chat/completions", json=chat_body())
    assert b"cookie" not in {name for name, _ in upstream.requests[-1]["headers"]}


@pytest.mark.parametrize("status", [400, 500, 529])
def test_upstream_errors_pass_unchanged(make_gateway, upstream, status):
    gateway = make_gateway()
    for path, body in (APIS["openai_chat"], APIS["anthropic_messages"]):
        response = gateway.client.post(path, json=body(), headers={"x-fake-status": str(status)})
        assert response.status_code == status
        assert response.content == upstream.responses[-1]
        assert response.headers["x-upstream"] == "error"


def test_malformed_client_json_is_forwarded_unchanged_and_logged(make_gateway, upstream,
                                                                 tmp_path):
    gateway = make_gateway(log_dir=tmp_path / "logs")
    raw = b'{"model": "m", "messages": [ {"role": "user", "content": "hi"}, ]'
    response = gateway.client.post("/v1/chat/completions", content=raw,
                                   headers={"x-account-id": "acct-bad-json"})
    assert upstream.requests[-1]["body"] == raw
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert gateway.gateway.sink.drain()
    rejected = gz_lines(tmp_path / "logs" / ".rejected")
    assert [r["account_id"] for r in rejected] == ["acct-bad-json"]
    assert rejected[0]["request_body"] == raw.decode()
    assert "not JSON" in rejected[0]["reason"]


@pytest.mark.parametrize("api", list(APIS))
def test_sse_is_relayed_chunk_by_chunk(make_gateway, upstream, api):
    gateway = make_gateway()
    path, body = APIS[api]
    gate = f"relay-{api}-{os.urandom(4).hex()}"
    received = b""
    with gateway.client.stream("POST", path, json=body(stream=True),
                               headers={"x-gate": gate}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = upstream.streams[-1] if upstream.streams else None
        chunks = response.iter_raw()
        # Everything but the last event arrives while the upstream still holds it back.
        while events is None or received != b"".join(events[:-1]):
            received += next(chunks)
            events = upstream.streams[-1]
            assert not upstream.gates[gate].is_set()
        assert not upstream.gates[gate].is_set()  # the last event is still held upstream
        # The stream is counted from its head on (just after its bytes leave), not only
        # once it ends.
        counted = f'distillwatch_gateway_requests_total{{route="{api}",status="200"}} 1.0'
        wait_for(lambda: counted in gateway.gateway.metrics.render().decode(), timeout=2)
        assert not upstream.gates[gate].is_set()
        upstream.gates[gate].set()
        for chunk in chunks:
            received += chunk
    assert received == b"".join(events)


def test_other_v1_paths_pass_through(make_gateway, upstream):
    gateway = make_gateway()
    response = gateway.client.get("/v1/models?limit=5", headers={"x-account-id": "acct-pass"})
    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": [{"id": "m-1"}]}
    assert response.headers["x-upstream"] == "models"
    assert upstream.requests[-1]["path"] == "/v1/models"
    assert upstream.requests[-1]["query"] == "limit=5"


def test_unreachable_upstream_is_a_502_in_the_api_shape(make_gateway):
    gateway = make_gateway(upstream_url=f"http://127.0.0.1:{free_port()}")
    openai = gateway.client.post("/v1/chat/completions", json=chat_body())
    assert openai.status_code == 502
    assert openai.json()["error"]["code"] == "upstream_unreachable"
    assert set(openai.json()["error"]) == {"message", "type", "param", "code"}
    anthropic = gateway.client.post("/v1/messages", json=anthropic_body())
    assert anthropic.status_code == 502
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "api_error"
    assert gateway.client.get("/healthz").json()["upstream"]["ok"] is False


def test_slow_upstream_is_a_504_after_the_read_timeout(make_gateway):
    gateway = make_gateway(GatewayPolicy(read_timeout_s=0.2))
    started = time.monotonic()
    response = gateway.client.post("/v1/messages", json=anthropic_body(),
                                   headers={"x-fake-latency-ms": "1500"})
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout_error"
    assert time.monotonic() - started < 1.4


@pytest.mark.parametrize("api", ["openai_chat", "anthropic_messages", "openai_responses"])
def test_refusals_in_each_api_shape(make_gateway, upstream, tmp_path, api):
    scan = _scan_dir(tmp_path, {"acct-t": "throttle", "acct-v": "verify", "acct-b": "block"})
    policy = GatewayPolicy(retry_after_s=42, verification_url="https://verify.example/kyc")
    gateway = make_gateway(policy, scan_dir=scan)
    path, body = APIS[api]
    before = len(upstream.requests)
    answers = {kind: gateway.client.post(path, json=body(), headers={"x-account-id": account})
               for kind, account in (("throttle", "acct-t"), ("verify", "acct-v"),
                                     ("block", "acct-b"))}
    assert len(upstream.requests) == before  # nothing refused reached the upstream
    assert answers["throttle"].status_code == 429
    assert answers["throttle"].headers["retry-after"] == "42"
    assert answers["verify"].status_code == 403
    assert answers["block"].status_code == 403
    for kind, answer in answers.items():
        data = answer.json()
        if api == "anthropic_messages":
            assert data["type"] == "error" and set(data["error"]) == {"type", "message"}
            assert data["error"]["type"] == ("rate_limit_error" if kind == "throttle"
                                             else "permission_error")
            message = data["error"]["message"]
        else:
            assert set(data["error"]) == {"message", "type", "param", "code"}
            message = data["error"]["message"]
        assert answer.headers["x-distillwatch-decision"] == kind
        assert "test" not in message  # the scan's reasons are never told to the client
    assert "https://verify.example/kyc" in (answers["verify"].json()["error"]["message"])
    # An account the scan allowed passes.
    assert gateway.client.post(path, json=body(),
                               headers={"x-account-id": "acct-other"}).status_code == 200


def test_scan_decisions_are_reloaded_when_the_file_changes(make_gateway, tmp_path):
    scan = _scan_dir(tmp_path, {"acct-reload": "allow"})
    gateway = make_gateway(GatewayPolicy(scan_reload_s=0.05), scan_dir=scan)
    headers = {"x-account-id": "acct-reload"}
    assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                               headers=headers).status_code == 200
    _scan_dir(tmp_path, {"acct-reload": "block"})
    wait_for(lambda: gateway.client.post("/v1/chat/completions", json=chat_body(),
                                         headers=headers).status_code == 403, timeout=5)
    _scan_dir(tmp_path, {"acct-reload": "monitor"})
    wait_for(lambda: gateway.client.post("/v1/chat/completions", json=chat_body(),
                                         headers=headers).status_code == 200, timeout=5)


def test_a_broken_scan_file_keeps_the_previous_decisions(make_gateway, tmp_path):
    scan = _scan_dir(tmp_path, {"acct-keep": "block"})
    gateway = make_gateway(GatewayPolicy(scan_reload_s=0.05), scan_dir=scan)
    (scan / "accounts.jsonl").write_bytes(b'{"account_id": "acct-keep", "decis')
    time.sleep(0.4)
    assert gateway.gateway._scan_signature is not None
    assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                               headers={"x-account-id": "acct-keep"}).status_code == 403


def _sse_data(body: bytes) -> list[dict]:
    out = []
    for block in body.split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data: {"):
                out.append(orjson.loads(line[6:]))
    return out


def test_withhold_reasoning_json(make_gateway, tmp_path):
    scan = _scan_dir(tmp_path, {"acct-watch": "monitor"})
    gateway = make_gateway(GatewayPolicy(withhold_reasoning=True), scan_dir=scan)
    watched = {"x-account-id": "acct-watch"}
    chat = gateway.client.post("/v1/chat/completions", json=chat_body(reasoning_effort="high"),
                               headers=watched)
    assert chat.headers["x-distillwatch-reasoning"] == "withheld"
    message = chat.json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Hello world!"}
    assert int(chat.headers["content-length"]) == len(chat.content)
    claude = gateway.client.post("/v1/messages", json=anthropic_body(
        thinking={"type": "enabled", "budget_tokens": 1024}), headers=watched).json()
    assert [b["type"] for b in claude["content"]] == ["thinking", "text"]
    assert claude["content"][0]["thinking"] == "" and claude["content"][1]["text"] == "Hi there."
    responses = gateway.client.post("/v1/responses", json=responses_body(),
                                    headers=watched).json()
    assert responses["output"][0]["summary"][0]["text"] == ""
    assert responses["output"][1]["content"][0]["text"] == "Paris."
    # The same call by an account not under monitor gets the reasoning.
    free = gateway.client.post("/v1/chat/completions", json=chat_body(reasoning_effort="high"),
                               headers={"x-account-id": "acct-free"})
    assert "x-distillwatch-reasoning" not in free.headers
    assert free.json()["choices"][0]["message"]["reasoning_content"] == \
        "Let me think step by step."


def test_withhold_reasoning_sse(make_gateway, tmp_path):
    scan = _scan_dir(tmp_path, {"acct-watch": "monitor"})
    gateway = make_gateway(GatewayPolicy(withhold_reasoning=True), scan_dir=scan)
    watched = {"x-account-id": "acct-watch"}
    chat = gateway.client.post("/v1/chat/completions",
                               json=chat_body(stream=True, reasoning_effort="high"),
                               headers=watched)
    assert chat.headers["x-distillwatch-reasoning"] == "withheld"
    assert b"reasoning_content" not in chat.content and b"step by step" not in chat.content
    text = "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in _sse_data(chat.content) if c.get("choices"))
    assert text == "Hello world!" and chat.content.endswith(b"data: [DONE]\n\n")
    claude = gateway.client.post("/v1/messages", json=anthropic_body(
        stream=True, thinking={"type": "enabled", "budget_tokens": 1024}), headers=watched)
    events = _sse_data(claude.content)
    assert b"a greeting" not in claude.content
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [(0, "thinking"),
                                                                         (1, "text")]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert [d["type"] for d in deltas] == ["signature_delta", "text_delta", "text_delta"]
    responses = gateway.client.post("/v1/responses", json=responses_body(stream=True),
                                    headers=watched)
    assert b"considered the options" not in responses.content
    final = [e for e in _sse_data(responses.content) if e["type"] == "response.completed"]
    assert final[0]["response"]["output"][1]["content"][0]["text"] == "Paris."


def test_rate_limits_throttle_per_account_and_admin_allow_exempts(make_gateway):
    policy = GatewayPolicy(limits={"account": (RateLimit(60, 3),)}, limit_buckets=10)
    gateway = make_gateway(policy)
    busy = {"x-account-id": "acct-busy"}
    codes = [gateway.client.post("/v1/chat/completions", json=chat_body(),
                                 headers=busy).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = gateway.client.post("/v1/chat/completions", json=chat_body(), headers=busy)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) == 6
    assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                               headers={"x-account-id": "acct-calm"}).status_code == 200
    assert gateway.admin("PUT", "/admin/decisions/account:acct-busy",
                         json={"kind": "allow", "reason": "partner"}).status_code == 200
    assert gateway.client.post("/v1/chat/completions", json=chat_body(),
                               headers=busy).status_code == 200


def test_client_disconnect_mid_stream_closes_the_upstream_stream(make_gateway, upstream,
                                                                 tmp_path):
    gateway = make_gateway(log_dir=tmp_path / "logs")
    gate = f"disconnect-{os.urandom(4).hex()}"
    with httpx.Client(base_url=gateway.url, timeout=10) as client, \
            client.stream("POST", "/v1/chat/completions", json=chat_body(stream=True),
                          headers={"x-gate": gate, "x-account-id": "acct-leaver"}) as response:
        next(response.iter_raw())
    # The client has gone, the upstream is still holding its last event: the relay must end.
    sink = gateway.gateway.sink
    wait_for(lambda: sink.written >= 1, timeout=5)
    upstream.gates[gate].set()
    lines = gz_lines(tmp_path / "logs")
    assert lines[0]["account_id"] == "acct-leaver"
    assert lines[0]["response"]["error_type"] == "client_disconnected"
    # The upstream connection of the abandoned stream was handed back, not left streaming.
    connections = gateway.client.get("/healthz").json()["upstream"]["connections"]
    assert connections["in_use"] == 0 and connections["open"] == connections["idle"]


def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send one raw HTTP/1.1 request; the whole raw answer (the server closes after it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_the_gateway_adds_no_request_headers_of_its_own(make_gateway, upstream):
    gateway = make_gateway()
    raw = orjson.dumps(chat_body())
    # No User-Agent, Accept, Accept-Encoding or Content-Type from the client: none upstream.
    # A UTF-8 header value passes byte for byte.
    answer = _raw_exchange(gateway.url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                           b"X-Note: caf\xc3\xa9\r\nConnection: close\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw))
    assert answer.startswith(b"HTTP/1.1 200 ")
    seen = upstream.requests[-1]
    assert seen["body"] == raw
    names = [name for name, _ in seen["headers"]]
    assert sorted(names) == [b"content-length", b"host", b"x-note"]
    assert dict(seen["headers"])[b"x-note"] == b"caf\xc3\xa9"
    assert dict(seen["headers"])[b"content-length"] == str(len(raw)).encode()


def test_compressed_answers_redirects_and_header_names_pass_as_sent(make_gateway, upstream):
    gateway = make_gateway()
    with gateway.client.stream("POST", "/v1/chat/completions", json=chat_body(),
                               headers={"x-fake-gzip": "1"}) as response:
        body = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert body == upstream.responses[-1]  # not decompressed on the way
    assert int(response.headers["content-length"]) == len(body)
    assert response.headers["x-mixed-case"] == "Kept"
    large = gateway.client.post("/v1/chat/completions", json=chat_body(),
                                headers={"x-fake-big-header": "12000"})
    assert large.status_code == 200 and large.headers["x-big"] == "b" * 12000
    redirected = gateway.client.post("/v1/chat/completions", json=chat_body(),
                                     headers={"x-fake-redirect": "/v1/elsewhere"})
    assert redirected.status_code == 302  # passed on, not followed
    assert redirected.headers["location"] == "/v1/elsewhere"
    # Header names reach the client lower-cased, as the gateway always sent them.
    answer = _raw_exchange(gateway.url, b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                           b"Connection: close\r\nContent-Length: 2\r\n\r\n{}")
    assert b"\r\nx-mixed-case: Kept\r\n" in answer


def test_other_v1_paths_stream_the_request_body_upstream(make_gateway, upstream):
    gateway = make_gateway()
    parts = [b'{"purpose": "batch", ', b'"data": "' + b"x" * 70_000 + b'"}']

    def upload():
        yield from parts

    response = gateway.client.post("/v1/files", content=upload(),
                                   headers={"content-type": "application/json"})
    assert response.status_code == 404  # the fake API has no /v1/files: its answer passes
    assert response.content == b'{"error": "not found"}'
    seen = upstream.requests[-1]
    assert seen["path"] == "/v1/files" and seen["body"] == b"".join(parts)
    assert (b"transfer-encoding", b"chunked") in seen["headers"]


def test_unknown_methods_and_bare_v1_are_starlettes(make_gateway):
    gateway = make_gateway()
    assert gateway.client.request("TRACE", "/v1/chat/completions").status_code == 405
    assert gateway.client.get("/v2/models").status_code == 404


def test_a_client_leaving_mid_upload_is_not_an_upstream_failure(make_gateway, upstream):
    gateway = make_gateway()
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n"
                     + b"x" * 1000)
        time.sleep(0.2)  # the upload has started upstream; then the client goes
    wait_for(lambda: gateway.client.get("/healthz").json()["upstream"]["connections"][
        "in_use"] == 0)
    assert gateway.client.get("/healthz").json()["upstream"]["ok"] is not False
    assert gateway.client.get("/v1/models").status_code == 200  # and it goes on serving
