"""Figures for the HTML report, rendered to inline SVG strings.

Each public function draws one plot with :class:`matplotlib.figure.Figure` directly (no
``pyplot``), so it never opens a window and needs no GUI backend. Text is kept as SVG text
(``svg.fonttype: none``), which keeps the markup small and lets the browser pick the font.

A function returns ``None`` when it has nothing to draw, so the caller can say so in words
instead of showing an empty chart.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

from matplotlib import colormaps, rc_context
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from distillwatch.exceptions import DistillwatchError, DistillwatchInputError

logger = logging.getLogger(__name__)

# rc_context() swaps the process-wide rcParams; two threads rendering at once would see each
# other's settings, so rendering is serialised.
_RENDER_LOCK = threading.Lock()

# Campaign ids and capability names are data, not markup: "$" must never start mathtext.
_RC = {"svg.fonttype": "none", "text.parse_math": False, "font.size": 9}

# Drops Matplotlib's default Dublin Core block: its dc:type carries an http:// resource URI
# and its Date makes every render differ.
_NO_METADATA = {"Type": None, "Creator": None, "Format": None, "Date": None}

_WIDTH_IN = 8.0

# Matplotlib numbers its groups per figure ("figure_1", "axes_1"), so several inline SVGs on
# one page would repeat ids. Each figure's ids and internal references get a prefix:
#   id="axes_1"               -> id="daily_exchanges-axes_1"
#   clip-path="url(#p0a1b2)"  -> clip-path="url(#daily_exchanges-p0a1b2)"
#   xlink:href="#m9f8e7"      -> xlink:href="#daily_exchanges-m9f8e7"
# but not xmlns="http://www.w3.org/2000/svg" (no "#" after the quote).
_ID_REF = re.compile(r'(\bid="|url\(#|href="#)')


def daily_exchanges_svg(daily: Mapping[str, Sequence[Mapping]]) -> str | None:
    """Draw daily exchanges per campaign, one line each.

    Args:
        daily: Campaign id -> rows ``{"day": "YYYY-MM-DD", "exchanges": int, ...}``. Rows
            without ``exchanges`` are skipped; order of the mapping sets the line colours.

    Returns:
        The ``<svg>`` element as text, or ``None`` if no campaign has any daily exchanges.

    Raises:
        DistillwatchInputError: If a ``day`` is not an ISO date.
    """
    series = {cid: _series(cid, rows, "exchanges") for cid, rows in daily.items()}
    return _line_plot(series, ylabel="exchanges per day", name="daily_exchanges")


def accounts_joining_svg(daily: Mapping[str, Sequence[Mapping]]) -> str | None:
    """Draw the cumulative count of new accounts per campaign over time.

    Args:
        daily: Campaign id -> rows ``{"day": "YYYY-MM-DD", "new_accounts": int, ...}``. Rows
            without ``new_accounts`` are skipped.

    Returns:
        The ``<svg>`` element as text, or ``None`` if no campaign has any new-account rows.

    Raises:
        DistillwatchInputError: If a ``day`` is not an ISO date.
    """
    series = {}
    for cid, rows in daily.items():
        points = _series(cid, rows, "new_accounts")
        total = 0.0
        cumulative = []
        for day, value in points:
            total += value
            cumulative.append((day, total))
        series[cid] = cumulative
    return _line_plot(series, ylabel="accounts joined (cumulative)", name="accounts_joining")


def capability_mix_svg(capabilities: Mapping[str, Mapping[str, float]]) -> str | None:
    """Draw each campaign's capability shares as one horizontal stacked bar.

    Args:
        capabilities: Campaign id -> ``{capability: share}`` (shares sum to 1).

    Returns:
        The ``<svg>`` element as text, or ``None`` if no campaign has capability shares.
    """
    rows = {cid: dict(shares) for cid, shares in capabilities.items() if shares}
    if not rows:
        return None
    overall: dict[str, float] = {}
    for shares in rows.values():
        for name, share in shares.items():
            overall[name] = overall.get(name, 0.0) + float(share)
    # Largest capability first, so the biggest segments line up on the left.
    names = sorted(overall, key=lambda n: (-overall[n], n))
    labels = list(rows)
    with _RENDER_LOCK, rc_context(_RC | {"svg.hashsalt": "capability_mix"}):
        fig = Figure(figsize=(_WIDTH_IN, 1.2 + 0.32 * len(labels)), layout="constrained")
        ax = fig.add_subplot()
        left = [0.0] * len(labels)
        colours = _colours(len(names))
        for name, colour in zip(names, colours, strict=True):
            widths = [float(rows[cid].get(name, 0.0)) for cid in labels]
            ax.barh(labels, widths, left=left, color=colour, label=name.replace("_", " "))
            left = [a + b for a, b in zip(left, widths, strict=True)]
        ax.set_xlim(0, max(1.0, *left))
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:.0%}")
        ax.set_xlabel("share of the campaign's exchanges")
        fig.legend(loc="outside upper center", ncols=min(len(names), 6), frameon=False,
                   fontsize=8)
        return _to_svg(fig, "capability_mix")


def _series(cid: str, rows: Sequence[Mapping], key: str) -> list[tuple[date, float]]:
    points = []
    for index, row in enumerate(rows):
        if row.get(key) is None:
            continue
        try:
            day = date.fromisoformat(str(row["day"])[:10])
        except (KeyError, ValueError) as exc:
            raise DistillwatchInputError(
                f"daily row has no ISO 'day' (got {row.get('day')!r}); expected 'YYYY-MM-DD'",
                source=f"details.campaigns[{cid!r}].daily[{index}]",
            ) from exc
        points.append((day, float(row[key])))
    points.sort()
    return points


def _line_plot(series: Mapping[str, list[tuple[date, float]]], *, ylabel: str,
               name: str) -> str | None:
    if not any(series.values()):
        return None
    with _RENDER_LOCK, rc_context(_RC | {"svg.hashsalt": name}):
        fig = Figure(figsize=(_WIDTH_IN, 3.2), layout="constrained")
        ax = fig.add_subplot()
        # Colour by position in the mapping, so a campaign keeps its colour across plots.
        for (cid, points), colour in zip(series.items(), _colours(len(series)), strict=True):
            if not points:
                continue
            days, values = zip(*points, strict=True)
            ax.plot(days, values, color=colour, linewidth=1.4, label=cid,
                    marker="o" if len(points) == 1 else None, markersize=3)
        days = [day for points in series.values() for day, _ in points]
        if min(days) == max(days):
            # One day of data has no range for the date locator to divide.
            ax.set_xlim(min(days) - timedelta(days=1), max(days) + timedelta(days=1))
        locator = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.yaxis.set_major_formatter(lambda y, _pos: f"{y:,.0f}")
        ax.set_ylim(bottom=0)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        fig.legend(loc="outside upper center", fontsize=8, frameon=False,
                   ncols=min(len(series), 6))
        return _to_svg(fig, name)


def _colours(count: int) -> list:
    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def _to_svg(fig: Figure, prefix: str) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    text = buffer.getvalue()
    # Inline SVG in HTML takes neither the XML prolog nor the DOCTYPE (whose DTD is a URL).
    start = text.find("<svg")
    if start < 0:
        raise DistillwatchError("Matplotlib produced no <svg> element; check its SVG backend",
                                source="report.plots")
    svg = _ID_REF.sub(lambda m: f"{m.group(1)}{prefix}-", text[start:])
    logger.debug("rendered %s: %d bytes of SVG", prefix, len(svg))
    return svg
