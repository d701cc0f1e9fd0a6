"""Per-exchange features: the one pass over raw text; every later stage reads only these.

``features_from_arrow`` is a pure function from a batch of exchanges in the Arrow layout
(``io/arrow_layout.py``) to a batch of features, column at a time, so each engine maps it over
its data (worker processes for DuckDB, ``mapInArrow`` on Spark) and the gateway runs it on one
request. ``exchange_features`` is the same on JSON records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.fingerprint.addresses import DOTTED_QUAD, LAST_OCTET, grains
from distillwatch.fingerprint.arrays import (
    Distinct,
    as_signed,
    domain_constant,
    flat_values,
    hash_values,
    keyed_hashes,
    list_offsets,
    mix,
    sequence_hashes,
    texts,
    whole,
)
from distillwatch.fingerprint.capability import capabilities
from distillwatch.fingerprint.elicitation import elicitation_flags
from distillwatch.fingerprint.language import languages
from distillwatch.fingerprint.masking import mask_texts
from distillwatch.fingerprint.sketch import BANDS, SketchColumns, sketch_columns
from distillwatch.io.arrow_layout import text_of, timestamps, to_arrow

FEATURES_SCHEMA = pa.schema([
    ("exchange_id", pa.string()),
    ("account_id", pa.string()),
    ("api_key_id", pa.string()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("model", pa.string()),
    ("client_ip", pa.string()),          # the host: an IPv6 client's /64 (addresses.py)
    ("client_prefix", pa.string()),      # the block: IPv4 /24, IPv6 /48
    ("client_asn", pa.int64()),
    ("client_asn_kind", pa.string()),
    ("client_country", pa.string()),
    ("user_agent", pa.string()),
    ("prompt_chars", pa.int32()),
    ("messages", pa.int32()),
    ("user_turns", pa.int32()),
    ("system_hash", pa.int64()),
    ("tools_hash", pa.int64()),
    ("tool_count", pa.int32()),
    ("prompt_hash", pa.int64()),
    ("band_keys", pa.list_(pa.int64())),
    ("line_hashes", pa.list_(pa.int64())),
    ("head_key", pa.int64()),
    ("tail_key", pa.int64()),
    ("skeleton", pa.string()),
    ("cot", pa.bool_()),
    ("grading", pa.bool_()),
    ("tool_trace", pa.bool_()),
    ("capability", pa.string()),
    ("language", pa.string()),
    ("n", pa.int32()),
    ("max_tokens", pa.int32()),
    ("temperature", pa.float64()),
    ("logprobs", pa.bool_()),
    ("top_logprobs", pa.int32()),
    ("reasoning_budget", pa.int32()),
    ("output_tokens", pa.int64()),
])


# What the gateway's online matcher reads of a request (``gateway.detector.scaffold_keys``).
SCAFFOLD_COLUMNS = ("system_hash", "tools_hash", "band_keys", "line_hashes", "head_key",
                    "tail_key")

# Bump when any fingerprint changes meaning: stores record it and refuse to mix versions.
# 3: the Responses API's ``input_text`` / ``output_text`` parts are read as text (they were
# named ``[input_text]``, so every such prompt had one fingerprint).
# 4: the Responses API's and Anthropic's tools are read in Chat Completions' shape (their
# names, descriptions and schemas were dropped, so every list of N such tools had one
# hash), and Anthropic's tool results are tool messages, not the prompt; an IPv6 client is
# its /64 (``client_ip``) and every client has a block (``client_prefix``: /24, IPv6 /48).
FINGERPRINT_VERSION = 4

__all__ = ["FEATURES_SCHEMA", "FINGERPRINT_VERSION", "SCAFFOLD_COLUMNS", "exchange_features",
           "features_from_arrow", "text_of"]


def _column(table: pa.Table, name: str) -> pa.Array:
    return whole(table.column(name))


def _field(array: pa.Array, name: str) -> pa.Array:
    # pc.struct_field keeps a null parent null (StructArray.field would not).
    return pc.struct_field(array, name)


def _numpy(array: pa.Array, fill: object) -> np.ndarray:
    return pc.fill_null(array, fill).to_numpy(zero_copy_only=False)


def _sorted_json(data: bytes) -> bytes:
    """Tool parameters (JSON text) with sorted keys, so key order never makes a tool new."""
    try:
        return orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return data


def _tools_hash(key: bytes, tools: pa.ListArray) -> pa.Array:
    offsets = list_offsets(tools)
    flat = flat_values(tools)
    function = _field(flat, "function")
    with np.errstate(over="ignore"):
        described = (mix(keyed_hashes(key, b"tool-type", _field(flat, "type"), remember=True))
                     ^ mix(keyed_hashes(key, b"tool-name", _field(function, "name"), remember=True)
                         + np.uint64(1))
                     ^ mix(keyed_hashes(key, b"tool-description", _field(function, "description"),
                                        remember=True) + np.uint64(2))
                     ^ mix(keyed_hashes(key, b"tool-parameters", _field(function, "parameters"),
                                        transform=_sorted_json, remember=True) + np.uint64(3)))
    hashes = sequence_hashes(described, offsets, domain_constant(key, b"tools"))
    present = np.diff(offsets) > 0
    return pa.array(as_signed(hashes), pa.int64(), mask=~present)


def _request_hash(key: bytes, systems: Distinct, roles: pa.Array, contents: pa.Array,
                  offsets: np.ndarray) -> np.ndarray:
    """A hash of the whole request (system prompt, then every message with its role)."""
    count = len(offsets) - 1
    empty = hash_values(key, b"request", pa.array([""]))[0]
    system_hashes = systems.per_row(hash_values(key, b"request", systems.values), empty)
    message_hashes = keyed_hashes(key, b"request",
                                  pc.binary_join_element_wise(texts(roles), contents, ":"))
    rows = np.repeat(np.arange(count), np.diff(offsets))
    parts = np.empty(count + len(message_hashes), dtype=np.uint64)
    starts = offsets[:-1] + np.arange(count)
    parts[starts] = system_hashes
    parts[rows + np.arange(len(message_hashes)) + 1] = message_hashes
    segments = np.concatenate([starts, [len(parts)]])
    return as_signed(sequence_hashes(parts, segments, domain_constant(key, b"request")))


def _last(rows: np.ndarray, chosen: np.ndarray, count: int, first: bool = False) -> np.ndarray:
    """Per row, the index of its last (or first) chosen message, -1 where it has none."""
    out = np.full(count, -1)
    if len(chosen):
        owner = rows[chosen]
        if first:
            edge = np.r_[True, owner[1:] != owner[:-1]]
        else:
            edge = np.r_[owner[1:] != owner[:-1], True]
        out[owner[edge]] = chosen[edge]
    return out


def _take(values: pa.Array, index: np.ndarray) -> pa.Array:
    """``values[index]`` with null where ``index`` is -1."""
    return pc.take(values, pa.array(index, mask=index < 0))


def _addresses(ips: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Each client's host and block (``addresses.grains``): dotted IPv4 addresses in Arrow,
    the others one by one; each distinct address read once."""
    distinct = Distinct.of(ips)
    values = distinct.values.cast(pa.string())
    dotted = _numpy(pc.match_substring_regex(values, DOTTED_QUAD), False).astype(bool)
    hosts, blocks = values, pc.if_else(
        pa.array(dotted), pc.replace_substring_regex(values, LAST_OCTET, ".0/24"),
        pa.scalar(None, pa.string()))
    others = np.flatnonzero(~dotted)
    if len(others):
        host_list, block_list = hosts.to_pylist(), blocks.to_pylist()
        for index, text in zip(others, values.take(others).to_pylist(), strict=True):
            host_list[index], block_list[index] = grains(text) if text else (None, None)
        hosts, blocks = pa.array(host_list, pa.string()), pa.array(block_list, pa.string())
    rows = pa.array(distinct.index, mask=distinct.index < 0)
    return pc.take(hosts, rows), pc.take(blocks, rows)


def _system_prompts(declared: pa.Array, contents: pa.Array, role: np.ndarray,
                    rows: np.ndarray, count: int) -> Distinct:
    """Each request's system prompt: the declared one, else its first system/developer
    message; empty prompts count as none."""
    first = _last(rows, np.flatnonzero((role == "system") | (role == "developer")), count,
                  first=True)
    given, in_messages = Distinct.of(declared), Distinct.of(_take(contents, first))
    given_ok = given.per_row(_numpy(pc.utf8_length(given.values), 0) > 0, False)
    message_ok = in_messages.per_row(_numpy(pc.utf8_length(in_messages.values), 0) > 0, False)
    index = np.where(given_ok, given.index,
                     np.where(message_ok, in_messages.index + len(given.values), -1))
    return Distinct(pa.concat_arrays([given.values.cast(pa.string()),
                                      in_messages.values.cast(pa.string())]), index)


def features_from_arrow(batch: pa.Table | pa.RecordBatch, key: bytes,
                        columns: Sequence[str] | None = None) -> pa.Table:
    """Features of a batch of validated exchanges in the Arrow layout.

    Args:
        batch: Exchanges with ``EXCHANGE_ARROW_SCHEMA``'s columns (extra columns are ignored).
        key: The provider's fingerprint key; every text hash is keyed with it.
        columns: Only these feature columns, and only the work they need (the gateway's
            online matcher asks for :data:`SCAFFOLD_COLUMNS`); default: all of them. A
            column's values do not depend on which others are asked for.

    Returns:
        A table with ``FEATURES_SCHEMA`` (or its ``columns``, in the schema's order), one row
        per exchange, in order.

    Raises:
        ValueError: If ``columns`` names a column ``FEATURES_SCHEMA`` does not have.
    """
    wanted = set(FEATURES_SCHEMA.names if columns is None else columns)
    unknown = wanted.difference(FEATURES_SCHEMA.names)
    if unknown:
        raise ValueError(f"Unknown feature columns {sorted(unknown)}; known: "
                         f"{', '.join(FEATURES_SCHEMA.names)}")
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    count = table.num_rows
    client, request = _column(table, "client"), _column(table, "request")
    messages = _field(request, "messages")
    offsets = list_offsets(messages)
    flat = flat_values(messages)
    roles = _field(flat, "role")
    contents = texts(_field(flat, "content"))
    rows = np.repeat(np.arange(count), np.diff(offsets))
    role = _numpy(roles, "")

    user = np.flatnonzero(role == "user")
    prompts = texts(_take(contents, _last(rows, user, count)))
    systems = _system_prompts(_field(request, "system"), contents, role, rows, count)

    tools = _field(request, "tools")
    tool_count = _numpy(pc.list_value_length(tools), 0)
    has_tools = tool_count > 0
    reasoning = _field(request, "reasoning")
    enabled = _numpy(_field(reasoning, "enabled"), False).astype(bool)
    # Scripts send one prompt many times (a benchmark run by many accounts, retries; on the
    # `stress` world a batch of 20,000 holds ~9,000 distinct prompts): each distinct prompt of
    # the batch is masked, sketched, scanned for cues and classified once.
    unique = Distinct.of(prompts)
    # Each entry makes its column when asked for: a selection skips the work of the others.
    out: dict[str, Callable[[], pa.Array | pa.ChunkedArray]] = {
        "exchange_id": lambda: _column(table, "exchange_id"),
        "account_id": lambda: _column(table, "account_id"),
        "api_key_id": lambda: _column(table, "api_key_id"),
        "ts": lambda: timestamps(_column(table, "timestamp")),
        "model": lambda: _column(table, "model"),
        "client_ip": lambda: addresses()[0],
        "client_prefix": lambda: addresses()[1],
        "client_asn": lambda: _field(client, "asn"),
        "client_asn_kind": lambda: _field(client, "asn_kind"),
        "client_country": lambda: _field(client, "country"),
        "user_agent": lambda: _field(client, "user_agent"),
        "prompt_chars": lambda: pc.utf8_length(prompts),
        "messages": lambda: pc.list_value_length(messages),
        "user_turns": lambda: pa.array(np.bincount(rows[user], minlength=count)),
        "system_hash": lambda: pa.array(as_signed(systems.per_row(
            hash_values(key, b"system", systems.values, remember=True), 0)), pa.int64(),
            mask=systems.index < 0),
        "tools_hash": lambda: _tools_hash(key, tools),
        "tool_count": lambda: pa.array(tool_count),
        # Exact repeats of a whole request, byte for byte (an evaluation sweep run again, a
        # bot's fixed turn), against never-repeated sweeps (coverage partitioning).
        "prompt_hash": lambda: pa.array(_request_hash(key, systems, roles, contents, offsets)),
        "band_keys": lambda: pa.ListArray.from_arrays(
            pa.array(np.arange(count + 1, dtype=np.int32) * BANDS),
            pa.array(sketch().band_keys.reshape(-1))),
        "line_hashes": lambda: sketch().line_hashes,
        "head_key": lambda: pa.array(sketch().head_key),
        "tail_key": lambda: pa.array(sketch().tail_key),
        "skeleton": lambda: sketch().excerpt,
        "cot": lambda: pa.array(flags()[0]),
        "grading": lambda: pa.array(flags()[1]),
        "tool_trace": lambda: pa.array(flags()[2]),
        "capability": lambda: capabilities(unique, has_tools, flags()[1]),
        "language": lambda: pc.take(languages(unique.values), pa.array(unique.index)),
        "n": lambda: _field(request, "n"),
        "max_tokens": lambda: _field(request, "max_tokens"),
        "temperature": lambda: _field(request, "temperature"),
        "logprobs": lambda: _field(request, "logprobs"),
        "top_logprobs": lambda: _field(request, "top_logprobs"),
        "reasoning_budget": lambda: pc.if_else(pa.array(enabled),
                                               _field(reasoning, "budget_tokens"),
                                               pa.scalar(None, pa.int64())),
        "output_tokens": lambda: _field(_column(table, "usage"), "output_tokens"),
    }

    @cache
    def sketch() -> SketchColumns:
        return sketch_columns(unique.values, key, masked=mask_texts(unique.values),
                              excerpt="skeleton" in wanted).rows(unique.index)

    @cache
    def addresses() -> tuple[pa.Array, pa.Array]:
        return _addresses(_field(client, "ip"))

    @cache
    def flags() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return elicitation_flags(unique, systems, has_tools, enabled)

    fields = [f for f in FEATURES_SCHEMA if f.name in wanted]
    return pa.Table.from_arrays([pc.cast(out[f.name](), f.type) for f in fields],
                                schema=pa.schema(fields))


def exchange_features(records: Sequence[Mapping], key: bytes) -> pa.Table:
    """Features of a batch of Exchange records (``shared/schema/exchange.schema.json``).

    Args:
        records: Exchange dicts (validated by ingest).
        key: The provider's fingerprint key.

    Returns:
        A table with ``FEATURES_SCHEMA``, one row per record, in order.
    """
    return features_from_arrow(to_arrow(records), key)
