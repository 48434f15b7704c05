"""Render a run's results as Markdown: the card table first, then each row's details.

Works from the JSON written to results.json (plus the run header), so a report can be rebuilt
from a run directory alone. It computes nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.{digits}f}"


def render_report(header: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    """`rows` are results.json rows; unavailable card rows carry {"label", "task", "published",
    "unavailable": reason}."""
    lines = [f"# {header.get('title', 'Evaluation report')}", ""]
    for key in ("model", "backend", "card", "started", "harness"):
        if header.get(key):
            lines.append(f"- **{key}**: {header[key]}")
    lines += ["", "## Card table", "", *card_table(rows), ""]
    lines.append(
        "Ours: mean over samples (repeats averaged per sample); CI: 95% bootstrap over samples; "
        "verdict *reproduced* when the published number lies inside the CI and ≤5% of answers were truncated."
    )
    for row in rows:
        if "unavailable" not in row:
            lines += ["", *row_details(row)]
    return "\n".join(lines) + "\n"


def card_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    out = [
        "| Benchmark | Published | Ours | 95% CI | n | Truncated | Unparsed | Errors | Verdict |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        published = "—" if row.get("published") is None else f"{row['published']:.1f}"
        if "unavailable" in row:
            out.append(f"| {row['label']} | {published} | not yet available | — | — | — | — | — | — |")
            continue
        rates = row["rates"]
        low, high = row["ci95"]
        errors = rates["error"] + rates["timeout"]
        out.append(
            f"| {row['label']} | {published} | {pct(row['value'])} | {pct(low)}–{pct(high)} | {row['n_samples']} "
            f"| {pct(rates['truncated'])}% | {pct(rates['unparsed'])}% | {pct(errors)}% | {verdict_text(row['verdict'])} |"
        )
    return out


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} `{v}`" for k, v in value.items())
    return f"`{value}`"


def verdict_text(verdict: dict[str, Any]) -> str:
    label, gap = verdict["label"], verdict.get("gap_points")
    if label in {"above", "below", "reproduced"} and gap is not None:
        return f"{label} ({gap:+.1f})"
    if verdict.get("reason") and label != "n/a":
        return f"{label}: {verdict['reason']}"
    return "—" if label == "n/a" else label


def row_details(row: dict[str, Any]) -> list[str]:
    config = row.get("task_config", {})
    lines = [f"## {row['label']}", ""]
    lines.append(f"- task `{row['task']}` v{row['task_version']}, variant `{row['variant']}`")
    for key, value in config.items():
        if key not in {"task", "version", "variant"} and value not in (None, {}, ""):
            lines.append(f"- {key.replace('_', ' ')}: {_inline(value)}")
    lines.append(
        f"- {row['metric']}: {pct(row['value'], 2)} ± {pct(row['stderr'], 2)} (stderr), "
        f"{row['n_scores']} completions over {row['n_samples']} samples"
    )
    for name, extra in row.get("extra_metrics", {}).items():
        low, high = extra["ci95"]
        lines.append(f"- {name}: {pct(extra['value'], 2)} (95% CI {pct(low)}–{pct(high)})")
    corpus = row.get("corpus_metrics") or {}
    if corpus.get("per_pair"):
        lines += [
            "",
            "| Pair | BLEU | 95% CI | tokenizer | utterances | ASR error |",
            "|---|---:|---|---|---:|---:|",
        ]
        for pair, m in corpus["per_pair"].items():
            ci = m.get("ci95") or [None, None]
            asr = (m.get("asr") or {}).get("error_rate")
            lines.append(
                f"| {pair} | {_num(m.get('bleu'))} | {_num(ci[0])}–{_num(ci[1])} | {m.get('tokenize')} "
                f"| {m.get('n_utterances')} | {_num(asr, 3)} |"
            )
        lines.append(f"- sacrebleu signatures: {', '.join(f'`{s}`' for s in corpus.get('signatures', []))}")
    if row.get("flags"):
        lines.append(
            "- flagged (counted, outcome unchanged): "
            + ", ".join(f"{k} {v}" for k, v in row["flags"].items())
        )
    if "accuracy_with_guess_credit" in row:
        lines.append(
            f"- with official random-guess credit for unparsed answers: {pct(row['accuracy_with_guess_credit'], 2)}"
        )
    outcomes = ", ".join(f"{k} {v}" for k, v in row["outcomes"].items())
    lines.append(f"- outcomes: {outcomes}")
    settings = row.get("settings") or {}
    if settings:
        lines += ["", "| Setting | Value | Evidence | Note |", "|---|---|---|---|"]
        for name, setting in settings.items():
            lines.append(
                f"| {name} | {setting['value']} | {setting['evidence']} | {setting.get('note', '')} |"
            )
    categories = row.get("per_category") or {}
    if len(categories) > 1:
        lines += ["", "| Category | Ours | 95% CI | n | Unparsed |", "|---|---:|---|---:|---:|"]
        for name, cat in categories.items():
            low, high = cat["ci95"]
            lines.append(
                f"| {name} | {pct(cat['value'])} | {pct(low)}–{pct(high)} | {cat['n_samples']} "
                f"| {pct(cat['rates']['unparsed'])}% |"
            )
    return lines
