"""Scale: throughput per stage, wall time and peak memory of a scan on the `stress` world.

Usage:
    python -m benchmarks.scan --preset stress --worlds /tmp/worlds [--parts N]
        [--memory-limit 6GB] [--workers 2] [--engine spark] [--threads 2]

Builds (or reuses) the `stress` world (~31M exchanges as Parquet parts), optionally keeps only
its first N parts (``--parts 32`` is ~10M exchanges, for the memory-flatness check), then
measures on this machine:

- the raw limits: reading the Parquet alone, and reading plus BLAKE2b of every exchange's
  message bytes (what any fingerprint must at least do), one core;
- fingerprinting alone (``features_from_arrow``), one core, CPU time;
- ``ingest`` end to end (read, validate, fingerprint on every core, store);
- each scan stage (prepare, profile, link, score) and writing the reports;
- peak resident memory of the whole process tree (the main process and the fingerprinting
  workers), sampled every 0.2 s.

Each stage is printed as exchanges/s and as a ratio to the raw hashing limit, with the
evaluation against the world's labels. Results are also written as JSON beside the world.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY = b"benchmark-fingerprint-key-0001"
SAMPLE_PARTS = 3


class TreeMemory:
    """Peak resident memory of this process and all its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_rss() -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        page = os.sysconf("SC_PAGE_SIZE")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
                rss[int(entry)] = int(fields[21]) * page
            except (OSError, IndexError, ValueError):
                continue
        tree, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            parent = frontier.pop()
            for pid, ppid in parents.items():
                if ppid == parent and pid not in tree:
                    tree.add(pid)
                    frontier.append(pid)
        return sum(rss.get(pid, 0) for pid in tree)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self._every)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._tree_rss())


def parts_of(world: Path, parts: int | None) -> Path:
    """The world's Parquet folder, or a folder linking only its first ``parts`` parts."""
    folder = world / "exchanges"
    if not parts:
        return folder
    chosen = sorted(folder.glob("part-*.parquet"))[:parts]
    subset = world / f"exchanges-first-{parts}"
    subset.mkdir(exist_ok=True)
    for stale in subset.glob("part-*.parquet"):
        stale.unlink()
    for part in chosen:
        (subset / part.name).symlink_to(part.resolve())
    return subset


def sample_parts(folder: Path, numbers: list[int] | None = None) -> list[Path]:
    """The Parquet parts the one-core figures read: ``numbers`` (by position), else the first
    ``SAMPLE_PARTS``."""
    parts = sorted(folder.glob("part-*.parquet"))
    return [parts[n] for n in numbers] if numbers else parts[:SAMPLE_PARTS]


def raw_limits(folder: Path, numbers: list[int] | None = None) -> dict:
    """Reading alone, and reading + hashing every exchange's message bytes, on one core."""
    sample = sample_parts(folder, numbers)
    rows, started = 0, time.process_time()
    for part in sample:
        rows += pq.read_table(part, columns=["request"]).num_rows
    read = rows / (time.process_time() - started)
    rows, started = 0, time.process_time()
    for part in sample:
        request = pq.read_table(part, columns=["request"]).column("request").combine_chunks()
        messages = pc.struct_field(request, "messages")
        contents = pc.struct_field(pc.list_flatten(messages), "content")
        for data in contents.cast("binary").to_pylist():
            hashlib.blake2b(data or b"", digest_size=8, key=KEY).digest()
        rows += len(request)
    hashed = rows / (time.process_time() - started)
    return {"read_per_s": read, "read_and_hash_per_s": hashed}


def fingerprint_rate(folder: Path, numbers: list[int] | None = None) -> float:
    """``features_from_arrow`` alone on one core, in ingest's batches: exchanges per CPU
    second."""
    from distillwatch.fingerprint.features import features_from_arrow
    from distillwatch.ingest.batches import BATCH_ROWS

    sample = sample_parts(folder, numbers)
    rows, seconds = 0, 0.0
    for part in sample:
        for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS):
            started = time.process_time()
            features_from_arrow(batch, KEY)
            seconds += time.process_time() - started
            rows += batch.num_rows
    return rows / seconds


def _open(engine_name: str, out: Path, folder: Path, world: Path, memory_limit: str | None,
          workers: int | None, threads: int | None, sink):
    """(engine, ingest report): the (partial) world ingested into a fresh store."""
    import shutil

    from distillwatch.ingest.accounts import read_accounts

    _, rows = read_accounts(world / "accounts.jsonl", sink)
    if engine_name == "spark":
        from distillwatch.engine.spark import SparkEngine, build_session
        from distillwatch.ingest.spark_ingest import ingest_parquet, store_accounts_parquet

        store = out / "store-spark"
        shutil.rmtree(store, ignore_errors=True)
        spark = build_session(f"local[{threads or 2}]", memory_limit)
        report = ingest_parquet(spark, [str(folder)], str(store), KEY, sink)
        store_accounts_parquet(spark, str(store), rows)
        return SparkEngine(str(store), spark=spark), report
    from distillwatch.engine import DuckDBEngine
    from distillwatch.ingest.accounts import store_accounts
    from distillwatch.ingest.store import ingest

    for stale in out.glob("store.duckdb*"):
        stale.unlink() if stale.is_file() else shutil.rmtree(stale)
    engine = DuckDBEngine(out / "store.duckdb", memory_limit=memory_limit, threads=threads)
    report = ingest(engine, [folder], sink, KEY, workers=workers)
    store_accounts(engine, rows)
    return engine, report


def run(world: Path, parts: int | None, memory_limit: str | None, workers: int | None,
        threads: int | None, engine_name: str = "duckdb", settings: dict | None = None,
        ingest_only: bool = False) -> dict:
    """Ingest and scan the (partial) stress world on one engine; figures per stage.

    ``ingest_only`` stops after ingest (no scan, no evaluation).
    """
    from distillwatch.evaluate import evaluate, load_labels, load_scan_output
    from distillwatch.ingest.rejects import RejectSink
    from distillwatch.report.writer import write_scan
    from distillwatch.watcher import Watcher

    folder = parts_of(world, parts)
    limits = raw_limits(folder)
    per_core = fingerprint_rate(folder)
    out = world / f"scale-{parts or 'all'}-{engine_name}"
    out.mkdir(exist_ok=True)
    stages: dict[str, float] = {}
    with TreeMemory() as memory:
        sink = RejectSink(out / "rejected.jsonl")
        started = time.perf_counter()
        engine, report = _open(engine_name, out, folder, world, memory_limit, workers, threads,
                               sink)
        stages["ingest"] = time.perf_counter() - started
        ingest_peak = memory.peak
        if ingest_only:
            engine.close()
            sink.close()
            figures = {"engine": engine_name, "parts": parts, "exchanges": report.stored,
                       "rejected": report.rejected, "raw_limits": limits,
                       "fingerprint_per_core_per_s": per_core, "stages_s": stages,
                       "end_to_end_s": stages["ingest"], "peak_rss_mb": ingest_peak / 2**20,
                       "ingest_peak_rss_mb": ingest_peak / 2**20,
                       "memory_limit": memory_limit, "workers": workers, "settings": {},
                       "ingest_only": True}
            (out / "scale-ingest.json").write_bytes(orjson.dumps(figures,
                                                                 option=orjson.OPT_INDENT_2))
            return figures
        marks: list[tuple[str, float]] = []
        from distillwatch.settings import Settings

        watcher = Watcher(engine, Settings.from_path_or_dict(settings))
        result = watcher.scan(progress=lambda message: marks.append((message, time.perf_counter())))
        finished = time.perf_counter()
        for (name, at), (_, until) in zip(marks, [*marks[1:], ("end", finished)], strict=True):
            stages[name] = until - at
        started = time.perf_counter()
        write_scan(out, result, rejected={"count": sink.count, "reasons": []}, ingest=[],
                   settings={"engine": engine_name}, fingerprint_key_id="k-benchmark")
        stages["reports"] = time.perf_counter() - started
        engine.drop_all()
        engine.close()
        sink.close()
    exchanges = report.stored
    evaluation = evaluate(load_labels(world), load_scan_output(out)).to_dict()
    figures = {
        "engine": engine_name, "parts": parts, "exchanges": exchanges, "rejected": report.rejected,
        "raw_limits": limits, "fingerprint_per_core_per_s": per_core,
        "stages_s": stages, "end_to_end_s": sum(stages.values()),
        "peak_rss_mb": memory.peak / 2**20, "ingest_peak_rss_mb": ingest_peak / 2**20,
        "memory_limit": memory_limit, "workers": workers, "settings": settings or {},
        "campaign_recall": evaluation["campaign_recall"], "heavy_fpr": evaluation["heavy_fpr"],
        "account_precision": evaluation["account_precision"],
        "account_recall": evaluation["account_recall"],
    }
    (out / "scale.json").write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return figures


def print_figures(figures: dict) -> None:
    limit = figures["raw_limits"]["read_and_hash_per_s"]
    exchanges = figures["exchanges"]
    print(f"\n{figures['engine']}: {exchanges:,} exchanges ({figures['parts'] or 'all'} "
          "parts); raw limits on one "
          f"core: read {figures['raw_limits']['read_per_s']:,.0f}/s, read + hash "
          f"{limit:,.0f}/s")
    print("\n| stage | seconds | exchanges/s | ratio to read + hash (1 core) |")
    print("|---|---|---|---|")
    print(f"| fingerprint alone (1 core, CPU time) | – | "
          f"{figures['fingerprint_per_core_per_s']:,.0f} | "
          f"{figures['fingerprint_per_core_per_s'] / limit:.3f} |")
    for stage, seconds in figures["stages_s"].items():
        rate = exchanges / seconds if seconds else float("inf")
        print(f"| {stage} | {seconds:,.1f} | {rate:,.0f} | {rate / limit:.3f} |")
    print(f"| end to end | {figures['end_to_end_s']:,.1f} | "
          f"{exchanges / figures['end_to_end_s']:,.0f} | – |")
    print(f"\npeak RSS (process tree): {figures['peak_rss_mb']:,.0f} MB (ingest "
          f"{figures['ingest_peak_rss_mb']:,.0f} MB); memory limit "
          f"{figures['memory_limit'] or 'DuckDB default'}; settings {figures['settings']}")
    if figures.get("ingest_only"):
        return
    print(f"campaign recall {figures['campaign_recall']:.2f}, account precision "
          f"{figures['account_precision']:.4f}, recall {figures['account_recall']:.4f}, "
          f"heavy-user FPR {figures['heavy_fpr']:.3f}")
