"""Compare a measured metric with a published number.

Reproduced when the published number lies inside the 95% CI and the truncation rate is low;
otherwise above or below with the gap in points; unclear when too many answers were truncated.
Values are fractions (0..1); published numbers are percentages as printed on the card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evals.schema import Outcome
from evals.stats import MetricSummary

MAX_TRUNCATION_FOR_VERDICT = 0.05


@dataclass(frozen=True)
class Verdict:
    label: str  # reproduced | above | below | unclear | n/a
    gap_points: float | None  # ours minus published, in points
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "gap_points": self.gap_points, "reason": self.reason}

    def __str__(self) -> str:
        if self.label in {"above", "below"} and self.gap_points is not None:
            return f"{self.label} ({self.gap_points:+.1f})"
        return self.label if not self.reason else f"{self.label}: {self.reason}"


def judge(published: float | None, summary: MetricSummary) -> Verdict:
    if published is None:
        return Verdict("n/a", None, "no published number")
    if summary.n_samples == 0 or math.isnan(summary.value):
        return Verdict("n/a", None, "nothing scored")
    ours = 100 * summary.value
    gap = ours - published
    truncated = summary.rate(Outcome.TRUNCATED)
    inside = 100 * summary.ci_low <= published <= 100 * summary.ci_high
    if truncated > MAX_TRUNCATION_FOR_VERDICT:
        return Verdict("unclear", gap, f"{100 * truncated:.1f}% truncated")
    if inside:
        return Verdict("reproduced", gap)
    return Verdict("above" if gap > 0 else "below", gap)
