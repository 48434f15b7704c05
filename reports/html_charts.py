"""Inline SVG charts for report.html: the card chart (per card row, the published number, ours with
its 95% CI whisker, and the verdict) and per-category bars with CI whiskers.

Values come from the typed records as they are (fractions for ours, points for published);
nothing is computed beyond placing them on an axis. No scripts, no network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from evals.records import MetricValue, Row, RowResult
from reports.html_text import esc
from reports.markdown import pct, verdict_text

VERDICT_COLOURS = {
    "reproduced": "#1a7f37",
    "above": "#1f5fbf",
    "below": "#b42318",
    "unclear": "#9a6700",
}
LABEL_CHARS = 36  # longer row labels are cut (the full label is the tooltip and in the table)
OURS = "#1f5fbf"
PUBLISHED = "#d9480f"


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _domain(rows: Sequence[Row]) -> tuple[float, float]:
    """The axis in points: every value, CI bound and published number, widened to tens."""
    points: list[float] = []
    for row in rows:
        if _finite(row.published):
            points.append(float(row.published or 0.0))
        if isinstance(row, RowResult):
            summary = row.summary
            points += [100 * v for v in (summary.value, *summary.ci95) if _finite(v)]
    if not points:
        return 0.0, 100.0
    low = max(0.0, math.floor(min(points) / 10) * 10)
    high = min(100.0, math.ceil(max(points) / 10) * 10)
    if high - low < 20:  # keep a readable span around close values
        low, high = max(0.0, low - 10), min(100.0, high + 10)
    return low, max(high, low + 10)


def card_chart(rows: Sequence[Row], width: int = 1000) -> str:
    """One line per card row: published number (diamond), ours (dot) with its 95% CI, the verdict."""
    if not rows:
        return ""
    longest = max(len(_short(row.label, LABEL_CHARS)) for row in rows)
    label_w = min(max(7 * longest + 10, 120), 7 * LABEL_CHARS + 10)  # about 7 px a character at 13 px
    row_h, top, verdict_w = 44, 34, 300
    x0 = label_w + 10
    plot_w = width - x0 - verdict_w
    low, high = _domain(rows)

    def x(points: float) -> float:
        return x0 + plot_w * (min(max(points, low), high) - low) / (high - low)

    height = top + len(rows) * row_h + 26
    shapes = [
        f"<circle cx='{x0 + 6}' cy='12' r='5' fill='{OURS}'/>"
        f"<text x='{x0 + 16}' y='16' font-size='12'>ours, with its 95% CI</text>"
        f"<path d='M{x0 + 186} 5 l7 7 l-7 7 l-7 -7 z' fill='none' stroke='{PUBLISHED}' stroke-width='2'/>"
        f"<text x='{x0 + 198}' y='16' font-size='12'>published</text>"
        f"<text x='{x0 + plot_w + 20}' y='16' font-size='12' font-weight='bold'>verdict</text>"
    ]
    step = 5 if high - low <= 30 else 10
    tick = low
    while tick <= high + 1e-9:
        shapes.append(
            f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='{top - 6}' y2='{top + len(rows) * row_h}' "
            f"stroke='#e4e4e4'/><text x='{x(tick):.1f}' y='{height - 8}' font-size='11' "
            f"text-anchor='middle' fill='#555'>{tick:g}</text>"
        )
        tick += step
    for i, row in enumerate(rows):
        y = top + i * row_h + row_h / 2
        shapes.append(
            f"<text x='{label_w}' y='{y + 4:.1f}' text-anchor='end' font-size='13'>"
            f"<title>{esc(row.label)}</title>{esc(_short(row.label, LABEL_CHARS))}</text>"
        )
        shapes += _row_marks(row, x, y, x0 + plot_w + 20)
    return (
        f"<svg id='card-chart' class='chart' viewBox='0 0 {width} {height}' width='{width}' "
        f"height='{height}' role='img' aria-label='Published numbers and ours with 95% CIs'>"
        + "".join(shapes)
        + "</svg>"
    )


def _row_marks(row: Row, place: Callable[[float], float], y: float, text_x: float) -> list[str]:
    shapes = []
    detail = ""
    if _finite(row.published):  # drawn first, hollow: ours stays visible on top of it
        px = place(float(row.published or 0.0))
        shapes.append(
            f"<path d='M{px:.1f} {y - 8:.1f} l8 8 l-8 8 l-8 -8 z' fill='none' stroke='{PUBLISHED}' "
            f"stroke-width='2'><title>published {row.published:g}</title></path>"
        )
        detail = f" · published {row.published:g}"
    if isinstance(row, RowResult):
        summary = row.summary
        low, high = summary.ci95
        if _finite(low) and _finite(high):
            a, b = place(100 * low), place(100 * high)
            shapes.append(
                f"<path d='M{a:.1f} {y:.1f} H{b:.1f} M{a:.1f} {y - 6:.1f} v12 M{b:.1f} {y - 6:.1f} v12' "
                f"stroke='{OURS}' stroke-width='2' fill='none'/>"
            )
        if _finite(summary.value):
            shapes.append(
                f"<circle cx='{place(100 * summary.value):.1f}' cy='{y:.1f}' r='5' fill='{OURS}'>"
                f"<title>ours {pct(summary.value)} (95% CI {pct(low)}–{pct(high)})</title></circle>"
            )
        colour = VERDICT_COLOURS.get(row.verdict.label, "#555")
        verdict = verdict_text(row.verdict)
        detail = f"ours {pct(summary.value)} ({pct(low)}–{pct(high)}), n={summary.n_samples}" + detail
    else:
        colour, verdict, detail = "#555", "not run", row.unavailable + detail
    shapes.append(
        f"<text x='{text_x}' y='{y - 2:.1f}' font-size='13' font-weight='bold' fill='{colour}' "
        f"class='verdict'>{esc(_short(verdict, 48))}</text>"
        f"<text x='{text_x}' y='{y + 13:.1f}' font-size='11' fill='#555'>{esc(_short(detail, 60))}</text>"
    )
    return shapes


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def category_chart(categories: dict[str, MetricValue], width: int = 640) -> str:
    """Horizontal bars (score per category) with 95% CI whiskers, as inline SVG."""
    if len(categories) < 2:
        return ""
    bar_h, label_w, gap = 18, 170, 6
    plot_w = width - label_w - 60
    height = len(categories) * (bar_h + gap) + 10
    shapes = []
    for i, (name, cat) in enumerate(categories.items()):
        y = i * (bar_h + gap) + 5
        value, (low, high) = cat.value, cat.ci95
        shapes.append(
            f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end' font-size='12'>{esc(name)}</text>"
        )
        if _finite(value):
            shapes.append(
                f"<rect x='{label_w}' y='{y}' width='{plot_w * value:.1f}' height='{bar_h}' fill='#5b8def'/>"
            )
        if _finite(low) and _finite(high):
            shapes.append(
                f"<line x1='{label_w + plot_w * low:.1f}' x2='{label_w + plot_w * high:.1f}' "
                f"y1='{y + bar_h / 2}' y2='{y + bar_h / 2}' stroke='#222' stroke-width='1.5'/>"
            )
        shapes.append(f"<text x='{label_w + plot_w + 8}' y='{y + 13}' font-size='12'>{pct(value)}</text>")
    return f"<svg class='chart category-chart' width='{width}' height='{height}' role='img'>{''.join(shapes)}</svg>"
