"""Write every output of a scan: the contract files, the HTML report, the STIX bundle."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import orjson

from distillwatch import __version__
from distillwatch.report.contract import write_scan_output
from distillwatch.report.html import write_report
from distillwatch.share.stix import write_bundle
from distillwatch.watcher import ScanResult


def write_scan(out_dir: Path, result: ScanResult, *, rejected: dict | None = None,
               ingest: list[dict] | None = None, settings: dict | None = None,
               fingerprint_key_id: str | None = None) -> dict:
    """Write campaigns.json, accounts.jsonl, report.html and indicators.stix.json.

    Args:
        out_dir: The scan's output folder (created if missing).
        result: What the scan found.
        rejected: ``{"count": n, "reasons": [[reason, n], ...]}`` for the report.
        ingest: Per input file: source, read, accepted, rejected.
        settings: What the scan ran with (engine, policy), for the record.
        fingerprint_key_id: Which key family the template fingerprints are keyed with.

    Returns:
        The campaigns.json document.
    """
    window = result.window
    if window is None:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        window = (now, now)
    extra = {"scanner": "distillwatch", "version": __version__,
             "rejected": rejected or {"count": 0, "reasons": []}, **(settings or {})}
    write_scan_output(out_dir, window=window, total_exchanges=result.total_exchanges,
                      accounts=result.accounts, campaigns=result.campaigns, extra=extra)
    document = orjson.loads((out_dir / "campaigns.json").read_bytes())
    details = {**result.details, "ingest": ingest or [], "settings": settings or {}}
    write_report(out_dir, document, [asdict(a) for a in result.accounts], details)
    write_bundle(out_dir, document, fingerprint_key_id=fingerprint_key_id)
    return document
