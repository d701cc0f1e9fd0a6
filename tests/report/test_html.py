"""The HTML report: content, escaping, truncation, offline-only resources, atomic writes."""

from __future__ import annotations

import re
import time

import pytest

from distillwatch.exceptions import DistillwatchInputError
from distillwatch.report import plots
from distillwatch.report.html import FLAGGED_TABLE_LIMIT, render_report, write_report

SCRIPT = "<script>alert(1)</script>"
SUMMARY_1 = ("C-0001: 412,300 exchanges from 1,204 accounts, 2026-04-22 → 2026-06-05, "
             "targeting coding 41%, agentic tool use 33%; confidence 0.97")
SUMMARY_2 = ("C-0002: 9,000 exchanges from 30 accounts, 2026-05-01 → 2026-05-20, "
             "targeting reasoning cot 70%, writing 30%; confidence 0.61")


def _prefix(i: int) -> str:
    return f"198.51.{i // 256}.{i % 256}/32"


def _campaign(cid, *, accounts, exchanges, first, last, capabilities, confidence, prefixes=3):
    return {
        "campaign_id": cid,
        "confidence": confidence,
        "accounts": [f"{cid}-acct-{i}" for i in range(accounts)],
        "account_count": accounts,
        "exchange_count": exchanges,
        "first_seen": first,
        "last_seen": last,
        "capabilities": capabilities,
        "tactics": ["hydra_cluster", "proxy_rotation"],
        "evidence": [{"kind": "shared_template",
                      "detail": f"{accounts} accounts send prompts built on 3 templates",
                      "weight": 0.4}],
        "indicators": {"templates": ["tpl-1a2b"],
                       "ip_prefixes": [_prefix(i) for i in range(prefixes)],
                       "asns": [64500], "payment_fingerprints": ["pf-abc"]},
    }


def _document(campaigns):
    return {
        "schema_version": "1",
        "generated_at": "2026-06-10T12:00:00Z",
        "window": {"start": "2026-04-22T00:00:00Z", "end": "2026-06-05T23:59:59Z"},
        "totals": {"exchanges": 123_456_789, "accounts": 987_654},
        "campaigns": campaigns,
        "rejected": {"count": 3, "reasons": [["invalid json", 2], ["missing timestamp", 1]]},
    }


def _daily(days, base):
    return [{"day": f"2026-05-{d:02d}", "exchanges": base + 10 * d, "active_accounts": 40,
             "new_accounts": 2} for d in range(1, days + 1)]


@pytest.fixture
def document():
    return _document([
        _campaign("C-0001", accounts=1204, exchanges=412_300, first="2026-04-22T03:10:00Z",
                  last="2026-06-05T22:41:00Z", confidence=0.97, prefixes=500,
                  capabilities={"coding": 0.41, "agentic_tool_use": 0.33,
                                "reasoning_cot": 0.2, "other": 0.06}),
        _campaign("C-0002", accounts=30, exchanges=9_000, first="2026-05-01T00:00:00Z",
                  last="2026-05-20T10:00:00Z", confidence=0.61,
                  capabilities={"reasoning_cot": 0.7, "writing": 0.3}),
    ])


@pytest.fixture
def details():
    return {
        "campaigns": {
            "C-0001": {
                "daily": _daily(30, 100),
                "networks": [{"asn": 64500, "asn_kind": "proxy", "exchanges": 100,
                              "accounts": 30}],
                "countries": [{"country": "US", "exchanges": 50}],
                "payments": [{"payment_fingerprint": "pf-abc", "accounts": 12}],
                "signup_channels": [{"channel": "education", "accounts": 30}],
                "templates": [{"fingerprint": "tpl-1a2b", "masked": f"Solve: <NUM> {SCRIPT}",
                               "accounts": 400, "exchanges": 9000,
                               "raw": "RAW PROMPT TEXT MUST NOT APPEAR"}],
                "models": [{"model": "m-1", "exchanges": 10}],
            },
            "C-0002": {"daily": _daily(20, 5)},
        },
        "ingest": [{"source": "logs/a.jsonl.gz", "read": 10, "accepted": 9, "rejected": 1}],
        "other_abuse": [{"account_id": "acct-fraud", "reason": "card testing"}],
        "settings": {"policy": "conf/policy.yaml", "engine": "duckdb"},
    }


def _accounts(flagged: int, unflagged: int = 0) -> list[dict]:
    """``flagged`` accounts with distinct scores (acct-f0 lowest) plus allowed ones."""
    decisions = ("block", "verify", "throttle")
    rows = [{"account_id": f"acct-f{i}", "score": 0.5 + 0.5 * i / max(flagged, 1),
             "campaign_id": "C-0001", "decision": decisions[i % 3], "exchanges": i,
             "reasons": ["shared_template"]} for i in range(flagged)]
    rows += [{"account_id": f"acct-ok{i}", "score": 0.99, "campaign_id": None,
              "decision": "allow" if i % 2 else "monitor", "exchanges": 1, "reasons": []}
             for i in range(unflagged)]
    return rows


def _flagged_rows(html: str) -> list[str]:
    match = re.search(r'<table class="flagged">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert match, "the flagged-accounts table is missing"
    return re.findall(r"<tr>", match.group(1))


def test_when_two_campaigns_then_report_has_ids_summaries_and_plots(tmp_path, document,
                                                                   details):
    path = write_report(tmp_path, document, _accounts(10, 5), details)

    assert path == tmp_path / "report.html"
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for cid in ("C-0001", "C-0002"):
        assert cid in html
    assert SUMMARY_1 in html
    assert SUMMARY_2 in html
    assert html.count("<svg") == 3
    for expected in ("hydra cluster", "shared_template", "64500", "education", "m-1",
                     "logs/a.jsonl.gz", "card testing", "invalid json", "duckdb",
                     "conf/policy.yaml", "2026-06-10T12:00:00Z", "987,654"):
        assert expected in html, expected
    assert "RAW PROMPT TEXT" not in html


def test_when_rendered_then_no_external_resources(document, details):
    html = render_report(document, _accounts(10), details)

    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html and "@font-face" not in html


def test_when_inputs_hold_markup_then_it_is_escaped(document, details):
    document["campaigns"][1]["tactics"] = [SCRIPT]
    accounts = [{"account_id": SCRIPT, "score": 0.9, "campaign_id": None, "decision": "block",
                 "exchanges": 3, "reasons": [SCRIPT]}]

    html = render_report(document, accounts, details)

    assert SCRIPT not in html
    assert "<script" not in html
    assert "Solve: &lt;NUM&gt; &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_when_500_prefixes_then_20_shown_and_480_more(document, details):
    html = render_report(document, [], details)

    shown = [i for i in range(500) if f"<code>{_prefix(i)}</code>" in html]
    assert shown == list(range(20))
    assert "+480 more" in html


def test_when_row_lists_are_long_then_tables_are_cut(document, details):
    details["campaigns"]["C-0001"]["countries"] = [
        {"country": f"Q{i:03d}", "exchanges": i} for i in range(45)]

    html = render_report(document, [], details)

    assert "Q019" in html and "Q020" not in html
    assert "+25 more" in html


@pytest.mark.parametrize("details", [None, {}, {"campaigns": {}, "ingest": [],
                                               "other_abuse": [], "settings": {}}])
def test_when_details_are_empty_then_report_still_renders(document, details):
    html = render_report(document, _accounts(3), details)

    assert SUMMARY_1 in html
    # No daily rows, so only the capability mix (from campaigns.json) is drawn.
    assert html.count("<svg") == 1
    assert "No daily activity was recorded." in html
    assert "No ingest summary was recorded." in html


@pytest.mark.parametrize("missing", ["campaigns", "ingest", "other_abuse", "settings"])
def test_when_one_details_key_is_missing_then_report_renders(document, details, missing):
    del details[missing]

    html = render_report(document, _accounts(3), details)

    assert "C-0001" in html


def test_when_no_campaigns_then_says_so(tmp_path):
    document = _document([])
    document.pop("rejected")

    html = write_report(tmp_path, document, [], {}).read_text(encoding="utf-8")

    assert "No campaigns found" in html
    assert "<svg" not in html
    assert "No account was throttled" in html


def test_when_5000_flagged_then_table_holds_the_200_highest(document):
    html = render_report(document, _accounts(5000, unflagged=1000), {})

    assert len(_flagged_rows(html)) == FLAGGED_TABLE_LIMIT == 200
    assert "<code>acct-f4999</code>" in html
    assert "<code>acct-f4800</code>" in html
    assert "<code>acct-f4799</code>" not in html
    assert "acct-ok" not in html
    assert "The 200 highest-scored of 5,000 accounts" in html


def test_when_40000_accounts_then_renders_quickly(document, details):
    accounts = _accounts(20_000, unflagged=20_000)
    render_report(document, accounts[:10], details)  # first render loads fonts and template

    start = time.perf_counter()
    html = render_report(document, accounts, details)
    elapsed = time.perf_counter() - start

    assert elapsed < 2.0
    assert len(_flagged_rows(html)) == 200
    assert re.search(r"<th class=\"n\">allow</th>", html)


def test_when_written_then_no_partial_file_is_left(tmp_path, document, details):
    write_report(tmp_path, document, _accounts(5), details)
    write_report(tmp_path, document, _accounts(6), details)  # replaces the first report

    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_when_input_breaks_contract_then_error_and_nothing_written(tmp_path, document):
    del document["campaigns"][1]["exchange_count"]

    with pytest.raises(DistillwatchInputError, match="exchange_count") as info:
        write_report(tmp_path / "out", document, [], {})

    assert "campaigns[1]" in str(info.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad, match", [
    ({"first_seen": "last tuesday"}, "ISO 8601"),
    ({"confidence": None}, "confidence"),
])
def test_when_campaign_field_is_bad_then_error_names_it(document, bad, match):
    document["campaigns"][0].update(bad)

    with pytest.raises(DistillwatchInputError, match=match):
        render_report(document, [], {})


def test_when_account_has_no_decision_then_error(document):
    with pytest.raises(DistillwatchInputError, match="decision"):
        render_report(document, [{"account_id": "a", "score": 0.1}], {})


def test_when_several_plots_then_svg_ids_are_unique(document, details):
    html = render_report(document, [], details)

    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # Every internal reference still points at an element on the page.
    refs = set(re.findall(r'url\(#([^)]+)\)', html)) | set(re.findall(r'href="#([^"]+)"', html))
    assert refs <= set(ids)


def test_when_no_capabilities_then_summary_omits_targeting(document):
    document["campaigns"][1]["capabilities"] = {}

    html = render_report(document, [], {})

    assert ("C-0002: 9,000 exchanges from 30 accounts, 2026-05-01 → 2026-05-20; "
            "confidence 0.61") in html


def test_when_nothing_to_draw_then_plots_return_none():
    assert plots.daily_exchanges_svg({}) is None
    assert plots.accounts_joining_svg({"C-1": [{"day": "2026-05-01"}]}) is None
    assert plots.capability_mix_svg({"C-1": {}}) is None


def test_when_labels_look_like_mathtext_then_plot_draws_them_as_text():
    svg = plots.daily_exchanges_svg({"C-$x^$": [{"day": "2026-05-01", "exchanges": 3}]})

    assert svg is not None and svg.startswith("<svg")
    assert "C-$x^$" in svg


def test_when_day_is_not_a_date_then_plot_error_names_the_row():
    with pytest.raises(DistillwatchInputError, match=r"daily\[1\]"):
        plots.daily_exchanges_svg({"C-1": [{"day": "2026-05-01", "exchanges": 1},
                                          {"day": "soon", "exchanges": 2}]})


def test_when_flagged_account_has_no_score_then_error_names_it(document):
    accounts = [{"account_id": "acct-x", "decision": "block", "exchanges": 1}]

    with pytest.raises(DistillwatchInputError, match="acct-x"):
        render_report(document, accounts, {})
