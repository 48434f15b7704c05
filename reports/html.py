"""Render a run as one self-contained HTML file: the card table, per-row details with an SVG chart
of per-category scores (95% CI whiskers), and the failed or wrong samples to inspect.

Question text (and the model's answer, which often quotes it) is redacted for tasks whose rows must not appear in plain text (GPQA asks for this)
unless the caller asks to show it; `redact=True` redacts every task. Works from the same JSON as
the Markdown report plus the sample records and prompts; it computes nothing new. Control
characters in model output are shown as visible escapes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from evals.records import MetricValue, Results, RowResult, SampleRecord
from reports.markdown import card_table, pct

MAX_SAMPLES_PER_ROW = 300
MAX_TEXT = 1500
REDACTED = "[question text redacted: this benchmark's authors ask that its rows stay out of plain text]"

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right}
pre{white-space:pre-wrap;margin:0;font-size:12px;max-height:18em;overflow:auto}
.correct{color:#1a7f37}.wrong{color:#b42318}.unparsed,.truncated,.error,.timeout{color:#9a6700}
"""


def render_html(
    results: Results,
    samples: Sequence[SampleRecord],
    prompts: dict[str, Any],
    *,
    redact: bool | None = None,
) -> str:
    """`redact`: None = per task (redact rows whose public_text is false), True = always,
    False = never. `prompts` maps prompt ids to text (evals.prompt_store.read_prompts)."""
    header = results.header
    parts = [f"<h1>{_e(header.title or 'Evaluation report')}</h1>", "<ul>"]
    parts += [
        f"<li><b>{_e(key)}</b>: {_e(getattr(header, key))}</li>"
        for key in ("model", "backend", "card", "started", "harness")
        if getattr(header, key)
    ]
    parts += ["</ul>", "<h2>Card table</h2>", _markdown_table(card_table(results.rows))]
    for row in results.scored:
        hide = redact if redact is not None else not row.public_text
        mine = [s for s in samples if s.row == row.label]
        parts += [f"<h2>{_e(row.label)}</h2>", _summary(row), category_chart(row.per_category)]
        parts.append(_samples_table(mine, prompts, hide))
    body = "\n".join(parts)
    title = _e(header.title)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>" \
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"  # fmt: skip


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _e(value: Any) -> str:
    """HTML-escaped text with control characters (NUL, ESC, ...) shown as visible escapes."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    return html.escape(text)


def _markdown_table(lines: Sequence[str]) -> str:
    head, _, *body = lines
    cells = [c.strip() for c in head.strip("|").split("|")]
    out = ["<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cells) + "</tr>"]
    for line in body:
        values = [c.strip() for c in line.strip("|").split("|")]
        out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in values) + "</tr>")
    return "".join(out) + "</table>"


def _summary(row: RowResult) -> str:
    summary = row.summary
    low, high = summary.ci95
    items = [
        f"{row.metric}: {pct(summary.value, 2)} ± {pct(summary.stderr, 2)} (95% CI {pct(low)}–{pct(high)}), "
        f"{summary.n_scores} completions over {summary.n_samples} samples",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in summary.outcomes.items()),
    ]
    for name, extra in row.extra_metrics.items():
        items.append(f"{name}: {pct(extra.value, 2)} (95% CI {pct(extra.ci95[0])}–{pct(extra.ci95[1])})")
    if summary.flags:
        items.append("flagged: " + ", ".join(f"{k} {v}" for k, v in summary.flags.items()))
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


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
            f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end' font-size='12'>{_e(name)}</text>"
        )
        shapes.append(
            f"<rect x='{label_w}' y='{y}' width='{plot_w * value:.1f}' height='{bar_h}' fill='#5b8def'/>"
        )
        shapes.append(
            f"<line x1='{label_w + plot_w * low:.1f}' x2='{label_w + plot_w * high:.1f}' "
            f"y1='{y + bar_h / 2}' y2='{y + bar_h / 2}' stroke='#222' stroke-width='1.5'/>"
        )
        shapes.append(f"<text x='{label_w + plot_w + 8}' y='{y + 13}' font-size='12'>{pct(value)}</text>")
    return f"<svg width='{width}' height='{height}' role='img'>{''.join(shapes)}</svg>"


def _samples_table(samples: Sequence[SampleRecord], prompts: dict[str, Any], hide_question: bool) -> str:
    not_correct = [s for s in samples if s.outcome != "correct"]
    shown = not_correct[:MAX_SAMPLES_PER_ROW]
    if not shown:
        return "<p>No failed or wrong samples.</p>"
    head = (
        f"<p>{len(shown)} of {len(not_correct)} samples that were not "
        "correct (all samples are in samples.jsonl).</p><table><tr><th>id</th><th>repeat</th><th>outcome</th>"
        "<th>extracted / target</th><th>prompt</th><th>final answer</th></tr>"
    )
    rows = []
    for sample in shown:
        # Model answers often quote the question or its options, so they are hidden with it.
        prompt = REDACTED if hide_question else _prompt_text(prompts.get(sample.prompt_id))
        answer = "[redacted with the question]" if hide_question else sample.answer or ""
        rows.append(
            f"<tr><td>{_e(sample.id)}</td><td class='num'>{sample.repeat}</td>"
            f"<td class='{_e(sample.outcome)}'>{_e(sample.outcome)}</td>"
            f"<td>{_e(sample.extracted)} / {_e(sample.target)}</td>"
            f"<td><pre>{_e(_clip(prompt))}</pre></td><td><pre>{_e(_clip(answer))}</pre></td></tr>"
        )
    return head + "".join(rows) + "</table>"


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    turns = prompt or []
    return "\n\n".join(f"[{t['role']}] " + "".join(t["content"]) for t in turns)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " …"
