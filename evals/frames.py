"""A run directory as pandas DataFrames: `load_run(path)` for notebooks and the parquet export.

Reads only through evals.run_dir.load_run_dir (so a run of another major format version is the same
one-line error) and flattens the typed records into plain columns: one line per completion in
`samples`, one line per card row, category and extra metric in `results`. Every column holds
scalars (text, numbers, booleans or missing values), so the frames survive a parquet round trip
unchanged. This module computes no scores; pandas is imported here, never by the CLI at start-up.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evals.records import MetricValue, RowResult, RunInfo, SampleRecord, UnavailableRow
from evals.run_dir import RunDir, load_run_dir

OUTCOMES = ("correct", "wrong", "unparsed", "truncated", "error", "timeout")
FLAG_SEPARATOR = ","

SAMPLE_COLUMNS = (
    "row", "task", "variant", "id", "repeat", "category", "outcome", "value", "extracted", "target",
    "answer", "reasoning", "output", "answer_chars", "reasoning_chars", "finish_reason", "prompt_tokens",
    "completion_tokens", "seconds", "error", "flag_names", "followup_answer", "followup_raw",
    "request_key", "prompt_id", "details",
)  # fmt: skip
RESULT_COLUMNS = (
    "row", "task", "variant", "task_version", "scope", "name", "metric", "value", "stderr", "ci_low",
    "ci_high", "n_samples", "n_scores", *(f"rate_{o}" for o in OUTCOMES), "published_points",
    "verdict", "gap_points", "repeats", "model", "unavailable",
)  # fmt: skip

FLOAT_RESULT_COLUMNS = (
    "value", "stderr", "ci_low", "ci_high", *(f"rate_{o}" for o in OUTCOMES), "published_points", "gap_points",
)  # fmt: skip


@dataclass(frozen=True)
class RunFrames:
    """A run as DataFrames. `samples`: one line per completion (columns in SAMPLE_COLUMNS; `value` is
    the sample's score, `flag_names` its flags comma-separated (not `flags`: a DataFrame has a
    `.flags` attribute), `target` and `details` as text). `results`: per card row a line with scope
    "row" (the headline), one per category (scope "category", `name` = the category) and one per
    extra metric such as pass@k (scope "metric"). Values, CIs and rates are fractions (BLEU in
    points / 100, as in results.json); `published_points` and `gap_points` are in points. `run` is
    run.json's record (models, options, environment)."""

    path: Path
    samples: pd.DataFrame
    results: pd.DataFrame
    run: RunInfo


def load_run(path: str | Path) -> RunFrames:
    """Read a run directory (written by `evals run` or `evals score`) into DataFrames."""
    run = load_run_dir(Path(path))
    return RunFrames(run.path, samples_frame(run), results_frame(run), run.run)


def samples_frame(run: RunDir) -> pd.DataFrame:
    """One line per scored completion, in samples.jsonl order."""
    return pd.DataFrame([_sample_line(s) for s in run.samples], columns=list(SAMPLE_COLUMNS))


def results_frame(run: RunDir) -> pd.DataFrame:
    """Per card row its headline line, then its categories and extra metrics."""
    lines: list[dict[str, Any]] = []
    for row in run.results.rows:
        if isinstance(row, UnavailableRow):
            lines.append({"row": row.label, "task": row.task, "scope": "row", "unavailable": row.unavailable,
                          "published_points": row.published})  # fmt: skip
            continue
        lines.append(_result_line(row, "row", None, row.metric, row.summary))
        for category, metric in row.per_category.items():
            lines.append(_result_line(row, "category", category, row.metric, metric))
        for name, metric in row.extra_metrics.items():
            lines.append(_result_line(row, "metric", name, name, metric))
    frame = pd.DataFrame(lines, columns=list(RESULT_COLUMNS))
    for column in ("n_samples", "n_scores", "repeats"):
        frame[column] = frame[column].astype("Int64")
    for column in FLOAT_RESULT_COLUMNS:
        frame[column] = frame[column].astype("float64")
    return frame


def _sample_line(sample: SampleRecord) -> dict[str, Any]:
    followup = sample.followup
    return {
        "row": sample.row,
        "task": sample.task,
        "variant": sample.variant,
        "id": sample.id,
        "repeat": sample.repeat,
        "category": sample.category,
        "outcome": sample.outcome,
        "value": sample.value,
        "extracted": sample.extracted,
        "target": _text(sample.target),
        "answer": sample.answer,
        "reasoning": sample.reasoning,
        "output": sample.output,
        "answer_chars": len(sample.answer),
        "reasoning_chars": len(sample.reasoning or ""),
        "finish_reason": sample.finish_reason,
        "prompt_tokens": sample.prompt_tokens,
        "completion_tokens": sample.completion_tokens,
        "seconds": sample.seconds,
        "error": sample.error,
        "flag_names": FLAG_SEPARATOR.join(sample.flags),
        "followup_answer": followup.answer if followup else None,
        "followup_raw": followup.raw if followup else None,
        "request_key": sample.request_key,
        "prompt_id": sample.prompt_id,
        "details": json.dumps(sample.details, ensure_ascii=False, sort_keys=True, default=str),
    }


def _result_line(
    row: RowResult, scope: str, name: str | None, metric: str, value: MetricValue
) -> dict[str, Any]:
    headline = scope == "row"
    return {
        "row": row.label,
        "task": row.task,
        "variant": row.variant,
        "task_version": row.task_version,
        "scope": scope,
        "name": name,
        "metric": metric,
        "value": value.value,
        "stderr": _number(value.stderr),
        "ci_low": value.ci95[0],
        "ci_high": value.ci95[1],
        "n_samples": value.n_samples,
        "n_scores": value.n_scores,
        **{f"rate_{o}": value.rate(o) for o in OUTCOMES},
        "published_points": row.published if headline else None,
        "verdict": row.verdict.label if headline else None,
        "gap_points": row.verdict.gap_points if headline else None,
        "repeats": row.protocol.repeats,
        "model": row.cost.model if row.cost else None,
        "unavailable": None,
    }


def _text(value: Any) -> str | None:
    """A target as text: strings as they are, anything else (numbers, lists) as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
