"""The real detector as a scanner, so ``evaluate --scanner distillwatch --replay`` measures it.

The world is ingested once into a store kept for the scanner's lifetime; each scan (each
replay cutoff) then profiles, links and scores only the exchanges sent before its cutoff.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from distillwatch.evaluate.scanners import Scanner


class DistillwatchScanner(Scanner):
    """``distillwatch scan`` over a benchmark world (exchanges + accounts.jsonl)."""

    NAME = "distillwatch"
    DESCRIPTION = "the distillwatch batch detector (ingest once, scan per cutoff)"
    DEFAULT_PARAMS = {"settings": "", "policy": ""}

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._stores: dict[Path, Path] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="distillwatch-scanner-")

    def _store(self, world_dir: Path) -> Path:
        from distillwatch.engine import DuckDBEngine
        from distillwatch.ingest.accounts import read_accounts, store_accounts
        from distillwatch.ingest.readers import input_files, sniff_kind
        from distillwatch.ingest.rejects import RejectSink
        from distillwatch.ingest.store import ingest

        key = world_dir.resolve()
        if key not in self._stores:
            store = Path(self._tmp.name) / f"world-{len(self._stores)}.duckdb"
            sink = RejectSink(store.with_suffix(".rejected.jsonl"))
            engine = DuckDBEngine(store)
            try:
                files = input_files([world_dir])
                ingest(engine, [f for f in files if sniff_kind(f) == "exchanges"], sink,
                       b"distillwatch-benchmark-key")
                for path in (f for f in files if sniff_kind(f) == "accounts"):
                    store_accounts(engine, read_accounts(path, sink)[1])
            finally:
                sink.close()
                engine.close()
            self._stores[key] = store
        return self._stores[key]

    def scan(self, world_dir: Path, out_dir: Path, until: datetime | None = None) -> None:
        from distillwatch.engine import DuckDBEngine
        from distillwatch.report.contract import write_scan_output
        from distillwatch.score.policy import Policy
        from distillwatch.settings import Settings
        from distillwatch.watcher import Watcher

        engine = DuckDBEngine(self._store(world_dir))
        try:
            watcher = Watcher(
                engine, Settings.from_path_or_dict(self.params["settings"] or None),
                policy=Policy.from_path(Path(self.params["policy"])) if self.params["policy"]
                else None, until=until)
            result = watcher.scan()
            window = result.window or (until, until)
            write_scan_output(out_dir, window=window, total_exchanges=result.total_exchanges,
                              accounts=result.accounts, campaigns=result.campaigns,
                              extra={"scanner": self.NAME})
        finally:
            engine.drop_all()
            engine.close()
