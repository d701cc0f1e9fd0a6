"""Stream the exchanges of a world (JSONL, JSONL.gz, JSONL.zst or Parquet parts).

For trusted inputs such as simulated worlds; the scan's ingest stage validates untrusted logs
and writes rejects instead of stopping.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import zstandard

from distillwatch.exceptions import DistillwatchInputError

_NAMES = ("exchanges.jsonl.gz", "exchanges.jsonl.zst", "exchanges.jsonl")


def find_exchange_files(world_dir: Path) -> list[Path]:
    """The exchange files of a world folder.

    Raises:
        DistillwatchInputError: If the folder holds none.
    """
    for name in _NAMES:
        if (world_dir / name).is_file():
            return [world_dir / name]
    parts = sorted((world_dir / "exchanges").glob("part-*.parquet"))
    if parts:
        return parts
    raise DistillwatchInputError(
        f"No exchanges found: expected one of {', '.join(_NAMES)} or exchanges/part-*.parquet",
        str(world_dir))


# A JSON document (not JSON lines) is read whole up to this size: LiteLLM's bucket logging
# writes one call per ``.json`` object, exports write arrays of records.
DOCUMENT_MAX_BYTES = 512 * 1024 * 1024


def is_json_document(path: Path) -> bool:
    """True for a ``.json`` file (plain, ``.gz`` or ``.zst``): one JSON document, not lines."""
    name = path.name.removesuffix(".gz").removesuffix(".zst")
    return name.endswith(".json")


def iter_lines(path: Path) -> Iterator[bytes]:
    """Raw lines of a plain, ``.gz`` or ``.zst`` file, streamed.

    A ``.json`` file holding one JSON document gives one line per record: the object itself,
    or each item of an array (files that are JSON lines after all are read line by line).
    """
    if is_json_document(path) and path.stat().st_size <= DOCUMENT_MAX_BYTES:
        data = b"".join(_raw_lines(path))
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            yield from data.splitlines(keepends=True)
            return
        for item in document if isinstance(document, list) else [document]:
            yield orjson.dumps(item) + b"\n"
        return
    yield from _raw_lines(path)


def _raw_lines(path: Path) -> Iterator[bytes]:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            yield from handle
    elif path.name.endswith(".zst"):
        with path.open("rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            yield from io.BufferedReader(reader)
    else:
        with path.open("rb") as handle:
            yield from handle


def iter_exchanges(paths: Sequence[Path], columns: Sequence[str] | None = None
                   ) -> Iterator[dict]:
    """Every exchange of ``paths``, in file order, as a dict.

    Args:
        paths: Files from :func:`find_exchange_files`.
        columns: For Parquet, read only these top-level fields (JSONL always yields all).

    Raises:
        DistillwatchInputError: On a line that is not a JSON object (names file and line).
    """
    for path in paths:
        if path.suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(columns=list(columns) if columns
                                                            else None):
                yield from batch.to_pylist()
            continue
        for number, line in enumerate(iter_lines(path), start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise DistillwatchInputError(f"Line is not valid JSON: {error}",
                                             f"{path}:{number}") from error
            if not isinstance(record, dict):
                raise DistillwatchInputError("Line is not a JSON object", f"{path}:{number}")
            yield record
