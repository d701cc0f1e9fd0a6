"""``distillwatch evaluate``: score a scan (or a registered scanner) against a world's labels."""

from __future__ import annotations

import math
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from distillwatch.exceptions import DistillwatchConfigError


def _pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.3f}"


def render_evaluation(console: Console, result: dict, title: str) -> None:
    """Print an evaluation (``Evaluation.to_dict()``) as tables."""
    found = [c for c in result["campaigns"] if c["found"]]
    missed = [c for c in result["campaigns"] if not c["found"]]
    summary = Table(title=title, show_header=False, title_justify="left")
    summary.add_column("metric", style="bold")
    summary.add_column("value")
    summary.add_row("campaign recall", f"{_pct(result['campaign_recall'])} "
                    f"({result['campaigns_found']}/{result['campaigns_total']} found)")
    summary.add_row("  found", ", ".join(f"{c['campaign_id']} {c['name']}" for c in found)
                    or "none")
    summary.add_row("  missed", ", ".join(
        f"{c['campaign_id']} {c['name']} ({c['flagged_share']:.0%} flagged)" for c in missed)
        or "none")
    summary.add_row("account precision / recall",
                    f"{_pct(result['account_precision'])} / {_pct(result['account_recall'])}")
    summary.add_row("exchange coverage", _pct(result["exchange_coverage"]))
    summary.add_row("PR-AUC of score", _pct(result["pr_auc"]))
    summary.add_row("FPR legit (all / heavy users)",
                    f"{_pct(result['legit_fpr'])} / {_pct(result['heavy_fpr'])}")
    summary.add_row("other abuse flagged (apart)", _pct(result["other_abuse_flagged_rate"]))
    console.print(summary)
    populations = Table(title="false-positive rate per legitimate population",
                        title_justify="left")
    for column in ("population", "heavy", "accounts", "flagged", "FPR"):
        populations.add_column(column, justify="right" if column != "population" else "left")
    for p in result["populations"]:
        style = "red" if p["flagged"] and p["heavy"] else None
        populations.add_row(p["population"], "yes" if p["heavy"] else "", str(p["accounts"]),
                            str(p["flagged"]), _pct(p["fpr"]), style=style)
    console.print(populations)


def render_replay(console: Console, detections: list[dict]) -> None:
    table = Table(title="time to detection (replay in time order)", title_justify="left")
    for column in ("campaign", "detected at", "attack exchanges before", "share"):
        table.add_column(column)
    for d in detections:
        table.add_row(f"{d['campaign_id']} {d['name']}", d["detected_at"] or "never",
                      f"{d['exchanges_before']:,} of {d['campaign_exchanges']:,}",
                      f"{d['share_before']:.1%}")
    console.print(table)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise DistillwatchConfigError(f"--param expects key=value, got '{pair}'")
        key, value = pair.split("=", 1)
        params[key.strip()] = value.strip()
    return params


def _parse_step(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([hd])", text.strip())
    if not match:
        raise DistillwatchConfigError(f"--replay-step expects e.g. 1d or 6h, got '{text}'")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def evaluate_command(
    world: Path = typer.Option(..., "--world", "-w", help="World folder written by "
                               "`distillwatch simulate` (holds labels.json)."),
    scan: Path = typer.Option(None, "--scan", help="Scan output folder to score "
                              "(campaigns.json + accounts.jsonl)."),
    scanner: str = typer.Option(None, "--scanner", help="Instead of --scan: run this "
                                "registered scanner on the world (volume_baseline, "
                                "cot_rate_baseline, or command with --param "
                                "'command=PROGRAM {world} {out} {until}')."),
    param: list[str] = typer.Option([], "--param", help="Scanner parameter key=value "
                                    "(repeatable), e.g. --param threshold=150."),
    out: Path = typer.Option(None, "--out", "-o", help="Where --scanner writes its scan "
                             "output (default: a temporary folder)."),
    json_path: Path = typer.Option(None, "--json", help="Write the metrics as JSON here "
                                   "(default: evaluation.json in the scan folder)."),
    replay_flag: bool = typer.Option(False, "--replay", help="With --scanner: also replay "
                                     "the world in time order and report time to detection."),
    replay_step: str = typer.Option("1d", "--replay-step", help="Time between replay "
                                    "cutoffs, e.g. 1d or 6h."),
) -> None:
    """Score a scan against a world's ground truth.

    Reports campaign recall (a campaign is found when >= 50% of its accounts are flagged: in a
    reported campaign, or decided verify/block), account precision and recall, the
    false-positive rate of every legitimate population (heavy users first), exchange coverage,
    PR-AUC of the account score, and the flagged rate of other-abuse accounts (apart). Exit
    code 2 when the world or the scan output is missing or malformed.

    Examples:

      distillwatch evaluate --world worlds/ci-1 --scan out/ci-1

      distillwatch evaluate --world worlds/std-1 --scanner cot_rate_baseline --replay

      distillwatch evaluate --world worlds/ci-1 --scanner command --replay \
          --param "command=mytool scan {world} --before {until} --out {out}"
    """
    from rich.progress import Progress

    from distillwatch.evaluate import evaluate, load_labels, load_scan_output
    from distillwatch.evaluate.replay import replay
    from distillwatch.evaluate.scanners import get_scanner

    console = Console()
    if (scan is None) == (scanner is None):
        raise DistillwatchConfigError("Give exactly one of --scan DIR or --scanner NAME")
    if replay_flag and scanner is None:
        raise DistillwatchConfigError("--replay needs --scanner (it reruns the scanner)")
    labels = load_labels(world)
    tmp = None
    if scanner is not None:
        instance = get_scanner(scanner, **_parse_params(param))
        if out is None:
            tmp = tempfile.TemporaryDirectory(prefix="distillwatch-eval-")
            out = Path(tmp.name)
        with console.status(f"running {scanner} on {world}"):
            instance.scan(world, out)
        scan = out
    try:
        result = evaluate(labels, load_scan_output(scan)).to_dict()
        detections = None
        if replay_flag:
            step = _parse_step(replay_step)
            with Progress(console=console) as bar:
                task = bar.add_task("replaying", total=None)
                found = replay(world, labels, instance, step,
                               progress=lambda d, n: bar.update(task, completed=d, total=n))
            detections = [d.to_dict() for d in found]
            result["time_to_detection"] = detections
        render_evaluation(console, result, f"evaluation of {scanner or scan} on {world}")
        if detections:
            render_replay(console, detections)
        target = json_path or (scan / "evaluation.json" if tmp is None else None)
        if target is not None:
            target.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            console.print(f"metrics written to {target}")
    finally:
        if tmp is not None:
            tmp.cleanup()


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)
