"""Aggregate per-sample scores into a metric with its uncertainty and failure rates.

Repeats of one sample are averaged first, so the standard error is clustered by question and the
bootstrap resamples questions, not completions. Nothing here knows about any benchmark.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evals.schema import Outcome, Score

BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95


@dataclass
class MetricSummary:
    """A mean over samples with its clustered standard error, 95% bootstrap CI and outcome rates."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n_samples: int
    n_scores: int
    outcomes: dict[str, int] = field(default_factory=dict)

    def rate(self, outcome: Outcome) -> float:
        return self.outcomes.get(outcome.value, 0) / self.n_scores if self.n_scores else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "stderr": self.stderr,
            "ci95": [self.ci_low, self.ci_high],
            "n_samples": self.n_samples,
            "n_scores": self.n_scores,
            "outcomes": self.outcomes,
            "rates": {o.value: self.rate(o) for o in Outcome},
        }


def per_sample_means(scores: Sequence[Score]) -> dict[str, float]:
    """Mean score value per sample id over its repeats."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for score in scores:
        grouped[score.sample_id].append(score.value)
    return {sid: sum(vals) / len(vals) for sid, vals in grouped.items()}


def summarize(scores: Sequence[Score], *, seed: int = 0) -> MetricSummary:
    means = np.fromiter(per_sample_means(scores).values(), dtype=float)
    outcomes = Counter(s.outcome.value for s in scores)
    n = len(means)
    if n == 0:
        nan = math.nan
        return MetricSummary(nan, nan, nan, nan, 0, 0, dict(outcomes))
    value = float(means.mean())
    stderr = float(means.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    low, high = bootstrap_ci(means, seed=seed)
    return MetricSummary(value, stderr, low, high, n, len(scores), dict(sorted(outcomes.items())))


def bootstrap_ci(
    values: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling items with replacement."""
    n = len(values)
    if n == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    # Resample in blocks to keep memory bounded on large benchmarks.
    block = max(1, min(resamples, 4_000_000 // n))
    boot = np.empty(resamples)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = values[idx].mean(axis=1)
    alpha = (1 - CI_LEVEL) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return float(low), float(high)


def summarize_by(
    scores: Sequence[Score], group_of: dict[str, str | None], *, seed: int = 0
) -> dict[str, MetricSummary]:
    """One summary per group (e.g. category); `group_of` maps sample id to its group."""
    groups: dict[str, list[Score]] = defaultdict(list)
    for score in scores:
        group = group_of.get(score.sample_id)
        if group is not None:
            groups[group].append(score)
    return {name: summarize(group, seed=seed) for name, group in sorted(groups.items())}


def guess_credited_accuracy(scores: Sequence[Score]) -> float | None:
    """Accuracy where unparsed answers earn the credit of a recorded random guess (official
    MMLU-Pro behaviour); None when no score carries a guess."""
    if not any("guess_correct" in s.details for s in scores):
        return None
    credited = [
        Score(s.sample_id, s.repeat, s.outcome, 1.0 if s.details.get("guess_correct") else s.value)
        for s in scores
    ]
    return float(np.mean(list(per_sample_means(credited).values())))
