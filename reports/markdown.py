"""Render a run's results as Markdown: the card table first, then each row's details.

Works from the typed records of results.json (evals.records), so a report can be rebuilt from a
run directory alone. It computes nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evals.records import Results, Row, RowResult, UnavailableRow, VerdictRecord


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.{digits}f}"


def render_report(results: Results) -> str:
    """The whole report: header, card table, then each scored row's details."""
    header = results.header
    lines = [f"# {header.title or 'Evaluation report'}", ""]
    for key in ("model", "backend", "card", "started", "harness"):
        if getattr(header, key):
            lines.append(f"- **{key}**: {getattr(header, key)}")
    lines += ["", "## Card table", "", *card_table(results.rows), ""]
    lines.append(TABLE_NOTE)
    for row in results.scored:
        lines += ["", *row_details(row)]
    return "\n".join(lines) + "\n"


def render_summary(results: Results) -> str:
    """What a terminal shows after a run: the title and the card table (the details stay in the files)."""
    return (
        "\n".join([f"# {results.header.title or 'Evaluation report'}", "", *card_table(results.rows)]) + "\n"
    )


TABLE_NOTE = (
    "Ours: the row's metric (accuracy: mean over samples, repeats averaged per sample; BLEU: macro corpus "
    "BLEU over language pairs); CI: 95% bootstrap over samples; verdict *reproduced* when the published "
    "number lies inside the CI and ≤5% of answers were truncated."
)


def card_table(rows: Sequence[Row]) -> list[str]:
    out = [
        "| Benchmark | Metric | Published | Ours | 95% CI | n | Truncated | Unparsed | Errors | Verdict |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        published = "—" if row.published is None else published_figure(row.published)
        if isinstance(row, UnavailableRow):
            out.append(f"| {row.label} | — | {published} | not yet available | — | — | — | — | — | — |")
            continue
        summary = row.summary
        low, high = summary.ci95
        errors = summary.rate("error") + summary.rate("timeout")
        out.append(
            f"| {row.label} | {row.metric} | {published} | {pct(summary.value)} | {pct(low)}–{pct(high)} "
            f"| {summary.n_samples} | {pct(summary.rate('truncated'))}% | {pct(summary.rate('unparsed'))}% "
            f"| {pct(errors)}% | {verdict_text(row.verdict)} |"
        )
    return out


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} `{v}`" for k, v in value.items())
    return f"`{value}`"


def verdict_text(verdict: VerdictRecord) -> str:
    label, gap = verdict.label, verdict.gap_points
    if label in {"above", "below", "reproduced"} and gap is not None:
        return f"{label} ({gap:+.1f})"
    if verdict.reason and label != "n/a":
        return f"{label}: {verdict.reason}"
    return "—" if label == "n/a" else label


def row_details(row: RowResult) -> list[str]:
    summary = row.summary
    lines = [f"## {row.label}", ""]
    lines.append(f"- task `{row.task}` v{row.task_version}, variant `{row.variant}`")
    for key, value in row.protocol.config.items():
        if key not in {"task", "version", "variant"} and value not in (None, {}, ""):
            lines.append(f"- {key.replace('_', ' ')}: {_inline(value)}")
    lines.append(
        f"- {row.metric}: {pct(summary.value, 2)} ± {pct(summary.stderr, 2)} (standard error), "
        f"{summary.n_scores} completions over {summary.n_samples} samples"
    )
    for name, extra in row.extra_metrics.items():
        low, high = extra.ci95
        lines.append(f"- {name}: {pct(extra.value, 2)} (95% CI {pct(low)}–{pct(high)})")
    lines += _corpus_lines(row.corpus_metrics or {})
    if summary.flags:
        lines.append(
            "- flagged answers (counted apart, outcome unchanged): "
            + ", ".join(f"{k} {v}" for k, v in summary.flags.items())
        )
    if row.accuracy_with_guess_credit is not None:
        lines.append(
            "- accuracy with the official random-guess credit for unparsed answers: "
            f"{pct(row.accuracy_with_guess_credit, 2)}"
        )
    lines.append("- outcomes (completions): " + ", ".join(f"{k} {v}" for k, v in summary.outcomes.items()))
    if row.cost is not None and row.cost.generation.requested:
        cost = row.cost.generation
        lines.append(
            f"- generation: {cost.requested} requests ({cost.cached} cached, {cost.generated} generated, "
            f"{cost.failed} failed, {cost.shared} shared with an identical prompt), "
            f"{cost.completion_tokens} tokens in {cost.seconds:.1f} s ({cost.tokens_per_second:.1f} tokens/s)"
        )
    if row.settings:
        lines += ["", "| Setting | Value | Evidence | Note |", "|---|---|---|---|"]
        for name, setting in row.settings.items():
            lines.append(f"| {name} | {setting.value} | {setting.evidence} | {setting.note} |")
    categories = row.per_category
    if len(categories) > 1 and not row.corpus_metrics:  # corpus rows list their pairs above
        lines += [
            "",
            f"| Category | {row.metric} | 95% CI | n | Unparsed |",
            "|---|---:|---|---:|---:|",
        ]
        for name, cat in categories.items():
            low, high = cat.ci95
            lines.append(
                f"| {name} | {pct(cat.value)} | {pct(low)}–{pct(high)} | {cat.n_samples} "
                f"| {pct(cat.rate('unparsed'))}% |"
            )
    return lines


def _corpus_lines(corpus: dict[str, Any]) -> list[str]:
    if not corpus.get("per_pair"):
        return []
    lines = [
        "",
        "| Pair | corpus BLEU | 95% CI | tokenizer | utterances | ASR error rate |",
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
    return lines


def published_figure(value: float) -> str:
    """A published number as printed by its source: one decimal at least, more when it has them
    (72.55 stays 72.55, 77.2 stays 77.2, 80 becomes 80.0)."""
    text = f"{value:.4f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
