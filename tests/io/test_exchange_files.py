"""Reading exchange files in every supported container."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.io import find_exchange_files, iter_exchanges

RECORDS = [{"exchange_id": str(i), "account_id": f"a{i % 3}", "timestamp": "t"}
           for i in range(25)]
PAYLOAD = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()


@pytest.mark.parametrize("name, write", [
    ("exchanges.jsonl", lambda p: p.write_bytes(PAYLOAD)),
    ("exchanges.jsonl.gz", lambda p: p.write_bytes(gzip.compress(PAYLOAD))),
    ("exchanges.jsonl.zst", lambda p: p.write_bytes(zstandard.compress(PAYLOAD))),
])
def test_jsonl_containers(tmp_path, name, write):
    write(tmp_path / name)
    assert list(iter_exchanges(find_exchange_files(tmp_path))) == RECORDS


def test_parquet_parts_with_column_selection(tmp_path):
    (tmp_path / "exchanges").mkdir()
    for part in range(2):
        pq.write_table(pa.Table.from_pylist(RECORDS[part * 10:(part + 1) * 10] if part == 0
                                            else RECORDS[10:]),
                       tmp_path / "exchanges" / f"part-{part:05d}.parquet")
    rows = list(iter_exchanges(find_exchange_files(tmp_path), columns=["account_id"]))
    assert rows == [{"account_id": r["account_id"]} for r in RECORDS]


def test_bad_line_names_file_and_line(tmp_path):
    (tmp_path / "exchanges.jsonl").write_bytes(PAYLOAD + b"{oops\n")
    with pytest.raises(DistillwatchInputError, match=r"exchanges.jsonl:26"):
        list(iter_exchanges(find_exchange_files(tmp_path)))


def test_folder_without_exchanges(tmp_path):
    with pytest.raises(DistillwatchInputError, match="No exchanges found"):
        find_exchange_files(tmp_path)
