"""Aggregate per-sample scores into metrics with their uncertainty and failure rates.

Repeats of one sample are reduced to one value per sample first (the mean for avg@k, the unbiased
estimate for pass@k, the vote for maj@k), so the standard error is clustered by question and the
bootstrap resamples questions, not completions. Nothing here knows about any benchmark.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evals.schema import Outcome, Score

BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95


@dataclass
class MetricSummary:
    """A mean over samples with its clustered standard error, 95% bootstrap CI, outcome rates and
    counts of flagged scores."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float
    n_samples: int
    n_scores: int
    outcomes: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)

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
            "flags": self.flags,
        }


def by_sample(scores: Iterable[Score]) -> dict[str, list[Score]]:
    grouped: dict[str, list[Score]] = defaultdict(list)
    for score in scores:
        grouped[score.sample_id].append(score)
    return grouped


def per_sample_means(scores: Sequence[Score]) -> dict[str, float]:
    """Mean score value per sample id over its repeats (avg@k per sample)."""
    return {sid: sum(s.value for s in group) / len(group) for sid, group in by_sample(scores).items()}


def summarize(scores: Sequence[Score], *, seed: int = 0) -> MetricSummary:
    """avg@k: the mean over samples of each sample's mean over its repeats."""
    return summarize_values(per_sample_means(scores), scores, seed=seed)


def summarize_values(values: dict[str, float], scores: Sequence[Score], *, seed: int = 0) -> MetricSummary:
    """Summary of per-sample `values`, with the outcome and flag counts of `scores`."""
    means = np.fromiter(values.values(), dtype=float, count=len(values))
    outcomes = dict(sorted(Counter(s.outcome.value for s in scores).items()))
    flags = dict(sorted(Counter(flag for s in scores for flag in s.flags).items()))
    n = len(means)
    if n == 0:
        nan = math.nan
        return MetricSummary(nan, nan, nan, nan, 0, len(scores), outcomes, flags)
    value = float(means.mean())
    stderr = float(means.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    low, high = bootstrap_ci(means, seed=seed)
    return MetricSummary(value, stderr, low, high, n, len(scores), outcomes, flags)


def bootstrap_ci(
    values: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling items with replacement (scipy's bootstrap)."""
    if len(values) == 1:
        return float(values[0]), float(values[0])
    return _percentile_bootstrap([values], _mean, seed=seed, resamples=resamples)


def _mean(values: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
    return np.asarray(values.mean(axis=axis), dtype=np.float64)


def _percentile_bootstrap(
    samples: Sequence[NDArray[np.float64]],
    statistic: Callable[..., NDArray[np.float64]],
    *,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float]:
    """The `CI_LEVEL` percentile bootstrap interval of a vectorized `statistic(*samples, axis=-1)`,
    each sample resampled on its own (several samples: a stratified bootstrap), seeded with `seed`.
    Resamples are drawn in batches so memory stays bounded on large benchmarks."""
    from scipy.stats import bootstrap  # imported here: scipy.stats takes a while to import

    total = sum(len(sample) for sample in samples)
    result = bootstrap(
        samples,
        statistic,
        n_resamples=resamples,
        batch=max(1, min(resamples, 4_000_000 // total)),
        vectorized=True,
        method="percentile",
        confidence_level=CI_LEVEL,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


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


def macro_mean(scores: Sequence[Score], group_of: dict[str, str | None], *, seed: int = 0) -> MetricSummary:
    """The unweighted mean of per-group means (e.g. MMMU-Pro overall = mean of its two settings),
    with a stratified bootstrap CI (samples resampled within each group) and a stderr combined
    from the groups' stderrs."""
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for sid, value in per_sample_means(scores).items():
        group = group_of.get(sid)
        if group is not None:
            groups[group][sid] = value
    base = summarize_values({}, scores, seed=seed)
    if not groups:
        return base
    arrays = [np.fromiter(g.values(), dtype=float, count=len(g)) for g in groups.values()]
    value = float(np.mean([a.mean() for a in arrays]))
    variances = [a.var(ddof=1) / len(a) if len(a) > 1 else math.nan for a in arrays]
    stderr = float(math.sqrt(sum(variances)) / len(arrays))
    low, high = _stratified_ci(arrays, seed=seed)
    n_samples = sum(len(a) for a in arrays)
    return MetricSummary(value, stderr, low, high, n_samples, base.n_scores, base.outcomes, base.flags)


def _stratified_ci(arrays: Sequence[NDArray[np.float64]], *, seed: int) -> tuple[float, float]:
    """Percentile CI of the unweighted mean of group means, samples resampled within each group.
    A group of one sample is a constant (scipy resamples only groups of two or more)."""
    varying = [a for a in arrays if len(a) > 1]
    constant = sum(float(a[0]) for a in arrays if len(a) == 1) / len(arrays)
    if not varying:
        return constant, constant

    def statistic(*groups: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
        total = np.zeros(groups[0].shape[:-1])
        for group in groups:
            total += group.mean(axis=axis) / len(arrays)
        return total + constant

    return _percentile_bootstrap(varying, statistic, seed=seed)


# --- metrics over repeats -------------------------------------------------------------------


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased estimate of the chance that at least one of k draws (from n, `correct` right) is right."""
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def majority_correct(group: Sequence[Score]) -> float:
    """1.0 when the most frequent extracted answer is a correct one. Ties go to the answer seen
    first (lowest repeat); completions without an answer do not vote."""
    ordered = sorted(group, key=lambda s: s.repeat)
    votes = Counter(s.extracted for s in ordered if s.extracted is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winner = next(s.extracted for s in ordered if s.extracted is not None and votes[s.extracted] == top)
    return 1.0 if any(s.extracted == winner and s.value == 1.0 for s in ordered) else 0.0


def repeat_metrics(scores: Sequence[Score], *, seed: int = 0) -> dict[str, MetricSummary]:
    """pass@k and maj@k where samples have k > 1 repeats (k = the smallest repeat count), each with
    its uncertainty; empty for single-repeat runs. avg@k is the headline `summarize` value."""
    groups = by_sample(scores)
    if not groups:
        return {}
    k = min(len(group) for group in groups.values())
    if k < 2:
        return {}
    passed = {
        sid: pass_at_k(len(group), sum(s.value == 1.0 for s in group), k) for sid, group in groups.items()
    }
    voted = {sid: majority_correct(group) for sid, group in groups.items()}
    return {
        f"pass@{k}": summarize_values(passed, scores, seed=seed),
        f"maj@{k}": summarize_values(voted, scores, seed=seed),
    }


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
