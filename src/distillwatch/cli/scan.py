"""``distillwatch scan``: logs in, campaigns, scores, decisions and reports out."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

import typer

from distillwatch.cli.common import (
    KEY_FILE_OPTION,
    MEMORY_LIMIT_OPTION,
    SINCE_OPTION,
    WORKERS_OPTION,
    parse_since,
)
from distillwatch.cli.ingest import fingerprint_key
from distillwatch.exceptions import DistillwatchInputError


def run_scan(logs: list[Path], out: Path, *, accounts: list[Path] = (), store: Path | None = None,
             fmt: str | None = None, policy: Path | None = None, settings: Path | None = None,
             key_file: Path | None = None, memory_limit: str | None = None,
             threads: int | None = None, workers: int | None = None,
             since: datetime | None = None, engine: str = "duckdb",
             spark_master: str | None = None, console=None) -> dict:
    """Ingest ``logs`` (and account files) into a store, scan it, write every output.

    ``since`` reads only the logs' exchanges from that instant on (older ones are in the
    store); the scan then covers everything the store holds, as a full rescan would.
    ``engine="spark"`` runs ingest (Parquet logs) and every scan stage on Spark, with the store
    a Parquet folder (default OUT/store-spark); outputs are the same files.

    Returns:
        The campaigns.json document.
    """
    from rich.console import Console

    from distillwatch.engine import DuckDBEngine
    from distillwatch.ingest.accounts import read_accounts, store_accounts
    from distillwatch.ingest.readers import FileStats, input_files, sniff_kind
    from distillwatch.ingest.rejects import RejectSink
    from distillwatch.ingest.store import ensure_store, ingest
    from distillwatch.watcher import Watcher

    console = console or Console()
    if engine not in ("duckdb", "spark"):
        raise DistillwatchInputError(f"Unknown --engine {engine!r}; use duckdb or spark")
    if engine == "spark":
        return _run_spark_scan(logs, out, accounts=accounts, store=store, policy=policy,
                               settings=settings, key_file=key_file, memory_limit=memory_limit,
                               since=since, master=spark_master, console=console)
    missing = [str(p) for p in [*logs, *accounts] if not p.exists()]
    if missing:
        raise DistillwatchInputError(f"No such file or folder: {', '.join(missing)}; check "
                                     "the path, or pass --store alone to rescan a store")
    if not logs and store is None:
        raise DistillwatchInputError("Give log files or folders to scan, or --store FILE of "
                                     "an earlier ingest")
    from distillwatch.ingest.readers import FORMATS

    if fmt is not None and fmt not in FORMATS:
        raise DistillwatchInputError(f"Unknown --format {fmt!r}; use one of "
                                     f"{', '.join(FORMATS)}, or omit it to detect per file")
    chosen_policy, chosen_settings, key, unkeyed = _choices(policy, settings, key_file, console)
    out.mkdir(parents=True, exist_ok=True)
    rejected_path = out / "rejected.jsonl"
    rejected_path.unlink(missing_ok=True)
    sink = RejectSink(rejected_path)
    store = store or out / "store.duckdb"
    exchange_files, account_files, files_stats = [], list(accounts), []
    for path in input_files(list(logs)):
        kind = "exchanges" if fmt else sniff_kind(path)
        if kind == "exchanges":
            exchange_files.append(path)
        elif kind == "accounts":
            account_files.append(path)
        else:
            stats = FileStats(str(path), read=1, rejected=1)
            sink.add(str(path), "whole file", "file skipped: it holds no exchange or account "
                     "records (a JSON document such as labels.json, or a scan's output); pass "
                     "--format exchange_jsonl to read it anyway")
            files_stats.append(stats)
    engine = DuckDBEngine(store, memory_limit=memory_limit, threads=threads)
    try:
        ensure_store(engine)
        with console.status("ingesting") as status:
            report = ingest(engine, exchange_files, sink, key, fmt, workers=workers,
                            since=since, progress=lambda source, n: status.update(
                                f"ingesting {source}: {n:,} records"))
            for path in account_files:
                stats, rows = read_accounts(path, sink)
                store_accounts(engine, rows)
                report.files.append(stats)
            sink.flush()
            watcher = Watcher(engine, chosen_settings, policy=chosen_policy)
            result = watcher.scan(progress=lambda message: status.update(message))
            status.update("writing reports")
            files = [*report.files, *files_stats]
            document = _write(out, result, sink, files,
                              {"engine": "duckdb", "policy": chosen_policy.source,
                               "store": str(store)}, key, unkeyed)
    finally:
        sink.close()
        engine.drop_all()
        engine.close()
    document["_ingest"] = {"stored": report.stored, "already_stored": report.already_stored,
                           "rejected": sink.count}
    return document


def _choices(policy: Path | None, settings: Path | None, key_file: Path | None, console):
    """The policy, settings and fingerprint key a scan runs with (warns when unkeyed)."""
    from distillwatch.score.policy import Policy
    from distillwatch.settings import Settings

    chosen_policy = Policy.from_path(policy) if policy else Policy.builtin()
    chosen_settings = Settings.from_path_or_dict(settings)
    key, unkeyed = fingerprint_key(key_file)
    if unkeyed:
        console.print("[yellow]warning:[/] no fingerprint key (--key-file or "
                      "$DISTILLWATCH_FINGERPRINT_KEY): fingerprints are unkeyed; do not share "
                      "indicators.stix.json")
    return chosen_policy, chosen_settings, key, unkeyed


def _write(out: Path, result, sink, files: list, settings: dict, key: bytes, unkeyed: bool
           ) -> dict:
    """Every output file of a scan; returns the campaigns.json document."""
    from distillwatch.report.writer import write_scan

    return write_scan(
        out, result,
        rejected={"count": sink.count, "reasons": [list(r) for r in
                                                   sink.reasons.most_common(20)]},
        ingest=[{"source": f.source, "read": f.read, "accepted": f.accepted,
                 "rejected": f.rejected} for f in files],
        settings=settings,
        fingerprint_key_id=None if unkeyed else
        "k-" + hashlib.blake2b(key, digest_size=6).hexdigest())


def _is_remote(path: str) -> bool:
    return "://" in path


def _run_spark_scan(logs: list, out: Path, *, accounts, store, policy, settings, key_file,
                    memory_limit, since, master, console) -> dict:
    """``run_scan`` on Spark: Parquet logs (any Hadoop-compatible path) to the same outputs."""
    from distillwatch.engine.spark import SparkEngine, build_session
    from distillwatch.ingest.accounts import read_accounts
    from distillwatch.ingest.readers import FileStats, sniff_kind
    from distillwatch.ingest.rejects import RejectSink
    from distillwatch.ingest.spark_ingest import ingest_parquet, store_accounts_parquet
    from distillwatch.watcher import Watcher

    names = [str(p) for p in logs]
    missing = [n for n in [*names, *map(str, accounts)] if not _is_remote(n)
               and not Path(n).exists()]
    if missing:
        raise DistillwatchInputError(f"No such file or folder: {', '.join(missing)}")
    if not logs and store is None:
        raise DistillwatchInputError("Give Parquet log folders to scan, or --store FOLDER of "
                                     "an earlier Spark ingest")
    parquet, account_files, skipped = [], [Path(a) for a in accounts], []
    for name in names:
        local = Path(name)
        if _is_remote(name) or local.suffix == ".parquet":
            parquet.append(name)
            continue
        if local.is_dir():
            parquet.append(str(_parquet_root(local)))
            account_files += [f for f in local.iterdir() if f.is_file()
                              and sniff_kind(f) == "accounts"]
            skipped += [f for f in local.iterdir() if f.is_file() and sniff_kind(f) == "other"]
            continue
        kind = sniff_kind(local)
        if kind == "accounts":
            account_files.append(local)
        elif kind == "other":
            skipped.append(local)
        else:
            raise DistillwatchInputError(
                f"{name}: --engine spark reads Parquet logs (the Exchange Arrow layout, "
                "docs/world-format.md); scan JSONL with the DuckDB engine, or convert it")
    chosen_policy, chosen_settings, key, unkeyed = _choices(policy, settings, key_file, console)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rejected.jsonl").unlink(missing_ok=True)
    sink = RejectSink(out / "rejected.jsonl")
    for path in skipped:
        sink.add(str(path), "whole file", "file skipped: a JSON document, not Parquet logs")
    store_path = str(store or out / "store-spark")
    # Under spark-submit (the driver was started by Spark's launcher) its --master holds.
    master = master or (None if os.environ.get("PYSPARK_GATEWAY_PORT") else "local[*]")
    from pyspark.sql import SparkSession

    owned = SparkSession.getActiveSession() is None  # a caller's session is left running
    spark = build_session(master, memory_limit)
    try:
        with console.status("ingesting on Spark") as status:
            files: list[FileStats] = []
            report = None
            if parquet:
                report = ingest_parquet(spark, parquet, store_path, key, sink, since=since)
                files += report.files
            for path in account_files:
                stats, rows = read_accounts(path, sink)
                store_accounts_parquet(spark, store_path, rows)
                files.append(stats)
            sink.flush()
            engine = SparkEngine(store_path, spark=spark)
            try:
                result = Watcher(engine, chosen_settings, policy=chosen_policy).scan(
                    progress=lambda message: status.update(f"{message} (Spark)"))
                status.update("writing reports")
                document = _write(out, result, sink, files,
                                  {"engine": "spark", "spark_master": master or "spark-submit",
                                   "policy": chosen_policy.source, "store": store_path},
                                  key, unkeyed)
            finally:
                engine.drop_all()
                engine.close()
    finally:
        sink.close()
        if owned:
            spark.stop()
    document["_ingest"] = {"stored": report.stored if report else 0,
                           "already_stored": report.already_stored if report else 0,
                           "rejected": sink.count}
    return document


def _parquet_root(folder: Path) -> Path:
    """The folder of a world's Parquet parts (``exchanges/``) or the folder itself."""
    parts = folder / "exchanges"
    return parts if parts.is_dir() and any(parts.glob("*.parquet")) else folder


def print_summary(console, document: dict, out: Path, accounts_path: Path) -> None:
    """The terminal summary: one quotable sentence per campaign, decisions, outputs."""
    from collections import Counter

    import orjson

    from distillwatch.report.html import campaign_sentence

    totals = document["totals"]
    console.print(f"scanned {totals['exchanges']:,} exchanges from {totals['accounts']:,} "
                  f"accounts, {document['window']['start']} → {document['window']['end']}")
    if not document["campaigns"]:
        console.print("no campaigns found")
    for campaign in document["campaigns"]:
        console.print(campaign_sentence(campaign), highlight=False)
    decisions: Counter[str] = Counter()
    if accounts_path.exists():
        with accounts_path.open("rb") as handle:
            for line in handle:
                decisions[orjson.loads(line)["decision"]] += 1
    console.print("decisions: " + ", ".join(f"{decisions[d]:,} {d}" for d in (
        "block", "verify", "throttle", "monitor", "allow")))
    rejected = document.get("rejected", {}).get("count", 0)
    console.print(f"{rejected:,} input records rejected -> {out / 'rejected.jsonl'}")
    console.print(f"outputs in {out}: campaigns.json, accounts.jsonl, report.html, "
                  "indicators.stix.json, rejected.jsonl")


def scan_command(
    logs: list[str] = typer.Argument(None, help="Log files or folders (searched "
                                     "recursively; formats detected per file; account files "
                                     "found among them are read as accounts). With --engine "
                                     "spark: Parquet folders, also hdfs:// or s3a:// paths."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: campaigns.json, "
                             "accounts.jsonl, report.html, indicators.stix.json, rejected.jsonl "
                             "(and store.duckdb unless --store is given)."),
    accounts: list[Path] = typer.Option([], "--accounts", "-a", help="Account file(s): JSONL, "
                                        "CSV or Parquet (account schema; optional; "
                                        "repeatable)."),
    store: Path = typer.Option(None, "--store", "-s", help="DuckDB store to ingest into and "
                               "scan (default OUT/store.duckdb). With no LOGS, scans what the "
                               "store already holds."),
    fmt: str = typer.Option(None, "--format", "-f", help="Force exchange_jsonl or "
                            "exchange_parquet for every LOGS file (default: detected)."),
    policy: Path = typer.Option(None, "--policy", "-p", help="Decision policy YAML (default: "
                                "the built-in one, src/distillwatch/conf/policy.yaml)."),
    settings: Path = typer.Option(None, "--settings", help="Link / score settings YAML "
                                  "(keys: link, score, disabled_signals, "
                                  "disabled_link_families; unknown keys are errors; see "
                                  "docs/detector.md)."),
    key_file: Path = KEY_FILE_OPTION,
    memory_limit: str = MEMORY_LIMIT_OPTION,
    threads: int = typer.Option(None, "--threads", help="DuckDB worker threads (default: one "
                                "per core)."),
    workers: int = WORKERS_OPTION,
    since: str = SINCE_OPTION,
    engine: str = typer.Option("duckdb", "--engine", help="duckdb (one machine, the default) "
                               "or spark: ingest Parquet logs and run every stage on Apache "
                               "Spark (PySpark), the store being a Parquet folder (any "
                               "Hadoop-compatible path; default OUT/store-spark)."),
    spark_master: str = typer.Option(None, "--spark-master", help="Spark master URL for "
                                     "--engine spark: local[N], spark://host:7077, yarn, "
                                     "k8s://... (default local[*]; under spark-submit, its "
                                     "--master)."),
) -> None:
    """Find distillation campaigns in API logs: accounts, volumes, dates, capabilities, why.

    Reads Exchange JSONL (plain, .gz, .zst) and Parquet, OpenAI / Anthropic request logs and
    LiteLLM's StandardLoggingPayload records.
    Every record that cannot be read goes to OUT/rejected.jsonl with its file, line and the
    reason. Prints one line per campaign, e.g. "C-0001: 412,300 exchanges from 1,204
    accounts, 2026-04-22 → 2026-06-05, targeting coding 41%, agentic tool use 33%;
    confidence 0.97", and writes the scan output contract (shared/schema/scan-output.md).

    Daily use: keep one store and give each day's logs; files read before are skipped, and
    --since skips older exchanges inside files that span days. A killed scan can simply be
    run again: nothing ingested is lost or stored twice.

    Example: distillwatch scan logs/2026-05/ --accounts accounts.csv --out scan-may
    --key-file fp.key
    """
    from rich.console import Console

    console = Console()
    inputs = list(logs or []) if engine == "spark" else [Path(p) for p in logs or []]
    document = run_scan(inputs, out, accounts=accounts, store=store, fmt=fmt,
                        policy=policy, settings=settings, key_file=key_file,
                        memory_limit=memory_limit, threads=threads, workers=workers,
                        since=parse_since(since), engine=engine, spark_master=spark_master,
                        console=console)
    print_summary(console, document, out, out / "accounts.jsonl")


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)
