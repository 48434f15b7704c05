"""Render a comparison of runs (evals.comparison_records.Comparison) as Markdown and as HTML.

The Markdown fits a pull-request comment: one table per row (each run's value and CI, the paired
difference to the reference with its CI, the paired test's p-value, flips both ways, agreement,
change in unparsed and truncated rates) and a cost table. The HTML page is self-contained (no
network): the same tables, an inline-SVG forest plot of the differences with their CIs, and the
flipped samples side by side (prompt, both outputs, both verdicts), with question text and outputs
redacted for rows whose benchmark asks for it unless the caller says otherwise. Computes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from evals.comparison_records import RIGHT_TO_WRONG, Comparison, Flip, PairedRow, RunCost
from reports.html import MAX_TEXT, REDACTED, STYLE, _e

MAX_IDS = 10  # flipped sample ids listed per direction in Markdown
MAX_FLIPS = 200  # flipped samples shown per row and run in HTML
HIDDEN_OUTPUT = "[redacted with the question]"


def _points(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{100 * value:+.{digits}f}" if sign else f"{100 * value:.{digits}f}"


def _p(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.2g}" if value < 0.01 else f"{value:.2f}"


def _bytes(value: int | None) -> str:
    return "—" if value is None else f"{value / 1e9:.2f} GB"


def _seconds(value: float) -> str:
    return "—" if not value else f"{value:.1f} s" if value >= 1 else f"{value:.2f} s"


def row_table(comparison: Comparison, label: str) -> list[str]:
    """Markdown table of one row: the reference first, then each candidate against it."""
    pairs = comparison.pairs_of(label)
    out = [
        "| Run | Value | 95% CI | n | Diff vs reference | Paired 95% CI | p | Right→wrong | Wrong→right "
        "| Agreement | Unparsed Δ | Truncated Δ |",
        "|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    if not pairs:
        return out
    ref = pairs[0].reference.summary
    out.append(
        f"| {pairs[0].reference_run} (reference) | {_points(ref.value)} | {_points(ref.ci95[0])}–"
        f"{_points(ref.ci95[1])} | {ref.n_samples} | — | — | — | — | — | — | — | — |"
    )
    for pair in pairs:
        s = pair.candidate.summary
        out.append(
            f"| {pair.candidate_run}{' ⚠' if pair.protocol_differences else ''} | {_points(s.value)} "
            f"| {_points(s.ci95[0])}–{_points(s.ci95[1])} | {s.n_samples} "
            f"| {_points(pair.diff, sign=True)} | {_points(pair.diff_low, sign=True)} to "
            f"{_points(pair.diff_high, sign=True)} | {_p(pair.p_value)} | {len(pair.right_to_wrong)} "
            f"| {len(pair.wrong_to_right)} | {_points(pair.agreement)}% | {_points(pair.unparsed_change, sign=True)} "
            f"| {_points(pair.truncated_change, sign=True)} |"
        )
    return out


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(f"`{i}`" for i in ids[:MAX_IDS])
    return shown + (f" and {len(ids) - MAX_IDS} more" if len(ids) > MAX_IDS else "")


def _row_notes(pairs: Sequence[PairedRow]) -> list[str]:
    notes = []
    for pair in pairs:
        note = (
            f"- {pair.candidate_run}: {len(pair.sample_ids)} samples in common ({pair.n_completions} "
            f"completions); over them {_points(pair.reference_matched)} → {_points(pair.candidate_matched)}; "
            f"test: {pair.test}"
        )
        if pair.right_to_wrong:
            note += f"; right→wrong: {_ids(pair.right_to_wrong)}"
        if pair.wrong_to_right:
            note += f"; wrong→right: {_ids(pair.wrong_to_right)}"
        notes.append(note)
        if pair.protocol_differences:
            notes.append(f"  - ⚠ protocol differs: {'; '.join(pair.protocol_differences)}")
    return notes


COST_HEAD = (
    "| Run | Backend | Model | Quantization | Size on disk | Generated tokens/s | Generation time | Wall time "
    "| Peak RSS | Server peak RSS | Peak GPU | Points lost per GB saved |",
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
)


def cost_table(costs: Sequence[RunCost]) -> list[str]:
    out = list(COST_HEAD)
    for i, cost in enumerate(costs):
        rate = "—" if cost.tokens_per_second is None else f"{cost.tokens_per_second:.1f}"
        per_gb = ", ".join(
            f"{label}: {'—' if v is None else f'{v:.2f}'}"
            for label, v in cost.points_lost_per_gb_saved.items()
        )
        out.append(
            f"| {cost.run}{' (reference)' if i == 0 else ''} | {_cell(cost.backend)} | {_cell(cost.model)} "
            f"| {_cell(cost.quantization or '—')} | {_bytes(cost.size_bytes)} | {rate} "
            f"| {_seconds(cost.generation_seconds)} | {_seconds(cost.wall_seconds)} | {_bytes(cost.peak_rss_bytes)} "
            f"| {_bytes(cost.server_peak_rss_bytes)} | {_bytes(cost.peak_gpu_bytes)} | {per_gb or '—'} |"
        )
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _labels(comparison: Comparison) -> list[str]:
    return list(dict.fromkeys(row.label for row in comparison.rows))


def render_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown: a table per row, notes with flipped ids, unmatched rows, costs."""
    lines = [f"## Comparison against `{comparison.reference}`", ""]
    lines.append(
        "Values in points; differences are run minus reference over the samples both ran, with a paired "
        "bootstrap 95% CI; p from McNemar's exact test (0/1 outcomes) or a paired sign-flip test."
    )
    if comparison.protocol_diff_allowed and any(r.protocol_differences for r in comparison.rows):
        lines += ["", "**⚠ Compared despite protocol differences (--allow-protocol-diff): see the notes.**"]
    for label in _labels(comparison):
        pairs = comparison.pairs_of(label)
        lines += [
            "",
            f"### {label} ({pairs[0].metric})",
            "",
            *row_table(comparison, label),
            "",
            *_row_notes(pairs),
        ]
    if comparison.unmatched:
        lines += ["", "### Rows not compared", ""]
        lines += [f"- {u.label} ({u.task}): {u.reason}" for u in comparison.unmatched]
    lines += ["", "### Cost", "", *cost_table(comparison.costs)]
    return "\n".join(lines) + "\n"


# --- HTML -----------------------------------------------------------------------------------------


def _html_table(lines: Sequence[str]) -> str:
    head, _, *body = lines
    cells = [c.strip() for c in head.strip().strip("|").split(" | ")]
    out = ["<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cells) + "</tr>"]
    for line in body:
        values = [c.strip() for c in line.strip().strip("|").split(" | ")]
        out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in values) + "</tr>")
    return "".join(out) + "</table>"


def forest_plot(rows: Sequence[PairedRow], width: int = 760) -> str:
    """Inline SVG: one line per row and candidate run, the paired difference (points) with its CI
    whiskers, and the zero line."""
    if not rows:
        return ""
    label_w, line_h, top = 260, 24, 24
    plot_w = width - label_w - 70
    finite = [abs(v) for r in rows for v in (r.diff_low, r.diff_high, r.diff) if not math.isnan(v)]
    span = max([*finite, 0.01]) * 1.1

    def x(value: float) -> float:
        return label_w + plot_w * (value + span) / (2 * span)

    height = top + len(rows) * line_h + 10
    shapes = [
        f"<line x1='{x(0):.1f}' x2='{x(0):.1f}' y1='{top - 6}' y2='{height - 6}' stroke='#888' "
        "stroke-dasharray='4 3'/>",
        f"<text x='{x(-span):.1f}' y='14' font-size='11'>{_points(-span, sign=True)}</text>",
        f"<text x='{x(0):.1f}' y='14' font-size='11' text-anchor='middle'>0 (reference)</text>",
        f"<text x='{x(span):.1f}' y='14' font-size='11' text-anchor='end'>{_points(span, sign=True)}</text>",
    ]
    for i, row in enumerate(rows):
        y = top + i * line_h + line_h / 2
        name = f"{row.label} · {row.candidate_run}"
        shapes.append(
            f"<text x='{label_w - 8}' y='{y + 4:.1f}' text-anchor='end' font-size='12'>{_e(name)}</text>"
        )
        if math.isnan(row.diff):
            continue
        colour = "#b42318" if row.diff_high < 0 else "#1a7f37" if row.diff_low > 0 else "#444"
        shapes.append(
            f"<line x1='{x(row.diff_low):.1f}' x2='{x(row.diff_high):.1f}' y1='{y:.1f}' y2='{y:.1f}' "
            f"stroke='{colour}' stroke-width='2'/>"
        )
        shapes.append(f"<circle cx='{x(row.diff):.1f}' cy='{y:.1f}' r='4' fill='{colour}'/>")
        text = f"{_points(row.diff, sign=True)} [{_points(row.diff_low, sign=True)}, {_points(row.diff_high, sign=True)}]"
        shapes.append(f"<text x='{label_w + plot_w + 6}' y='{y + 4:.1f}' font-size='11'>{_e(text)}</text>")
    return (
        f"<svg class='forest' width='{width}' height='{height}' role='img' "
        f"aria-label='paired differences against the reference with 95% CIs'>{''.join(shapes)}</svg>"
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"


def _flip_rows(pair: PairedRow, hide: bool) -> str:
    flips: Sequence[Flip] = pair.flips[:MAX_FLIPS]
    if not flips:
        return ""
    head = (
        f"<h3>{_e(pair.label)}: {_e(pair.candidate_run)} against {_e(pair.reference_run)} — "
        f"{len(flips)} of {len(pair.flips)} flipped samples</h3>"
        "<table><tr><th>id</th><th>repeat</th><th>flip</th><th>target</th><th>prompt</th>"
        f"<th>{_e(pair.reference_run)} (reference)</th><th>{_e(pair.candidate_run)}</th></tr>"
    )
    rows = []
    for flip in flips:
        prompt = REDACTED if hide else flip.prompt
        sides = []
        for side in (flip.reference, flip.candidate):
            output = HIDDEN_OUTPUT if hide else side.output
            sides.append(
                f"<td><span class='{_e(side.outcome)}'>{_e(side.outcome)}</span> "
                f"(extracted: {_e(side.extracted)})<pre>{_e(_clip(output))}</pre></td>"
            )
        kind = "wrong" if flip.direction == RIGHT_TO_WRONG else "correct"
        rows.append(
            f"<tr><td>{_e(flip.id)}</td><td class='num'>{flip.repeat}</td><td class='{kind}'>{_e(flip.direction)}"
            f"</td><td>{_e(flip.target)}</td><td><pre>{_e(_clip(prompt))}</pre></td>{''.join(sides)}</tr>"
        )
    return head + "".join(rows) + "</table>"


def render_comparison_html(comparison: Comparison, *, redact: bool | None = None) -> str:
    """The whole page. `redact`: None = per row (rows whose text must stay private are redacted),
    True = always, False = never."""
    title = f"Comparison against {comparison.reference}"
    parts = [f"<h1>{_e(title)}</h1>", "<ul>"]
    for i, (name, path) in enumerate(zip(comparison.runs, comparison.paths, strict=True)):
        parts.append(f"<li><b>{_e(name)}</b>{' (reference)' if i == 0 else ''}: {_e(path)}</li>")
    parts.append("</ul>")
    if comparison.protocol_diff_allowed and any(r.protocol_differences for r in comparison.rows):
        parts.append(
            "<p class='truncated'><b>Compared despite protocol differences (--allow-protocol-diff).</b></p>"
        )
    parts += ["<h2>Differences against the reference</h2>", forest_plot(comparison.rows)]
    for label in _labels(comparison):
        pairs = comparison.pairs_of(label)
        notes = "".join(f"<li>{_e(n.lstrip('- '))}</li>" for n in _row_notes(pairs))
        parts += [f"<h2>{_e(label)} ({_e(pairs[0].metric)})</h2>", _html_table(row_table(comparison, label))]
        parts.append(f"<ul>{notes}</ul>")
    if comparison.unmatched:
        items = "".join(
            f"<li>{_e(u.label)} ({_e(u.task)}): {_e(u.reason)}</li>" for u in comparison.unmatched
        )
        parts += ["<h2>Rows not compared</h2>", f"<ul>{items}</ul>"]
    parts += ["<h2>Cost</h2>", _html_table(cost_table(comparison.costs)), "<h2>Flipped samples</h2>"]
    flipped = [
        _flip_rows(pair, redact if redact is not None else not pair.public_text) for pair in comparison.rows
    ]
    parts.append("".join(flipped) or "<p>No sample flipped.</p>")
    body = "\n".join(parts)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
