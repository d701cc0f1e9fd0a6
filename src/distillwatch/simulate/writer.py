"""Write a world's exchanges in time order: JSONL.gz or Parquet parts, in bounded memory."""

from __future__ import annotations

import gzip
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from distillwatch.exceptions import DistillwatchConfigError
from distillwatch.io.arrow_layout import EXCHANGE_ARROW_SCHEMA, text_of

FORMATS = ("jsonl.gz", "parquet")
PARQUET_ROWS_PER_PART = 100_000

# Tool definitions are long-lived objects shared by many requests: convert each once. The
# cached entry keeps the object itself so a recycled id() can never return a stale result.
_TOOL_CACHE: dict[int, tuple[dict, dict]] = {}


def _parquet_tool(tool: dict) -> dict:
    function = tool["function"]
    cached = _TOOL_CACHE.get(id(function))
    if cached is not None and cached[0] is function:
        return cached[1]
    converted = {
        "type": tool.get("type", "function"),
        "function": {
            "name": function.get("name"),
            "description": function.get("description"),
            "parameters": orjson.dumps(function.get("parameters"),
                                       option=orjson.OPT_SORT_KEYS).decode(),
        },
    }
    _TOOL_CACHE[id(function)] = (function, converted)
    return converted


def _for_parquet(exchange: dict) -> dict:
    """Parquet has no union types: free-form JSON becomes JSON text, content parts become text."""
    request = exchange["request"]
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            message["content"] = text_of(content)
    if request.get("tools"):
        request["tools"] = [_parquet_tool(tool) for tool in request["tools"]]
    return exchange


@dataclass
class AccountTally:
    exchanges: int = 0
    first_seen: str = ""
    last_seen: str = ""


class ExchangeWriter:
    """Appends exchanges in time order and counts them per account.

    Args:
        out_dir: The world folder.
        fmt: ``"jsonl.gz"`` (one file) or ``"parquet"`` (``exchanges/part-NNNNN.parquet``).
        seed: Part of every ``exchange_id``.

    Raises:
        DistillwatchConfigError: If ``fmt`` is not a known format.
    """

    def __init__(self, out_dir: Path, fmt: str, seed: int) -> None:
        if fmt not in FORMATS:
            raise DistillwatchConfigError(
                f"Unknown output format '{fmt}'; use one of: {', '.join(FORMATS)}"
            )
        self.fmt = fmt
        self.seed = seed
        self.count = 0
        self.tallies: dict[str, AccountTally] = {}
        self._rows: list[dict] = []
        self._part = 0
        if fmt == "jsonl.gz":
            self.path = out_dir / "exchanges.jsonl.gz"
            self._tmp = self.path.with_suffix(".gz.partial")
            # mtime=0 keeps the file byte-identical for the same seed. Compression runs on a
            # thread of its own (zlib releases the GIL), beside the rendering.
            self._gz = gzip.GzipFile(self._tmp, "wb", compresslevel=3, mtime=0)
            self._buffer: list[bytes] = []
            self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
            self._thread = threading.Thread(target=self._compress, daemon=True)
            self._thread.start()
        else:
            self.path = out_dir / "exchanges"
            self.path.mkdir(parents=True, exist_ok=True)
            for stale in self.path.glob("part-*.parquet"):
                stale.unlink()

    def write(self, exchange: dict) -> None:
        self.count += 1
        exchange["exchange_id"] = f"ex-{self.seed:x}-{self.count:010d}"
        tally = self.tallies.get(exchange["account_id"])
        if tally is None:
            tally = self.tallies[exchange["account_id"]] = AccountTally(
                first_seen=exchange["timestamp"]
            )
        tally.exchanges += 1
        tally.last_seen = exchange["timestamp"]
        if self.fmt == "jsonl.gz":
            self._buffer.append(orjson.dumps(exchange))
            if len(self._buffer) >= 2000:
                self._queue.put(b"\n".join(self._buffer) + b"\n")
                self._buffer = []
        else:
            self._rows.append(_for_parquet(exchange))
            if len(self._rows) >= PARQUET_ROWS_PER_PART:
                self._flush_part()

    def _compress(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._gz.write(chunk)

    def _flush_part(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=EXCHANGE_ARROW_SCHEMA)
        target = self.path / f"part-{self._part:05d}.parquet"
        tmp = target.with_suffix(".partial")
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, target)
        self._part += 1
        self._rows = []

    def close(self) -> None:
        """Finish the output; only a complete file carries the final name."""
        if self.fmt == "jsonl.gz":
            if self._buffer:
                self._queue.put(b"\n".join(self._buffer) + b"\n")
            self._queue.put(None)
            self._thread.join()
            self._gz.close()
            os.replace(self._tmp, self.path)
        else:
            self._flush_part()
