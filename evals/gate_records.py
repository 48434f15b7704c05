"""The result of `evals gate` as plain records: one `GateRow` per compared row and the `GateReport`.

Standard library only, so that reports/ can render them (Markdown, JUnit XML) without importing the
statistics. evals.gate computes them; this module only holds them and says which rows fail.
Values are in points (accuracy in percentage points, BLEU in BLEU points).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_ALPHA = 0.05  # evals gate's one-sided error level

PASS = "pass"
REGRESSION = "regression"
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class GateRow:
    """One row's verdict. `lower` and `upper` are the one-sided (1 - alpha) confidence bounds of
    candidate minus baseline (together: the two-sided 1 - 2*alpha paired bootstrap interval)."""

    label: str
    task: str
    metric: str
    n: int  # paired samples (or sample, repeat pairs) the difference is over
    baseline: float
    candidate: float
    diff: float
    lower: float
    upper: float
    margin: float
    verdict: str  # pass | regression | inconclusive
    reason: str
    protocol_differences: tuple[str, ...] = ()

    def fails(self, strict: bool) -> bool:
        return self.verdict == REGRESSION or (strict and self.verdict == INCONCLUSIVE)


@dataclass(frozen=True)
class GateReport:
    baseline: str  # the run directories as given
    candidate: str
    alpha: float
    strict: bool
    rows: tuple[GateRow, ...]
    notes: tuple[str, ...] = field(default=())  # e.g. rows present in only one run

    @property
    def failed(self) -> tuple[GateRow, ...]:
        return tuple(row for row in self.rows if row.fails(self.strict))

    def count(self, verdict: str) -> int:
        return sum(row.verdict == verdict for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when no row fails, 1 when one does (usage errors, code 2, never get this far)."""
        return 1 if self.failed else 0
