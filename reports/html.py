"""Render a run as one self-contained HTML file (no network): a chart of the card (per row the
published number, ours with its 95% CI and the verdict), the card table, per-row details with an
SVG chart of per-category scores, and a browser of every sample (reports/html_browser.py).

Question text (and the model's text, which often quotes it) is left out of the page, data
included, for tasks whose rows must not appear in plain text (GPQA asks for this) unless the
caller asks to show it; `redact=True` leaves it out for every task. Works from the same records as
the Markdown report plus the sample records and prompts; it computes nothing new. Control
characters in model output are shown as visible escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals.records import Results, RowResult, SampleRecord
from reports.html_browser import BROWSER_STYLE, browser_data, browser_section
from reports.html_charts import card_chart, category_chart
from reports.html_text import esc
from reports.markdown import TABLE_NOTE, card_table, pct

__all__ = ["MAX_TEXT", "REDACTED", "STYLE", "category_chart", "render_html"]

MAX_TEXT = 1500
REDACTED = "[question text redacted: this benchmark's authors ask that its rows stay out of plain text]"
HIDDEN_NOTE = REDACTED[:-1] + "; the model's answer and reasoning, which often quote it, are left out too]"

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right}
pre{white-space:pre-wrap;margin:0;font-size:12px;max-height:18em;overflow:auto}
.correct{color:#1a7f37}.wrong{color:#b42318}.unparsed,.truncated,.error,.timeout{color:#9a6700}
svg.chart{max-width:100%;height:auto;display:block;margin:0.5em 0}
.note{color:#555;font-size:13px}
nav a{margin-right:1em}
"""

_e = esc  # the escaping helper other report pages import


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
    parts = [f"<h1>{esc(header.title or 'Evaluation report')}</h1>", "<ul class='header'>"]
    parts += [
        f"<li><b>{esc(key)}</b>: {esc(getattr(header, key))}</li>"
        for key in ("model", "backend", "card", "started", "harness")
        if getattr(header, key)
    ]
    parts += [
        "</ul>",
        "<nav><a href='#card-table'>Card table</a><a href='#rows'>Rows</a><a href='#samples'>Samples</a></nav>",
        card_chart(results.rows),
        "<h2 id='card-table'>Card table</h2>",
        _markdown_table(card_table(results.rows)),
        f"<p class='note'>{esc(TABLE_NOTE)}</p>",
        "<div id='rows'>",
    ]
    for row in results.scored:
        parts += [f"<h2>{esc(row.label)}</h2>", _summary(row), category_chart(row.per_category)]
    parts.append("</div>")
    parts.append(browser_section(browser_data(results, samples, prompts, redact, HIDDEN_NOTE)))
    body = "\n".join(parts)
    title = esc(header.title or "Evaluation report")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<link rel='icon' href='data:,'><meta name='viewport' content='width=device-width'>"
        f"<style>{STYLE}{BROWSER_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _markdown_table(lines: Sequence[str]) -> str:
    head, _, *body = lines
    cells = [c.strip() for c in head.strip("|").split("|")]
    out = ["<table class='card'><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cells) + "</tr>"]
    for line in body:
        values = [c.strip() for c in line.strip("|").split("|")]
        out.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in values) + "</tr>")
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
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"
