"""A fake OpenAI / Anthropic-compatible upstream with a fixed latency, for gateway benchmarks.

Usage:
    python -m benchmarks.fake_upstream [--host 127.0.0.1] [--port 8900] [--latency-ms 20]
        [--chunks 8] [--chunk-interval-ms 0] [--text-bytes 600]

Answers ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/completions`` (OpenAI) and
``/v1/messages`` (Anthropic) with bodies of each API's real shape (ids, usage, finish reasons;
an Anthropic ``thinking`` block when the request enables thinking, OpenAI
``reasoning_content`` when it sets ``reasoning_effort``), and each API's server-sent events
when the body says ``"stream": true`` (chat / completions chunks ending in ``data: [DONE]``;
Responses ``response.*`` events; Anthropic ``message_start`` … ``message_stop``). Every
answer waits ``--latency-ms`` (time to first byte; streams then send ``--chunks`` text deltas,
``--chunk-interval-ms`` apart). ``GET /health`` answers at once.

Per request, for fault tests: header ``x-fake-latency-ms`` overrides the latency and
``x-fake-status`` (e.g. 500, 529) answers that status with an error body in the API's shape.
Malformed JSON gets a 400 in the API's shape, as the real APIs do.

It is a raw ASGI callable (no framework) served by uvicorn with uvloop and httptools when they
are installed, one process, no access log: cheap enough (tens of microseconds of CPU a
request) not to be the bottleneck of a gateway benchmark at several thousand requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import orjson

OPENAI_PATHS = {
    b"/v1/chat/completions": "openai_chat",
    b"/v1/responses": "openai_responses",
    b"/v1/completions": "openai_completions",
}
PATHS = {**OPENAI_PATHS, b"/v1/messages": "anthropic_messages"}
_TEXT_WORDS = ("the model answers with a careful step by step explanation of the problem and "
               "then gives a short final answer that the user can check against the examples "
               "given in the prompt while noting the assumptions it made along the way")
_WORDS = tuple(_TEXT_WORDS.split(" "))


def _text(n_bytes: int) -> str:
    out, size = [], 0
    for word in itertools.cycle(_WORDS):
        if size >= n_bytes:
            break
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def _error_body(api: str, status: int, message: str) -> bytes:
    if api == "anthropic_messages":
        kind = {400: "invalid_request_error", 401: "authentication_error",
                404: "not_found_error", 429: "rate_limit_error",
                529: "overloaded_error"}.get(status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    kind = {400: "invalid_request_error", 404: "invalid_request_error",
            429: "rate_limit_exceeded"}.get(status, "server_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None,
                                   "code": None}})


def _sse(data: dict, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


class FakeUpstream:
    """The ASGI app. ``latency_ms``: delay before the first byte of every answer."""

    def __init__(self, latency_ms: float = 20.0, chunks: int = 8, chunk_interval_ms: float = 0.0,
                 text_bytes: int = 600) -> None:
        self.latency = latency_ms / 1000
        self.chunks = max(1, chunks)
        self.chunk_interval = chunk_interval_ms / 1000
        self.text = _text(text_bytes)
        words = self.text.split(" ")
        step = -(-len(words) // self.chunks)
        self.deltas = [" ".join(words[i:i + step]) + (" " if i + step < len(words) else "")
                       for i in range(0, len(words), step)]
        self.thinking = _text(text_bytes // 2)
        self.counter = itertools.count(1)
        self.requests = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":          # serve() runs without lifespan events
            return
        path = scope["path"].encode()
        if scope["method"] == "GET" and path in (b"/health", b"/"):
            await self._reply(send, 200, b'{"status":"ok"}')
            return
        api = PATHS.get(path)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if api is None:
            await self._reply(send, 404, _error_body("openai_chat", 404, "Unknown path"))
            return
        if scope["method"] != "POST":
            await self._reply(send, 405, _error_body(api, 405, "Method not allowed"))
            return
        self.requests += 1
        latency, status = self.latency, 200
        for name, value in scope["headers"]:
            if name == b"x-fake-latency-ms":
                latency = float(value) / 1000
            elif name == b"x-fake-status":
                status = int(value)
        try:
            request = orjson.loads(body)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            await self._reply(send, 400, _error_body(api, 400, "Could not parse the JSON body"),
                              api)
            return
        if latency > 0:
            await asyncio.sleep(latency)
        if status != 200:
            await self._reply(send, status, _error_body(api, status, "Fake upstream error"), api)
            return
        number = next(self.counter)
        model = str(request.get("model") or ("claude-sonnet-4-5" if api == "anthropic_messages"
                                             else "gpt-4.1"))
        prompt_tokens = max(1, len(body) // 4)
        if request.get("stream"):
            await self._stream(send, api, request, model, number, prompt_tokens)
        else:
            await self._reply(send, 200, self._complete(api, request, model, number,
                                                        prompt_tokens), api)

    async def _reply(self, send, status: int, body: bytes, api: str = "openai_chat") -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": self._headers(api, b"application/json", len(body))})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _headers(api: str, content_type: bytes, length: int | None = None) -> list:
        rid = b"req_%d" % time.monotonic_ns()
        headers = [(b"content-type", content_type)]
        if length is not None:
            headers.append((b"content-length", b"%d" % length))
        if api == "anthropic_messages":
            headers.append((b"request-id", rid))
        else:
            headers += [(b"x-request-id", rid), (b"openai-processing-ms", b"20")]
        if content_type == b"text/event-stream":
            headers.append((b"cache-control", b"no-cache"))
        return headers

    def _complete(self, api: str, request: dict, model: str, n: int, prompt_tokens: int) -> bytes:
        created = int(time.time())
        completion_tokens = len(self.text) // 4
        if api == "openai_chat":
            message = {"role": "assistant", "content": self.text, "refusal": None,
                       "annotations": []}
            if request.get("reasoning_effort"):
                message["reasoning_content"] = self.thinking
            return orjson.dumps({
                "id": f"chatcmpl-fake{n:012d}", "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
                "service_tier": "default", "system_fingerprint": "fp_fake0001"})
        if api == "openai_completions":
            return orjson.dumps({
                "id": f"cmpl-fake{n:012d}", "object": "text_completion", "created": created,
                "model": model,
                "choices": [{"text": self.text, "index": 0, "logprobs": None,
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}})
        if api == "openai_responses":
            return orjson.dumps(self._response_object(n, model, created, prompt_tokens,
                                                      completion_tokens, "completed"))
        content = []
        if (request.get("thinking") or {}).get("type") == "enabled":
            content.append({"type": "thinking", "thinking": self.thinking,
                            "signature": "fakesig" + "A" * 40})
        content.append({"type": "text", "text": self.text})
        return orjson.dumps({
            "id": f"msg_fake{n:016d}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})

    def _response_object(self, n: int, model: str, created: int, prompt_tokens: int,
                         completion_tokens: int, status: str) -> dict:
        done = status == "completed"
        output = [{"type": "message", "id": f"msg_fake{n:012d}", "status": status,
                   "role": "assistant",
                   "content": [{"type": "output_text", "text": self.text,
                                "annotations": []}]}] if done else []
        return {"id": f"resp_fake{n:012d}", "object": "response", "created_at": created,
                "status": status, "error": None, "incomplete_details": None, "model": model,
                "output": output, "parallel_tool_calls": True, "temperature": 1.0,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens} if done else None}

    def _events(self, api: str, request: dict, model: str, n: int, prompt_tokens: int):
        """The SSE events of one streamed answer: (first, [per delta], last) as bytes."""
        created = int(time.time())
        completion_tokens = len(self.text) // 4
        if api in ("openai_chat", "openai_completions"):
            chat = api == "openai_chat"
            base = {"id": f"{'chatcmpl' if chat else 'cmpl'}-fake{n:012d}",
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": created, "model": model}
            if chat:
                first = [_sse({**base, "choices": [{"index": 0, "delta": {
                    "role": "assistant", "content": ""}, "logprobs": None,
                    "finish_reason": None}]})]
                deltas = [_sse({**base, "choices": [{"index": 0, "delta": {"content": d},
                                                     "logprobs": None, "finish_reason": None}]})
                          for d in self.deltas]
                last = [_sse({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                                   "finish_reason": "stop"}]})]
            else:
                first = []
                deltas = [_sse({**base, "choices": [{"text": d, "index": 0, "logprobs": None,
                                                     "finish_reason": None}]})
                          for d in self.deltas]
                last = [_sse({**base, "choices": [{"text": "", "index": 0, "logprobs": None,
                                                   "finish_reason": "stop"}]})]
            if (request.get("stream_options") or {}).get("include_usage"):
                last.append(_sse({**base, "choices": [], "usage": {
                    "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens}}))
            last.append(b"data: [DONE]\n\n")
            return first, deltas, last
        if api == "openai_responses":
            pending = self._response_object(n, model, created, prompt_tokens, completion_tokens,
                                            "in_progress")
            item = f"msg_fake{n:012d}"
            seq = itertools.count()
            first = [_sse({"type": "response.created", "sequence_number": next(seq),
                           "response": pending}, "response.created"),
                     _sse({"type": "response.output_item.added", "sequence_number": next(seq),
                           "output_index": 0, "item": {"type": "message", "id": item,
                                                       "status": "in_progress",
                                                       "role": "assistant", "content": []}},
                          "response.output_item.added")]
            deltas = [_sse({"type": "response.output_text.delta", "sequence_number": next(seq),
                            "item_id": item, "output_index": 0, "content_index": 0,
                            "delta": d}, "response.output_text.delta") for d in self.deltas]
            last = [_sse({"type": "response.output_text.done", "sequence_number": next(seq),
                          "item_id": item, "output_index": 0, "content_index": 0,
                          "text": self.text}, "response.output_text.done"),
                    _sse({"type": "response.completed", "sequence_number": next(seq),
                          "response": self._response_object(n, model, created, prompt_tokens,
                                                            completion_tokens, "completed")},
                         "response.completed")]
            return first, deltas, last
        message_id = f"msg_fake{n:016d}"
        first = [_sse({"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": 1}}}, "message_start")]
        index = 0
        deltas = []
        if (request.get("thinking") or {}).get("type") == "enabled":
            first += [_sse({"type": "content_block_start", "index": 0, "content_block": {
                "type": "thinking", "thinking": ""}}, "content_block_start"),
                _sse({"type": "content_block_delta", "index": 0, "delta": {
                    "type": "thinking_delta", "thinking": self.thinking}},
                    "content_block_delta"),
                _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")]
            index = 1
        first += [_sse({"type": "content_block_start", "index": index, "content_block": {
            "type": "text", "text": ""}}, "content_block_start"),
            _sse({"type": "ping"}, "ping")]
        deltas = [_sse({"type": "content_block_delta", "index": index, "delta": {
            "type": "text_delta", "text": d}}, "content_block_delta") for d in self.deltas]
        last = [_sse({"type": "content_block_stop", "index": index}, "content_block_stop"),
                _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                         "stop_sequence": None},
                      "usage": {"output_tokens": completion_tokens}}, "message_delta"),
                _sse({"type": "message_stop"}, "message_stop")]
        return first, deltas, last

    async def _stream(self, send, api: str, request: dict, model: str, n: int,
                      prompt_tokens: int) -> None:
        first, deltas, last = self._events(api, request, model, n, prompt_tokens)
        await send({"type": "http.response.start", "status": 200,
                    "headers": self._headers(api, b"text/event-stream")})
        # The first delta goes with the opening events: one write at the time to first byte.
        await send({"type": "http.response.body", "body": b"".join(first) + deltas[0],
                    "more_body": True})
        for chunk in deltas[1:]:
            if self.chunk_interval > 0:
                await asyncio.sleep(self.chunk_interval)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"".join(last)})


def serve(app, host: str, port: int) -> None:
    """Run an ASGI app with uvicorn, uvloop and httptools when installed, no access log."""
    import uvicorn

    from distillwatch.cli.serve import fastest_loop_and_http

    loop, http = fastest_loop_and_http()
    uvicorn.run(app, host=host, port=port, loop=loop, http=http, access_log=False,
                log_level="warning", lifespan="off", backlog=4096, timeout_keep_alive=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="delay before the first byte of every answer")
    parser.add_argument("--chunks", type=int, default=8, help="text deltas per streamed answer")
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0,
                        help="delay between streamed deltas")
    parser.add_argument("--text-bytes", type=int, default=600,
                        help="size of the answer's text")
    args = parser.parse_args()
    serve(FakeUpstream(args.latency_ms, args.chunks, args.chunk_interval_ms, args.text_bytes),
          args.host, args.port)


if __name__ == "__main__":
    main()
