"""Render a run as one self-contained HTML file: the card table, per-row details with an SVG chart
of per-category scores (95% CI whiskers), and the failed or wrong samples to inspect.

Question text (and the model's answer, which often quotes it) is redacted for tasks whose rows must not appear in plain text (GPQA asks for this)
unless the caller asks to show it; `redact=True` redacts every task. Works from the same JSON as
the Markdown report plus samples.jsonl records; it computes nothing new.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

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
    header: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    samples: Sequence[dict[str, Any]],
    *,
    redact: bool | None = None,
) -> str:
    """`redact`: None = per task (redact where the row says public_text is false), True = always,
    False = never."""
    parts = [f"<h1>{_e(header.get('title', 'Evaluation report'))}</h1>", "<ul>"]
    parts += [f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in header.items() if k != "title" and v]
    parts += ["</ul>", "<h2>Card table</h2>", _markdown_table(card_table(rows))]
    for row in rows:
        if "unavailable" in row:
            continue
        hide = redact if redact is not None else not row.get("public_text", True)
        mine = [s for s in samples if s.get("task") == row["task"] and s.get("variant") == row["variant"]]
        parts += [f"<h2>{_e(row['label'])}</h2>", _summary(row), category_chart(row.get("per_category", {}))]
        parts.append(_samples_table(mine, hide))
    body = "\n".join(parts)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(header.get('title', ''))}</title>" \
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"  # fmt: skip


def _e(value: Any) -> str:
    return html.escape(str(value))


def _markdown_table(lines: Sequence[str]) -> str:
    head, _, *body = lines
    cells = [c.strip() for c in head.strip("|").split("|")]
    out = ["<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cells) + "</tr>"]
    for line in body:
        values = [c.strip() for c in line.strip("|").split("|")]
        out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in values) + "</tr>")
    return "".join(out) + "</table>"


def _summary(row: dict[str, Any]) -> str:
    items = [
        f"{row['metric']}: {pct(row['value'], 2)} ± {pct(row['stderr'], 2)} (95% CI {pct(row['ci95'][0])}–"
        f"{pct(row['ci95'][1])}), {row['n_scores']} completions over {row['n_samples']} samples",
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in row["outcomes"].items()),
    ]
    for name, extra in row.get("extra_metrics", {}).items():
        items.append(
            f"{name}: {pct(extra['value'], 2)} (95% CI {pct(extra['ci95'][0])}–{pct(extra['ci95'][1])})"
        )
    if row.get("flags"):
        items.append("flagged: " + ", ".join(f"{k} {v}" for k, v in row["flags"].items()))
    return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def category_chart(categories: dict[str, dict[str, Any]], width: int = 640) -> str:
    """Horizontal bars (score per category) with 95% CI whiskers, as inline SVG."""
    if len(categories) < 2:
        return ""
    bar_h, label_w, gap = 18, 170, 6
    plot_w = width - label_w - 60
    height = len(categories) * (bar_h + gap) + 10
    shapes = []
    for i, (name, cat) in enumerate(categories.items()):
        y = i * (bar_h + gap) + 5
        value, (low, high) = cat["value"], cat["ci95"]
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


def _samples_table(samples: Sequence[dict[str, Any]], hide_question: bool) -> str:
    shown = [s for s in samples if s.get("outcome") != "correct"][:MAX_SAMPLES_PER_ROW]
    if not shown:
        return "<p>No failed or wrong samples.</p>"
    head = (
        f"<p>{len(shown)} of {sum(s.get('outcome') != 'correct' for s in samples)} samples that were not "
        "correct (all samples are in samples.jsonl).</p><table><tr><th>id</th><th>repeat</th><th>outcome</th>"
        "<th>extracted / target</th><th>prompt</th><th>final answer</th></tr>"
    )
    rows = []
    for sample in shown:
        # Model answers often quote the question or its options, so they are hidden with it.
        prompt = REDACTED if hide_question else _prompt_text(sample.get("prompt"))
        answer = "[redacted with the question]" if hide_question else sample.get("answer") or ""
        rows.append(
            f"<tr><td>{_e(sample['id'])}</td><td class='num'>{sample['repeat']}</td>"
            f"<td class='{_e(sample['outcome'])}'>{_e(sample['outcome'])}</td>"
            f"<td>{_e(sample.get('extracted'))} / {_e(sample.get('target'))}</td>"
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
