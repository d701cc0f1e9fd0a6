"""The human report of a scan: one self-contained ``report.html`` that opens offline.

The page is built from the scan's own outputs (``campaigns.json`` and ``accounts.jsonl``,
shared/schema/scan-output.md) plus optional ``details`` the scanner gathered along the way.
Everything in those inputs is treated as untrusted text: the Jinja2 template autoescapes it,
and only the SVG plots made by :mod:`distillwatch.report.plots` are inserted as markup.
"""

from __future__ import annotations

import functools
import heapq
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.report import plots
from distillwatch.report.contract import DECISIONS

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
# Decisions listed in the report's account table (the contract's "flagged" is verify / block;
# throttled accounts are listed too, since a reviewer acts on them).
LISTED_DECISIONS = ("block", "verify", "throttle")
FLAGGED_TABLE_LIMIT = 200
LIST_LIMIT = 20
TABLE_ROW_LIMIT = 20
OTHER_ABUSE_LIMIT = 200
LINE_PLOT_CAMPAIGNS = 12
BAR_PLOT_CAMPAIGNS = 40
SUMMARY_CAPABILITIES = 2

# Indicator keys of the contract, with their headings; other keys follow, titled from the key.
INDICATOR_LABELS = {
    "ip_prefixes": "IP prefixes",
    "asns": "ASNs",
    "payment_fingerprints": "Payment fingerprints",
    "templates": "Template fingerprints",
}

# details["campaigns"][id] tables: key -> (heading, [(row key, column heading, cell kind)]).
# Only the listed row keys are shown, so a row carrying raw prompt text never reaches the page.
DETAIL_TABLES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "networks": ("Networks", [("asn", "ASN", "text"), ("asn_kind", "Kind", "text"),
                              ("exchanges", "Exchanges", "num"),
                              ("accounts", "Accounts", "num")]),
    "countries": ("Countries", [("country", "Country", "text"),
                                ("exchanges", "Exchanges", "num")]),
    "payments": ("Payment fingerprints", [("payment_fingerprint", "Fingerprint", "code"),
                                          ("accounts", "Accounts", "num")]),
    "signup_channels": ("Sign-up channels", [("channel", "Channel", "text"),
                                             ("accounts", "Accounts", "num")]),
    "templates": ("Masked templates", [("fingerprint", "Fingerprint", "code"),
                                       ("masked", "Masked template", "masked"),
                                       ("accounts", "Accounts", "num"),
                                       ("exchanges", "Exchanges", "num")]),
    "models": ("Models", [("model", "Model", "text"), ("exchanges", "Exchanges", "num")]),
}


def render_report(document: dict, accounts: list[dict], details: dict | None) -> str:
    """Render the HTML report of one scan.

    Args:
        document: The ``campaigns.json`` document (``window``, ``totals``, ``campaigns``, and
            optionally ``rejected``).
        accounts: The ``accounts.jsonl`` rows. Only counts by decision and the
            ``FLAGGED_TABLE_LIMIT`` highest-scored flagged accounts are shown.
        details: Optional extra material (``campaigns``, ``ingest``, ``other_abuse``,
            ``settings``); any key may be missing or empty, and so may ``details`` itself.

    Returns:
        The page as text: one HTML document with inline CSS and SVG, no external resources.

    Raises:
        DistillwatchInputError: If ``document`` or ``accounts`` break the output contract
            (a missing campaign field, a timestamp that is not ISO 8601, an account with no
            ``decision``).

    Example:
        >>> html = render_report(document, accounts, {})
        >>> "<svg" in html or "No campaigns found" in html
        True
    """
    if not isinstance(document, Mapping):
        raise DistillwatchInputError("the scan document must be a JSON object",
                                     source="campaigns.json")
    details = details or {}
    raw_campaigns = document.get("campaigns")
    if not isinstance(raw_campaigns, list):
        raise DistillwatchInputError("'campaigns' must be a list (empty when none were found)",
                                     source="campaigns.json")
    campaign_details = details.get("campaigns") or {}
    campaigns = [_campaign_view(index, campaign, campaign_details)
                 for index, campaign in enumerate(raw_campaigns)]
    anchors = {c["id"]: c["anchor"] for c in campaigns}
    context = {
        "generated_at": document.get("generated_at"),
        "schema_version": document.get("schema_version"),
        "window": document.get("window") or {},
        "totals": document.get("totals") or {},
        "campaigns": campaigns,
        "decisions": _decision_counts(accounts),
        "flagged": _flagged(accounts, anchors),
        "plots": _plots(campaigns, campaign_details),
        "ingest": _ingest(details.get("ingest") or []),
        "rejected": _rejected(document.get("rejected") or {}),
        "other_abuse": _truncate(details.get("other_abuse") or [], OTHER_ABUSE_LIMIT),
        "settings": {str(k): v for k, v in (details.get("settings") or {}).items()},
        "list_limit": LIST_LIMIT,
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_report(out_dir: Path, document: dict, accounts: list[dict],
                 details: dict | None) -> Path:
    """Render the report and write ``out_dir/report.html``, whole or not at all.

    The page is written to ``report.html.partial`` and moved into place with ``os.replace``,
    so a reader never sees half a report.

    Args:
        out_dir: The scan output folder; created if missing.
        document: As for :func:`render_report`.
        accounts: As for :func:`render_report`.
        details: As for :func:`render_report`.

    Returns:
        The path of the written report.

    Raises:
        DistillwatchInputError: As for :func:`render_report`; nothing is written then.
    """
    html = render_report(document, accounts, details)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / REPORT_NAME
    partial = out_dir / f"{REPORT_NAME}.partial"
    try:
        partial.write_text(html, encoding="utf-8")
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    logger.info("wrote %s (%d bytes)", final, len(html))
    return final


@functools.lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("distillwatch", "report/templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["label"] = _label
    return env


def _num(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return str(value)


def _label(name: Any) -> str:
    return str(name).replace("_", " ")


def _require(campaign: Mapping, key: str, where: str) -> Any:
    if key not in campaign or campaign[key] is None:
        raise DistillwatchInputError(
            f"campaign has no '{key}'; every campaign needs it (shared/schema/scan-output.md)",
            source=where)
    return campaign[key]


def _day(value: Any, where: str) -> str:
    try:
        return datetime.fromisoformat(str(value)).date().isoformat()
    except ValueError as exc:
        raise DistillwatchInputError(
            f"{value!r} is not an ISO 8601 timestamp such as '2026-04-22T03:10:00Z'",
            source=where) from exc


def _truncate(items: Sequence, limit: int) -> dict:
    items = list(items)
    return {"items": items[:limit], "more": max(0, len(items) - limit), "total": len(items)}


def _summary(cid: str, exchanges: int, accounts: int, first: str, last: str,
             capabilities: Mapping[str, float], confidence: float) -> str:
    text = f"{cid}: {exchanges:,} exchanges from {accounts:,} accounts, {first} → {last}"
    ranked = sorted(capabilities.items(), key=lambda kv: (-float(kv[1]), kv[0]))
    top = [(n, s) for n, s in ranked if n != "other"][:SUMMARY_CAPABILITIES] or ranked[:1]
    if top:
        text += ", targeting " + ", ".join(f"{_label(n)} {float(s):.0%}" for n, s in top)
    return f"{text}; confidence {confidence:.2f}"


def _campaign_view(index: int, campaign: Mapping, details: Mapping) -> dict:
    where = f"campaigns.json: campaigns[{index}]"
    if not isinstance(campaign, Mapping):
        raise DistillwatchInputError("campaign must be a JSON object", source=where)
    cid = str(_require(campaign, "campaign_id", where))
    extra = details.get(cid) or {}
    confidence = float(_require(campaign, "confidence", where))
    exchanges = int(_require(campaign, "exchange_count", where))
    accounts = int(campaign.get("account_count", len(campaign.get("accounts") or [])))
    first = _day(_require(campaign, "first_seen", where), f"{where}.first_seen")
    last = _day(_require(campaign, "last_seen", where), f"{where}.last_seen")
    capabilities = campaign.get("capabilities") or {}
    indicators = campaign.get("indicators") or {}
    keys = [k for k in INDICATOR_LABELS if k in indicators]
    keys += sorted(k for k in indicators if k not in INDICATOR_LABELS)
    tables = []
    for key, (heading, columns) in DETAIL_TABLES.items():
        rows = extra.get(key) or []
        if rows:
            tables.append({"heading": heading, "columns": columns,
                           "rows": _truncate(rows, TABLE_ROW_LIMIT)})
    return {
        "id": cid,
        "anchor": f"campaign-{index + 1}",
        "summary": _summary(cid, exchanges, accounts, first, last, capabilities, confidence),
        "exchanges": exchanges,
        "accounts": accounts,
        "confidence": confidence,
        "first_seen": campaign["first_seen"],
        "last_seen": campaign["last_seen"],
        "capabilities": sorted(capabilities.items(), key=lambda kv: -float(kv[1])),
        "tactics": list(campaign.get("tactics") or []),
        "evidence": list(campaign.get("evidence") or []),
        "indicators": [(INDICATOR_LABELS.get(k, _label(k)), _truncate(indicators[k] or [],
                                                                    LIST_LIMIT))
                       for k in keys],
        "tables": tables,
    }


def _decision_counts(accounts: Sequence[Mapping]) -> list[tuple[str, int]]:
    try:
        counts = Counter(account["decision"] for account in accounts)
    except (KeyError, TypeError) as exc:
        raise DistillwatchInputError("every account needs a 'decision' (one of "
                                     f"{', '.join(DECISIONS)})", source="accounts.jsonl") from exc
    ordered = [(d, counts.get(d, 0)) for d in DECISIONS]
    ordered += sorted((str(d), n) for d, n in counts.items() if d not in DECISIONS)
    return ordered


def _flagged(accounts: Sequence[Mapping], anchors: Mapping[str, str]) -> dict:
    flagged = [a for a in accounts if a["decision"] in LISTED_DECISIONS]
    for account in flagged:
        if not isinstance(account.get("score"), int | float):
            raise DistillwatchInputError(
                f"flagged account {account.get('account_id')!r} has no numeric 'score' in [0, 1]",
                source="accounts.jsonl")
    top = heapq.nlargest(FLAGGED_TABLE_LIMIT, flagged,
                         key=lambda a: (a["score"], a.get("exchanges") or 0))
    rows = [{
        "account_id": a.get("account_id"),
        "score": float(a["score"]),
        "decision": a.get("decision"),
        "campaign_id": a.get("campaign_id"),
        "anchor": anchors.get(a.get("campaign_id")),
        "exchanges": a.get("exchanges"),
        "reasons": ", ".join(str(r) for r in a.get("reasons") or []),
    } for a in top]
    return {"items": rows, "total": len(flagged), "more": len(flagged) - len(rows),
            "limit": FLAGGED_TABLE_LIMIT}


def _plots(campaigns: Sequence[Mapping], details: Mapping) -> dict:
    # The largest campaigns by exchanges, kept in page order so the colours follow the page.
    with_daily = [c for c in campaigns if (details.get(c["id"]) or {}).get("daily")]
    keep = {c["id"] for c in heapq.nlargest(LINE_PLOT_CAMPAIGNS, with_daily,
                                            key=lambda c: c["exchanges"])}
    daily = {c["id"]: details[c["id"]]["daily"] for c in with_daily if c["id"] in keep}
    with_caps = [c for c in campaigns if c["capabilities"]]
    keep_caps = {c["id"] for c in heapq.nlargest(BAR_PLOT_CAMPAIGNS, with_caps,
                                                 key=lambda c: c["exchanges"])}
    caps = {c["id"]: dict(c["capabilities"]) for c in with_caps if c["id"] in keep_caps}

    def markup(svg: str | None) -> Markup | None:
        # Made by Matplotlib from escaped text, so it is trusted markup.
        return Markup(svg) if svg else None

    return {
        "daily": markup(plots.daily_exchanges_svg(daily)),
        "joining": markup(plots.accounts_joining_svg(daily)),
        "capabilities": markup(plots.capability_mix_svg(caps)),
        "line_shown": len(daily), "line_total": len(with_daily),
        "bar_shown": len(caps), "bar_total": len(with_caps),
    }


def _ingest(sources: Sequence[Mapping]) -> dict:
    rows = list(sources)
    totals = {key: sum(int(r.get(key) or 0) for r in rows)
              for key in ("read", "accepted", "rejected")}
    return {"rows": rows, "totals": totals}


def _rejected(rejected: Mapping) -> dict:
    reasons = rejected.get("reasons") or []
    pairs = list(reasons.items()) if isinstance(reasons, Mapping) else [tuple(r) for r in reasons]
    return {"count": rejected.get("count"), "reasons": _truncate(pairs, LIST_LIMIT)}


def campaign_sentence(campaign: Mapping) -> str:
    """The one-line summary of a campaign that a letter to a regulator would quote.

    Example: "C-0001: 412,300 exchanges from 1,204 accounts, 2026-04-22 → 2026-06-05,
    targeting coding 41%, agentic tool use 33%; confidence 0.97".
    """
    return _campaign_view(0, campaign, {})["summary"]
