"""Gate a candidate run on a baseline run, row by row: pass, regression or inconclusive.

Rows and samples are paired as in `evals compare` (evals.compare.pair_runs: rows by label, samples by
id and repeat, protocols must match). For each row, with d the paired difference candidate - baseline
in points, [L, U] its paired bootstrap interval at two-sided level 1 - 2*alpha (so L and U are the
one-sided 1 - alpha lower and upper confidence bounds) and m >= 0 the row's margin in points:

- regression   when U < 0 and d < -m: a drop that is statistically supported and larger than the margin;
- pass         when L >= -m: the candidate is shown to be at most m points worse (non-inferior);
- inconclusive otherwise: the interval is too wide to tell (a failure only with --strict).

Regression is checked first. Two identical runs give d = L = U = 0, a pass at any margin.
This module decides verdicts and returns evals.gate_records; it prints and writes nothing
(reports/gate.py renders the summary and JUnit XML, evals/cli_gate.py is the command line).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from evals.compare import pair_runs, unmatched_rows
from evals.comparison_records import PairedRow
from evals.gate_records import DEFAULT_ALPHA, INCONCLUSIVE, PASS, REGRESSION, GateReport, GateRow
from evals.run_dir import RunDir


def verdict(diff: float, lower: float, upper: float, margin: float) -> tuple[str, str]:
    """The rule above on one row's difference and one-sided bounds (all in points): (verdict, reason)."""
    minus = f"-{margin:g}" if margin else "0"
    if upper < 0 and diff < -margin:
        return REGRESSION, f"upper bound {upper:+.1f} < 0 and diff {diff:+.1f} < {minus}"
    if lower >= -margin:
        return PASS, f"lower bound {lower:+.1f} >= {minus}"
    if upper < 0:
        return INCONCLUSIVE, f"a drop (upper bound {upper:+.1f} < 0) no larger than the margin {margin:g}"
    return INCONCLUSIVE, f"bounds [{lower:+.1f}, {upper:+.1f}] too wide to decide at margin {margin:g}"


def check_alpha(alpha: float) -> float:
    if not 0 < alpha < 0.5:
        raise ValueError(f"--alpha {alpha:g}: must be between 0 and 0.5 (e.g. 0.05 for 95% one-sided bounds)")
    return alpha


def resolve_margins(margins: Mapping[str, float], rows: Sequence[PairedRow]) -> dict[str, float]:
    """`--margin` keys (a row label, or a task name that one row has) as {row label: points}; an
    unknown row or a negative margin is one line (ValueError)."""
    labels = [row.label for row in rows]
    resolved: dict[str, float] = {}
    for key, points in margins.items():
        if points < 0 or math.isnan(points):
            raise ValueError(f"--margin {key}={points:g}: a margin is a non-negative number of points")
        by_task = [row.label for row in rows if row.task == key]
        if key in labels:
            resolved[key] = points
        elif len(by_task) == 1:
            resolved[by_task[0]] = points
        else:
            raise ValueError(
                f"--margin {key}=...: no row '{key}' in both runs; use a row label or task of: "
                + "; ".join(f"{row.label} ({row.task})" for row in rows)
            )
    return resolved


def gate_row(row: PairedRow, *, alpha: float, margin: float) -> GateRow:
    diff, low, high = (100 * value for value in (row.diff, row.diff_low, row.diff_high))
    decided, reason = verdict(diff, low, high, margin)
    return GateRow(
        label=row.label,
        task=row.task,
        metric=row.metric,
        n=len(row.sample_ids),
        baseline=100 * row.reference_matched,
        candidate=100 * row.candidate_matched,
        diff=diff,
        lower=low,
        upper=high,
        margin=margin,
        verdict=decided,
        reason=reason,
        protocol_differences=row.protocol_differences,
    )


def gate_runs(
    baseline: RunDir,
    candidate: RunDir,
    *,
    margins: Mapping[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    strict: bool = False,
    allow_protocol_diff: bool = False,
) -> GateReport:
    """Every row both runs share, judged by the rule above. One-line ValueError for no common samples,
    a protocol difference (unless allowed), a margin of an unknown row or a bad alpha."""
    check_alpha(alpha)
    rows = pair_runs(baseline, candidate, allow_protocol_diff=allow_protocol_diff, level=1 - 2 * alpha)
    resolved = resolve_margins(margins or {}, rows)
    notes = tuple(f"{u.label}: not gated ({u.reason})" for u in unmatched_rows(baseline, candidate))
    return GateReport(
        baseline=str(baseline.path),
        candidate=str(candidate.path),
        alpha=alpha,
        strict=strict,
        rows=tuple(gate_row(row, alpha=alpha, margin=resolved.get(row.label, 0.0)) for row in rows),
        notes=notes,
    )
