"""serve's own front end (``gateway.relay``) where it differs from any ASGI server: raw HTTP/1.1
on the client side (100-continue, chunked uploads, pipelining, malformed requests) and its own
upstream connections (stale keep-alive retry, answers without a length, a bounded pool).
Everything else it shares with the ASGI path is run under both servers in test_proxy.py."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time

import httpx
import orjson
import pytest

from distillwatch.gateway.decisions import GatewayPolicy

from .conftest import chat_body


def _raw(url: str, data: bytes, until: bytes = b"", expect: int = 1,
         timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; read until ``expect`` answers ending ``until``
    arrived (or the server closes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until and received.count(until) >= expect:
                break
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            f"X-Account-Id: acct-raw\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def test_expect_100_continue_is_answered_before_the_body(make_gateway):
    gateway = make_gateway()
    body = orjson.dumps(chat_body())
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = _post("/v1/chat/completions", body, "Expect: 100-continue\r\n")
        sock.sendall(head[:-len(body)])
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # before any body byte
        sock.sendall(body)
        answer = b""
        while b'"chat.completion"' not in answer:
            answer += sock.recv(65536)
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"


def test_a_chunked_upload_goes_upstream_whole_with_its_length(make_gateway, upstream):
    gateway = make_gateway()
    body = orjson.dumps(chat_body())
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(part), part)
                       for part in (body[:10], body[10:40], body[40:])) + b"0\r\n\r\n"
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json"
            b"\r\nX-Account-Id: acct-chunked\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer = _raw(gateway.url, head + chunked, until=b'"chat.completion"')
    assert answer.startswith(b"HTTP/1.1 200 OK")
    seen = upstream.requests[-1]
    headers = {k.decode(): v.decode() for k, v in seen["headers"]}
    assert seen["body"] == body
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers


def test_pipelined_requests_are_answered_in_order(make_gateway):
    gateway = make_gateway()
    bodies = [orjson.dumps(chat_body(messages=[{"role": "user", "content": f"question {i}"}]))
              for i in range(3)]
    requests = [_post("/v1/chat/completions", body) for body in bodies]
    requests.append(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
    answers = _raw(gateway.url, b"".join(requests))  # read until the server closes
    starts = [i for i in range(len(answers)) if answers.startswith(b"HTTP/1.1 ", i)]
    assert len(starts) == 4
    assert b'"status"' in answers[starts[3]:]  # the healthz answer came last
    for n, start in enumerate(starts[:3]):  # the fake upstream names the body it answered
        digest = hashlib.sha256(bodies[n]).hexdigest().encode()
        assert b"x-upstream-body-sha256: " + digest in answers[start:starts[n + 1]]


def test_a_malformed_request_is_a_400_and_the_connection_closes(make_gateway):
    gateway = make_gateway()
    answer = _raw(gateway.url, b"POST /v1/chat/completions HTTP/1.1\r\nHost gw\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"malformed request" in answer


# --- upstreams the fake one cannot play ------------------------------------------------------


class RawUpstream:
    """A scripted HTTP/1.1 upstream on loopback: ``answer(n, conn_requests)`` gives the bytes
    for the n-th request overall (the k-th on its connection) or None to close silently."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests = 0
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        on_connection = 0
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += conn.recv(65536)
                buffer = rest[length:]
                on_connection += 1
                self.requests += 1
                data = self.answer(self.requests, on_connection)
                if data is None:
                    return
                conn.sendall(data)
                if b"connection: close" in data.lower():
                    return

    def close(self) -> None:
        self.sock.close()


def _json_answer(text: str, keep: bool = True) -> bytes:
    body = orjson.dumps({"id": "x", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text},
         "finish_reason": "stop"}]})
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%b\r\n"
            % (len(body), b"" if keep else b"connection: close\r\n")) + body


@pytest.fixture
def raw_upstream():
    made = []

    def make(answer) -> RawUpstream:
        made.append(RawUpstream(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_kept_alive_connection_closed_by_the_upstream_is_retried_once(make_gateway,
                                                                         raw_upstream):
    # The upstream answers the first request of each connection and drops the second one
    # unanswered: the moment an idle connection is closed as a request is written on it.
    server = raw_upstream(lambda n, k: _json_answer(f"answer {n}") if k == 1 else None)
    gateway = make_gateway(upstream_url=server.url)
    first = gateway.client.post("/v1/chat/completions", json=chat_body())
    second = gateway.client.post("/v1/chat/completions", json=chat_body())
    assert first.status_code == second.status_code == 200
    assert second.json()["choices"][0]["message"]["content"] == "answer 3"
    assert server.connections == 2


def test_a_fresh_connection_that_fails_is_not_retried(make_gateway, raw_upstream):
    server = raw_upstream(lambda n, k: None)  # never answers
    gateway = make_gateway(upstream_url=server.url)
    answer = gateway.client.post("/v1/chat/completions", json=chat_body())
    assert answer.status_code == 502
    assert answer.json()["error"]["type"]
    assert server.requests == 1  # sent once: a request may not be replayed at will


def test_an_answer_ended_by_closing_the_connection_is_relayed_whole(make_gateway,
                                                                     raw_upstream, tmp_path):
    body = b"data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"hi\"}}]}\n\n" \
           b"data: [DONE]\n\n"
    server = raw_upstream(lambda n, k: b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream"
                          b"\r\nconnection: close\r\n\r\n" + body)
    gateway = make_gateway(upstream_url=server.url, log_dir=tmp_path / "logs")
    answer = gateway.client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert answer.status_code == 200
    assert answer.content == body
    assert answer.headers["transfer-encoding"] == "chunked"  # re-framed for keep-alive
    assert gateway.gateway.sink.drain()
    assert gateway.gateway.sink.written == 1


def test_a_pool_of_one_connection_serves_concurrent_requests_in_turn(make_gateway,
                                                                      raw_upstream):
    def slow(n: int, k: int) -> bytes:
        time.sleep(0.2)
        return _json_answer(f"answer {n}")

    server = raw_upstream(slow)
    policy = GatewayPolicy(max_connections=1, max_idle_connections=1)
    gateway = make_gateway(policy, upstream_url=server.url)

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            return await asyncio.gather(*[client.post("/v1/chat/completions", json=chat_body())
                                          for _ in range(3)])

    answers = asyncio.run(both())
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert server.connections == 1
    assert gateway.gateway.metrics.render().count(b"distillwatch_gateway_upstream_connections")
