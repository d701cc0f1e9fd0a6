"""Provider log lines become Exchange records with the right fields."""

from __future__ import annotations

import json

import orjson
import pytest

from distillwatch.fingerprint.features import exchange_features
from distillwatch.ingest.formats import dialect, to_exchange
from distillwatch.ingest.readers import read_exchanges
from distillwatch.ingest.rejects import RejectSink
from distillwatch.ingest.validate import check_exchange

IDENTITY = {"account_id": "org-42", "api_key_id": "key-7", "client_ip": "198.51.100.7",
            "user_agent": "OpenAI/Python 1.99.1"}
OPENAI_CHAT = {
    **IDENTITY, "timestamp": "2026-05-02T10:00:00Z",
    "request": {"model": "gpt-x", "n": 4, "logprobs": True, "top_logprobs": 5,
                "max_completion_tokens": 16000, "reasoning_effort": "high",
                "messages": [{"role": "system", "content": "You are a solver."},
                             {"role": "user", "content": "Prove it step by step."}],
                "tools": [{"type": "function", "function": {"name": "calc", "parameters": {}}}]},
    "response": {"id": "chatcmpl-1", "created": 1777716000,
                 "choices": [{"message": {"content": "First..."}, "finish_reason": "length"}],
                 "usage": {"prompt_tokens": 30, "completion_tokens": 16000,
                           "completion_tokens_details": {"reasoning_tokens": 9000}}},
}
OPENAI_RESPONSES = {
    **IDENTITY,
    "request": {"model": "gpt-x", "instructions": "Grade answers.", "reasoning":
                {"effort": "medium"}, "max_output_tokens": 2048,
                "input": [{"role": "user", "content": "Rate this response from 1 to 10: ..."}]},
    "response": {"id": "resp_1", "object": "response", "created_at": 1777716001,
                 "status": "completed",
                 "output": [{"type": "message", "content": [{"type": "output_text",
                                                             "text": "Score: 7"}]}],
                 "usage": {"input_tokens": 40, "output_tokens": 5,
                           "output_tokens_details": {"reasoning_tokens": 100}}},
}
ANTHROPIC = {
    **IDENTITY, "timestamp": "2026-05-02T10:00:02.5Z",
    "request": {"model": "claude-x", "max_tokens": 8000, "system": "You are an agent.",
                "thinking": {"type": "enabled", "budget_tokens": 4000},
                "messages": [{"role": "user", "content": [{"type": "text",
                                                           "text": "Book a flight"}]}],
                "tools": [{"name": "search", "input_schema": {"type": "object"}}]},
    "response": {"id": "msg_1", "type": "message", "stop_reason": "tool_use",
                 "content": [{"type": "text", "text": "Searching."}],
                 "usage": {"input_tokens": 50, "output_tokens": 20}},
}


@pytest.mark.parametrize("record, expected", [
    (OPENAI_CHAT, "openai_chat"), (OPENAI_RESPONSES, "openai_responses"),
    (ANTHROPIC, "anthropic_messages")])
def test_dialect_and_a_valid_exchange(record, expected):
    assert dialect(record) == expected
    exchange = to_exchange(record)
    assert check_exchange(exchange) is None
    assert exchange["account_id"] == "org-42" and exchange["client"]["ip"] == "198.51.100.7"


def test_openai_chat_fields():
    e = to_exchange(OPENAI_CHAT)
    assert (e["exchange_id"], e["request"]["n"], e["request"]["max_tokens"]) == (
        "chatcmpl-1", 4, 16000)
    assert e["request"]["system"] == "You are a solver." and e["request"]["logprobs"] is True
    assert e["request"]["reasoning"]["enabled"] and e["usage"]["reasoning_tokens"] == 9000
    assert e["response"]["finish_reason"] == "length"


def test_an_assistant_turn_that_only_calls_tools_is_a_valid_message():
    # OpenAI sends an agent's tool calls as an assistant message with "content": null.
    call = {"id": "call_1", "type": "function",
            "function": {"name": "read_file", "arguments": "{\"path\": \"a.py\"}"}}
    line = {**OPENAI_CHAT, "request": {**OPENAI_CHAT["request"], "messages": [
        *OPENAI_CHAT["request"]["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "print(1)"},
        {"role": "assistant", "content": None},
        # The legacy function calling: a function_call, answered in the "function" role.
        {"role": "assistant", "content": None, "function_call": call["function"]},
        {"role": "function", "name": "read_file", "content": "print(2)"},
        {"role": "user", "content": "Now fix it."}]}}
    e = to_exchange(line)
    assert check_exchange(e) is None
    messages = e["request"]["messages"]
    assert messages[2]["content"] == [call] and messages[2]["tool_calls"] == [call]
    assert messages[4]["content"] == ""
    assert messages[5]["content"] == [call["function"]]
    assert messages[6]["role"] == "tool" and messages[6]["content"] == "print(2)"
    assert line["request"]["messages"][2]["content"] is None  # the log line is left as it was
    assert line["request"]["messages"][6]["role"] == "function"
    features = exchange_features([e], b"k").to_pylist()[0]
    assert features["messages"] == 8 and features["prompt_chars"] == len("Now fix it.")


def test_responses_input_items_are_read_as_the_prompts_they_are():
    prompt = "Rate this response from 1 to 10:\nThe answer is 42."
    as_string = {**OPENAI_RESPONSES, "request": {**OPENAI_RESPONSES["request"],
                                                 "input": prompt}}
    as_items = {**OPENAI_RESPONSES, "request": {**OPENAI_RESPONSES["request"], "input": [
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": prompt}]}]}}
    records = [to_exchange(as_string), to_exchange(as_items)]
    assert all(check_exchange(r) is None for r in records)
    one, other = exchange_features(records, b"k").to_pylist()
    assert one["prompt_chars"] == other["prompt_chars"] == len(prompt)
    for name in ("band_keys", "line_hashes", "head_key", "tail_key", "skeleton", "grading"):
        assert one[name] == other[name], name


def test_openai_responses_fields():
    e = to_exchange(OPENAI_RESPONSES)
    assert e["timestamp"].startswith("2026-05-02") and e["request"]["system"] == "Grade answers."
    assert e["response"]["text"] == "Score: 7" and e["request"]["max_tokens"] == 2048


def test_anthropic_fields():
    e = to_exchange(ANTHROPIC)
    assert e["request"]["reasoning"] == {"enabled": True, "budget_tokens": 4000}
    assert e["operation"] == "messages" and e["response"]["finish_reason"] == "tool_use"


def test_log_lines_flow_through_reading_and_fingerprinting(tmp_path):
    path = tmp_path / "gateway.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (OPENAI_CHAT, OPENAI_RESPONSES,
                                                           ANTHROPIC)))
    sink = RejectSink(tmp_path / "rejected.jsonl")
    _, records = read_exchanges(path, sink)
    features = exchange_features(list(records), b"k").to_pylist()
    assert [f["cot"] for f in features] == [True, True, True]      # trace / reasoning asked
    assert [f["grading"] for f in features] == [False, True, False]
    assert features[0]["n"] == 4 and features[0]["logprobs"] is True
    assert features[2]["capability"] == "agentic_tool_use"


# One agent step, the same in the three wire formats: a system prompt, two tools, the task,
# a tool call and its result, and the next model call.
TASK = "Fix the failing test in parser.py.\nExplain each step of your reasoning."
SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
AGENT_CHAT = {**IDENTITY, "timestamp": "2026-05-02T10:00:00Z", "request_id": "r1", "request": {
    "model": "m", "messages": [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": TASK},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "read_file", "arguments": "{\"path\": \"parser.py\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "def parse(): ..."}],
    "tools": [{"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                                "parameters": SCHEMA}},
              {"type": "function", "function": {"name": "run_tests", "description": "Run tests",
                                                "parameters": {"type": "object"}}}]}}
AGENT_RESPONSES = {**IDENTITY, "timestamp": "2026-05-02T10:00:00Z", "request_id": "r1", "request": {
    "model": "m", "instructions": "You are a coding agent.", "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": TASK}]},
        {"type": "reasoning", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "read_file",
         "arguments": "{\"path\": \"parser.py\"}"},
        {"type": "function_call_output", "call_id": "c1", "output": "def parse(): ..."}],
    "tools": [{"type": "function", "name": "read_file", "description": "Read a file",
               "parameters": SCHEMA, "strict": True},
              {"type": "function", "name": "run_tests", "description": "Run tests",
               "parameters": {"type": "object"}}]}}
AGENT_ANTHROPIC = {**IDENTITY, "timestamp": "2026-05-02T10:00:00Z", "request_id": "r1", "request": {
    "model": "m", "max_tokens": 4096, "system": [{"type": "text", "text": "You are a coding agent.",
                                                 "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": TASK},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "...", "signature": "s"},
            {"type": "tool_use", "id": "c1", "name": "read_file",
             "input": {"path": "parser.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1",
                                      "content": [{"type": "text", "text": "def parse(): ..."}]}]}],
    "tools": [{"name": "read_file", "description": "Read a file", "input_schema": SCHEMA},
              {"name": "run_tests", "description": "Run tests", "input_schema": {"type": "object"},
               "cache_control": {"type": "ephemeral"}}]}}
SCAFFOLD = ("system_hash", "tools_hash", "band_keys", "line_hashes", "head_key", "tail_key",
            "skeleton", "prompt_chars", "user_turns", "cot", "tool_trace", "capability")


def test_an_agent_step_has_one_fingerprint_in_every_wire_format():
    records = [to_exchange(r) for r in (AGENT_CHAT, AGENT_RESPONSES, AGENT_ANTHROPIC)]
    assert [r["source_format"] for r in records] == [
        "openai_chat", "openai_responses", "anthropic_messages"]
    assert all(check_exchange(r) is None for r in records)
    chat, responses, anthropic = exchange_features(records, b"k").to_pylist()
    for name in SCAFFOLD:
        assert chat[name] == responses[name] == anthropic[name], name
    # The task is the prompt, not the tool's output; the tool result is no user turn.
    assert chat["prompt_chars"] == len(TASK) and chat["user_turns"] == 1
    assert chat["tools_hash"] is not None and chat["capability"] == "agentic_tool_use"


def test_tools_are_told_apart_by_what_they_are_in_every_wire_format():
    def tools_hash(record: dict, tools: list) -> int:
        line = {**record, "request": {**record["request"], "tools": tools}}
        return exchange_features([to_exchange(line)], b"k").column("tools_hash")[0].as_py()

    for record, first, other in (
            (AGENT_ANTHROPIC, {"name": "read_file", "input_schema": SCHEMA},
             {"name": "delete_file", "input_schema": SCHEMA}),
            (AGENT_ANTHROPIC, {"type": "web_search_20250305", "name": "web_search",
                               "max_uses": 5},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 50}),
            (AGENT_RESPONSES, {"type": "function", "name": "read_file", "parameters": SCHEMA},
             {"type": "function", "name": "read_file", "parameters": {"type": "object"}}),
            (AGENT_RESPONSES, {"type": "file_search", "vector_store_ids": ["vs_1"]},
             {"type": "web_search_preview"})):
        assert tools_hash(record, [first]) != tools_hash(record, [other]), (first, other)
    # The same tool, whichever API declared it.
    assert tools_hash(AGENT_CHAT, [AGENT_CHAT["request"]["tools"][0]]) == tools_hash(
        AGENT_ANTHROPIC, [AGENT_ANTHROPIC["request"]["tools"][0]]) == tools_hash(
        AGENT_RESPONSES, [AGENT_RESPONSES["request"]["tools"][0]])


def test_tool_results_and_a_user_note_in_one_anthropic_turn():
    # Anthropic puts tool results first in a user turn, then anything the user adds.
    note = "Also keep the public API unchanged."
    line = {**AGENT_ANTHROPIC, "request": {**AGENT_ANTHROPIC["request"], "messages": [
        *AGENT_ANTHROPIC["request"]["messages"][:2],
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "def parse(): ..."},
            {"type": "tool_result", "tool_use_id": "c2", "is_error": True},
            {"type": "text", "text": note}]}]}}
    features = exchange_features([to_exchange(line)], b"k").to_pylist()[0]
    assert features["prompt_chars"] == len(note) and features["user_turns"] == 2
    assert features["messages"] == 5      # user, assistant, two tool results, the note


def test_a_responses_call_that_only_returns_tool_output_is_kept():
    # With previous_response_id, an agent's next call sends only the tool's output.
    line = {**OPENAI_RESPONSES, "request": {
        "model": "m", "previous_response_id": "resp_0", "input": [
            {"type": "function_call_output", "call_id": "c1", "output": "42"}]}}
    e = to_exchange(line)
    assert check_exchange(e) is None
    assert e["request"]["messages"] == [{"role": "tool", "tool_call_id": "c1", "content": "42"}]


def test_legacy_completions_log_lines_are_read():
    line = {**IDENTITY, "timestamp": "2026-05-02T10:00:00Z", "request": {
        "model": "davinci-x", "prompt": ["Q: 2+2?\nA:", "Q: 3+3?\nA:"], "max_tokens": 5},
        "response": {"id": "cmpl-1", "object": "text_completion",
                     "choices": [{"text": " 4", "finish_reason": "stop"}]}}
    e = to_exchange(line)
    assert check_exchange(e) is None and dialect(line) == "openai_completions"
    assert (e["operation"], e["source_format"], e["exchange_id"]) == (
        "completions", "openai_completions", "cmpl-1")
    assert [m["content"] for m in e["request"]["messages"]] == ["Q: 2+2?\nA:", "Q: 3+3?\nA:"]
    assert e["response"]["text"] == " 4" and e["request"]["max_tokens"] == 5
    tokens = to_exchange({**line, "request": {"model": "m", "prompt": [464, 318]}})
    assert check_exchange(tokens) is None
    assert tokens["request"]["messages"] == [{"role": "user", "content": ""}]


@pytest.mark.parametrize("given", [1777716000, 1777716000.0, 1777716000000])
def test_an_epoch_timestamp_in_seconds_or_milliseconds(given):
    e = to_exchange({**OPENAI_CHAT, "timestamp": given, "response": {}})
    assert e["timestamp"] == "2026-05-02T10:00:00Z" and check_exchange(e) is None


def test_a_line_without_ids_gets_one_from_its_content():
    line = {**OPENAI_CHAT, "response": {"choices": []}}
    one, again = to_exchange(line), to_exchange(json.loads(json.dumps(line)))
    later = to_exchange({**line, "timestamp": "2026-05-02T10:00:01Z"})
    assert check_exchange(one) is None and one["exchange_id"].startswith("dw-")
    assert one["exchange_id"] == again["exchange_id"] != later["exchange_id"]


def litellm_payload(call_type: str, messages: object, **fields) -> dict:
    """A LiteLLM StandardLoggingPayload as its logging integrations write it (abridged to
    the fields distillwatch reads, plus a few it ignores)."""
    return {
        "id": "chatcmpl-9f2", "trace_id": "t-1", "litellm_call_id": "c0ffee",
        "call_type": call_type, "stream": False, "response_cost": 0.0021, "status": "success",
        "custom_llm_provider": "openai", "total_tokens": 70, "prompt_tokens": 50,
        "completion_tokens": 20, "startTime": 1777716000.25, "endTime": 1777716001.5,
        "completionStartTime": 1777716000.9, "model": "gpt-x-2026-04", "model_group": "gpt-x",
        "api_base": "https://api.example.com/v1", "cache_hit": None, "request_tags": [],
        "metadata": {"user_api_key_hash": "88dc28d0f030c5", "user_api_key_alias": "ci-bot",
                     "user_api_key_user_id": "user-42", "user_api_key_team_id": "team-7",
                     "user_api_key_org_id": None, "requester_ip_address": "198.51.100.7",
                     "user_agent": "OpenAI/Python 1.99.1", "spend_logs_metadata": None},
        "end_user": None, "requester_ip_address": "198.51.100.7",
        "messages": messages, "model_parameters": {"temperature": 0.2, "max_tokens": 4096},
        "response": {"id": "chatcmpl-9f2", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Step 1 ..."},
             "finish_reason": "stop"}], "usage": {"prompt_tokens": 50, "completion_tokens": 20}},
        "error_str": None, "error_information": None, "hidden_params": {},
        **fields,
    }


def test_litellm_logs_are_read_as_the_exchanges_they_record():
    from distillwatch.ingest.readers import accept

    chat = litellm_payload("acompletion", AGENT_CHAT["request"]["messages"], model_parameters={
        "temperature": 0.2, "max_tokens": 4096, "tools": AGENT_CHAT["request"]["tools"]})
    record, problem = accept(orjson.dumps(chat))
    assert problem is None
    assert (record["exchange_id"], record["account_id"], record["api_key_id"]) == (
        "chatcmpl-9f2", "user-42", "88dc28d0f030c5")
    assert (record["timestamp"], record["model"], record["operation"]) == (
        "2026-05-02T10:00:00.250000Z", "gpt-x", "chat")
    assert record["client"] == {"ip": "198.51.100.7", "user_agent": "OpenAI/Python 1.99.1"}
    assert record["request"]["max_tokens"] == 4096 and record["response"]["status"] == 200
    # Its fingerprints are those of the same call logged by the provider.
    same = exchange_features([record, to_exchange(AGENT_CHAT)], b"k").to_pylist()
    for name in SCAFFOLD:
        assert same[0][name] == same[1][name], name

    # The account falls back to the team; other call types speak their own wire format.
    teams = {**chat["metadata"], "user_api_key_user_id": None}
    text = litellm_payload("atext_completion", [{"role": "user", "content": "Q: 2+2?\nA:"}],
                           metadata=teams, status="failure",
                           error_information={"error_code": "429", "error_class": "RateLimit"})
    record, problem = accept(orjson.dumps(text))
    assert problem is None and record["account_id"] == "team-7"
    assert record["operation"] == "completions" and record["response"]["status"] == 429
    assert record["request"]["messages"] == [{"role": "user", "content": "Q: 2+2?\nA:"}]
    responses = litellm_payload("aresponses", "Grade this answer from 1 to 10: ...")
    record, problem = accept(orjson.dumps(responses))
    assert problem is None and record["operation"] == "responses"
    assert record["request"]["messages"] == [
        {"role": "user", "content": "Grade this answer from 1 to 10: ..."}]
    claude = litellm_payload("anthropic_messages", AGENT_ANTHROPIC["request"]["messages"],
                             model_parameters={"max_tokens": 4096, "tools": AGENT_ANTHROPIC[
                                 "request"]["tools"], "system": "You are a coding agent."})
    record, problem = accept(orjson.dumps(claude))
    assert problem is None and record["operation"] == "messages"
    assert exchange_features([record], b"k").to_pylist()[0]["tools_hash"] == \
        same[0]["tools_hash"]


def test_a_line_without_an_account_is_its_keys():
    line = {k: v for k, v in OPENAI_CHAT.items() if k != "account_id"}
    e = to_exchange(line)
    assert check_exchange(e) is None and e["account_id"] == e["api_key_id"] == "key-7"


def test_a_litellm_logs_key_is_named_as_the_gateway_names_it():
    import hashlib

    from distillwatch.gateway.identity import key_id
    from distillwatch.ingest.readers import accept

    token = "sk-litellm-virtual-key-7"
    payload = litellm_payload("acompletion", [{"role": "user", "content": "hi"}])
    payload["metadata"]["user_api_key_hash"] = hashlib.sha256(token.encode()).hexdigest()
    named, _ = accept(orjson.dumps(payload), b"fingerprint-key")
    assert named["api_key_id"] == key_id(b"fingerprint-key", token)      # serve's kid-…
    unkeyed, _ = accept(orjson.dumps(payload))
    assert unkeyed["api_key_id"] == payload["metadata"]["user_api_key_hash"]
    assert token not in orjson.dumps(named).decode()
