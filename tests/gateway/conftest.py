"""Real servers on loopback for the gateway tests: a fake LLM API and gateways in front of it.

The fake upstream speaks OpenAI chat / completions / Responses and Anthropic messages, JSON
and server-sent events. A request with ``x-gate: NAME`` streams all but its last event, then
waits for ``upstream.gates[NAME]`` (a threading.Event) to be set: a test proves chunk-by-chunk
relay by reading the first chunks through the gateway before it releases the gate.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

VENV_BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("DISTILLWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")


# --- servers in threads ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """An ASGI app served by uvicorn on a loopback port, in a thread with its own loop."""

    def __init__(self, app, port: int | None = None) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                proxy_headers=False, server_header=False, date_header=False,
                                loop="asyncio", http="httptools")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class FrontServerThread:
    """A gateway app served by serve's own front end (``gateway.relay.FrontServer``, what
    ``distillwatch serve`` runs by default) on a loopback port, in a thread with its own loop."""

    def __init__(self, app) -> None:
        from distillwatch.gateway.relay import FrontServer

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.front = FrontServer(app, grace_s=2.0)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stopping = asyncio.Event()
            await self.front.serve(sock=self.sock, stop=self.stopping,
                                   on_ready=lambda _server: self.ready.set())

        try:
            asyncio.run(main())
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self.error = error
            self.ready.set()

    def start(self) -> FrontServerThread:
        self.thread.start()
        if not self.ready.wait(10) or self.error is not None:
            raise RuntimeError(f"front server did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self.loop is not None and self.stopping is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(10)
        self.sock.close()


# --- the fake upstream -----------------------------------------------------------------------

_ids = itertools.count(1)


def _sse(data: dict | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return ((f"event: {event}\n" if event else "") + f"data: {payload}\n\n").encode()


def chat_events(body: dict) -> list[bytes]:
    cid = f"chatcmpl-{next(_ids)}"
    base = {"id": cid, "object": "chat.completion.chunk", "created": 1770000000,
            "model": body.get("model")}
    out = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                      "finish_reason": None}]})]
    if body.get("reasoning_effort"):
        for piece in ("Let me think", " step by step."):
            out.append(_sse({**base, "choices": [{"index": 0, "delta": {
                "reasoning_content": piece}, "finish_reason": None}]}))
    for piece in ("Hello", " world", "!"):
        out.append(_sse({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                              "finish_reason": None}]}))
    out.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    out.append(_sse({**base, "choices": [], "usage": {
        "prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14,
        "completion_tokens_details": {"reasoning_tokens": 5}}}))
    out.append(_sse("[DONE]"))
    return out


def chat_json(body: dict) -> dict:
    message = {"role": "assistant", "content": "Hello world!"}
    if body.get("reasoning_effort"):
        message["reasoning_content"] = "Let me think step by step."
    return {"id": f"chatcmpl-{next(_ids)}", "object": "chat.completion",
            "created": 1770000000, "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}}


def completions_events(body: dict) -> list[bytes]:
    base = {"id": f"cmpl-{next(_ids)}", "object": "text_completion", "model": body.get("model")}
    out = [_sse({**base, "choices": [{"index": 0, "text": piece, "finish_reason": None}]})
           for piece in ("Once", " upon", " a time")]
    out.append(_sse({**base, "choices": [{"index": 0, "text": "", "finish_reason": "length"}],
                     "usage": {"prompt_tokens": 4, "completion_tokens": 3}}))
    out.append(_sse("[DONE]"))
    return out


def completions_json(body: dict) -> dict:
    return {"id": f"cmpl-{next(_ids)}", "object": "text_completion", "model": body.get("model"),
            "choices": [{"index": 0, "text": "Once upon a time", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 4}}


def responses_json(body: dict) -> dict:
    return {"id": f"resp_{next(_ids)}", "object": "response", "created_at": 1770000000,
            "status": "completed", "model": body.get("model"),
            "output": [
                {"id": "rs_1", "type": "reasoning",
                 "summary": [{"type": "summary_text", "text": "I considered the options."}]},
                {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Paris.", "annotations": []}]}],
            "usage": {"input_tokens": 9, "output_tokens": 2,
                      "output_tokens_details": {"reasoning_tokens": 7}}}


def responses_events(body: dict) -> list[bytes]:
    final = responses_json(body)
    created = {**final, "status": "in_progress", "output": []}
    return [
        _sse({"type": "response.created", "response": created}, "response.created"),
        _sse({"type": "response.output_item.added", "output_index": 0,
              "item": {"id": "rs_1", "type": "reasoning", "summary": []}},
             "response.output_item.added"),
        _sse({"type": "response.reasoning_summary_text.delta", "output_index": 0,
              "summary_index": 0, "delta": "I considered the options."},
             "response.reasoning_summary_text.delta"),
        _sse({"type": "response.reasoning_summary_text.done", "output_index": 0,
              "summary_index": 0, "text": "I considered the options."},
             "response.reasoning_summary_text.done"),
        _sse({"type": "response.output_text.delta", "output_index": 1, "delta": "Par"},
             "response.output_text.delta"),
        _sse({"type": "response.output_text.delta", "output_index": 1, "delta": "is."},
             "response.output_text.delta"),
        _sse({"type": "response.completed", "response": final}, "response.completed"),
    ]


def anthropic_json(body: dict) -> dict:
    content = []
    if (body.get("thinking") or {}).get("type") == "enabled":
        content.append({"type": "thinking", "thinking": "The user wants a greeting.",
                        "signature": "sig-abc"})
    content.append({"type": "text", "text": "Hi there."})
    return {"id": f"msg_{next(_ids)}", "type": "message", "role": "assistant",
            "model": body.get("model"), "content": content, "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 6}}


def anthropic_events(body: dict) -> list[bytes]:
    message = anthropic_json(body)
    start = {**message, "content": [], "stop_reason": None,
             "usage": {"input_tokens": 12, "output_tokens": 1}}
    out = [_sse({"type": "message_start", "message": start}, "message_start")]
    index = 0
    if (body.get("thinking") or {}).get("type") == "enabled":
        out += [
            _sse({"type": "content_block_start", "index": 0,
                  "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                 "content_block_start"),
            _sse({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "thinking_delta", "thinking": "The user wants "}},
                 "content_block_delta"),
            _sse({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "thinking_delta", "thinking": "a greeting."}},
                 "content_block_delta"),
            _sse({"type": "content_block_delta", "index": 0,
                  "delta": {"type": "signature_delta", "signature": "sig-abc"}},
                 "content_block_delta"),
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")]
        index = 1
    out += [
        _sse({"type": "content_block_start", "index": index,
              "content_block": {"type": "text", "text": ""}}, "content_block_start"),
        _sse({"type": "content_block_delta", "index": index,
              "delta": {"type": "text_delta", "text": "Hi "}}, "content_block_delta"),
        _sse({"type": "content_block_delta", "index": index,
              "delta": {"type": "text_delta", "text": "there."}}, "content_block_delta"),
        _sse({"type": "content_block_stop", "index": index}, "content_block_stop"),
        _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                 "stop_sequence": None},
              "usage": {"output_tokens": 6}}, "message_delta"),
        _sse({"type": "message_stop"}, "message_stop")]
    return out


HANDLERS = {"/v1/chat/completions": (chat_json, chat_events),
            "/v1/completions": (completions_json, completions_events),
            "/v1/responses": (responses_json, responses_events),
            "/v1/messages": (anthropic_json, anthropic_events)}


class FakeUpstream:
    """The fake API's state: every request seen, and the gates of gated streams."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.responses: list[bytes] = []  # JSON bodies sent, in order
        self.streams: list[list[bytes]] = []  # the events of each stream sent, in order
        self.gates: dict[str, threading.Event] = defaultdict(threading.Event)
        self.app = Starlette(routes=[
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/{path:path}", self.llm, methods=["POST"]),
        ])

    async def models(self, request: Request) -> Response:
        self._record(request, b"")
        return Response(orjson.dumps({"object": "list", "data": [{"id": "m-1"}]}),
                        media_type="application/json", headers={"x-upstream": "models"})

    def _record(self, request: Request, body: bytes) -> None:
        self.requests.append({"path": request.url.path, "query": request.url.query,
                              "headers": list(request.headers.raw), "body": body})

    async def llm(self, request: Request) -> Response:
        raw = await request.body()
        self._record(request, raw)
        handlers = HANDLERS.get(request.url.path)
        fake_status = request.headers.get("x-fake-status")
        anthropic = request.url.path == "/v1/messages"
        redirect = request.headers.get("x-fake-redirect")
        if redirect:  # the gateway must pass a redirect on, never follow it
            return Response(b"", status_code=302, headers={"location": redirect})
        if fake_status:
            error = ({"type": "error", "error": {"type": "api_error", "message": "boom"}}
                     if anthropic else {"error": {"message": "boom", "type": "server_error",
                                                  "param": None, "code": None}})
            sent = orjson.dumps(error)
            self.responses.append(sent)
            return Response(sent, status_code=int(fake_status), media_type="application/json",
                            headers={"x-upstream": "error"})
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Response(orjson.dumps({"error": {"message": "We could not parse the JSON "
                                                    "body of your request.",
                                                    "type": "invalid_request_error",
                                                    "param": None, "code": None}}),
                            status_code=400, media_type="application/json")
        if handlers is None:
            return Response(b'{"error": "not found"}', status_code=404)
        delay = float(request.headers.get("x-fake-latency-ms", "0")) / 1000
        if delay:
            await asyncio.sleep(delay)
        digest = hashlib.sha256(raw).hexdigest()
        headers = {"x-upstream-body-sha256": digest, "x-request-id": f"req-{next(_ids)}"}
        if body.get("stream"):
            events = handlers[1](body)
            self.streams.append(events)
            gate = request.headers.get("x-gate")

            async def stream():
                for position, event in enumerate(events):
                    if gate and position == len(events) - 1:
                        while not self.gates[gate].is_set():
                            await asyncio.sleep(0.005)
                    yield event
                    await asyncio.sleep(0)

            return StreamingResponse(stream(), media_type="text/event-stream",
                                     headers={**headers, "cache-control": "no-cache"})
        sent = orjson.dumps(handlers[0](body))
        self.responses.append(sent)
        if request.headers.get("x-fake-gzip"):  # compressed: must pass as sent
            sent = gzip.compress(sent, mtime=0)
            self.responses[-1] = sent
            headers["content-encoding"] = "gzip"
        response = Response(sent, media_type="application/json", headers=headers)
        response.raw_headers.append((b"X-Mixed-Case", b"Kept"))
        big = int(request.headers.get("x-fake-big-header", "0"))
        if big:  # a large answer header (a long cookie, a trace context)
            response.raw_headers.append((b"x-big", b"b" * big))
        response.raw_headers.append((b"set-cookie", b"a=1; Path=/"))
        response.raw_headers.append((b"set-cookie", b"b=2; Path=/"))
        return response


@pytest.fixture(scope="session")
def upstream():
    fake = FakeUpstream()
    server = ServerThread(fake.app).start()
    fake.url = server.url
    yield fake
    server.stop()


# --- gateways --------------------------------------------------------------------------------

ADMIN_TOKEN = "test-admin-token-0123456789"
KEY = b"gateway-test-key-0123456789abcdef"


class GatewayHandle:
    def __init__(self, app, server: ServerThread) -> None:
        self.app, self.server = app, server
        self.gateway = app.state.gateway
        self.url = server.url
        self.client = httpx.Client(base_url=server.url, timeout=10)

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def gateway_server() -> str:
    """Which server runs the gateways of a test: ``builtin`` (serve's own front end, the
    default of ``distillwatch serve``) or ``uvicorn`` (``--server uvicorn``); test_proxy runs
    every test under both."""
    return "builtin"


@pytest.fixture
def make_gateway(upstream, gateway_server):
    """Start a gateway (in a thread, on a free port) in front of the fake upstream."""
    from distillwatch.gateway.app import GatewayConfig, build_app
    from distillwatch.gateway.decisions import GatewayPolicy

    made: list[GatewayHandle] = []

    def make(policy: GatewayPolicy | None = None, **options) -> GatewayHandle:
        options.setdefault("admin_token", ADMIN_TOKEN)
        options.setdefault("key", KEY)
        options.setdefault("detector", None)  # the real detector only where a test asks
        config = GatewayConfig(upstream=options.pop("upstream_url", upstream.url),
                               policy=policy or GatewayPolicy(), **options)
        app = build_app(config)
        server = FrontServerThread(app) if gateway_server == "builtin" else ServerThread(app)
        handle = GatewayHandle(app, server.start())
        made.append(handle)
        return handle

    yield make
    for handle in made:
        handle.close()


def chat_body(**extra) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Say hello."}],
            **extra}


def anthropic_body(**extra) -> dict:
    return {"model": "claude-test", "max_tokens": 256, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Say hello."}], **extra}


def responses_body(**extra) -> dict:
    return {"model": "gpt-test", "instructions": "Be brief.",
            "input": "What is the capital of France?", **extra}


def completions_body(**extra) -> dict:
    return {"model": "gpt-test-instruct", "prompt": "Tell me a story", "max_tokens": 8,
            **extra}


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis_prefix():
    """A fresh key prefix on the machine's Redis; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {REDIS_URL}: {error}")
    prefix = f"dwtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


class RedisServer:
    """A throwaway redis-server on a free port (stopped and started at will)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not on PATH")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


def gz_lines(folder: Path, pattern: str = "*.gz") -> list[dict]:
    """Every JSON line of the gzip files matching ``pattern`` in ``folder``, in file order."""
    out = []
    for path in sorted(folder.glob(pattern)):
        with gzip.open(path) as handle:
            out += [orjson.loads(line) for line in handle]
    return out


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns a truthy value; that value, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
