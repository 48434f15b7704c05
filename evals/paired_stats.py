"""Statistics for two runs of the same samples: paired differences and their tests.

Inputs are per-sample values in matching order (one value per sample: the score, or the mean over
its repeats), so resampling is over samples and pairing is kept. Nothing here reads runs or knows a
benchmark; evals.compare and evals.gate call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class PairedDiff:
    """Mean of candidate minus reference over paired samples, with a percentile bootstrap interval
    at `level` (two-sided)."""

    diff: float
    low: float
    high: float
    level: float
    n: int


def paired_bootstrap(
    reference: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
    statistic: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> PairedDiff:
    """Bootstrap interval of statistic(candidate) - statistic(reference) resampling sample indices
    (the same indices on both sides). `statistic` defaults to the mean; pass e.g. a corpus-BLEU
    function of the resampled indices' values to resample utterances and recompute the corpus score
    (it then receives index arrays, see `paired_bootstrap_indices`)."""
    a = np.asarray(reference, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired values need the same length, one value per sample")
    n = len(a)
    if n == 0:
        return PairedDiff(math.nan, math.nan, math.nan, level, 0)
    diff = b - a
    point = float(diff.mean())
    if n == 1:
        return PairedDiff(point, point, point, level, 1)
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, 2_000_000 // n))
    boot = np.empty(resamples)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = diff[idx].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return PairedDiff(point, float(low), float(high), level, n)


def paired_bootstrap_indices(
    n: int,
    difference: Callable[[np.ndarray], float],
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedDiff:
    """Bootstrap interval of `difference(indices)`, a paired statistic recomputed on each resample of
    sample indices (e.g. corpus BLEU of the candidate minus that of the reference over the same
    resampled utterances); the point estimate is `difference(arange(n))`."""
    if n == 0:
        return PairedDiff(math.nan, math.nan, math.nan, level, 0)
    point = float(difference(np.arange(n)))
    rng = np.random.default_rng(seed)
    boot = np.array([difference(rng.integers(0, n, size=n)) for _ in range(resamples)])
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return PairedDiff(point, float(low), float(high), level, n)


def mcnemar_exact(reference_only: int, candidate_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: samples right only in the reference
    run (`reference_only`) and right only in the candidate (`candidate_only`). Under no difference each
    discordant pair is a fair coin, so this is the exact binomial test of the split."""
    from scipy import stats  # imported on use: scipy.stats is slow to import

    discordant = reference_only + candidate_only
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(candidate_only, discordant, 0.5).pvalue)


def paired_sign_flip(
    reference: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    resamples: int = 20000,
    seed: int = 0,
) -> float:
    """Two-sided p-value of a paired permutation (sign-flip) test on per-sample means, for runs with
    repeats where outcomes are not 0/1: exact enumeration up to 16 non-zero differences, else Monte
    Carlo with `resamples` draws."""
    diff = np.asarray(candidate, dtype=float) - np.asarray(reference, dtype=float)
    diff = diff[diff != 0]
    if len(diff) == 0:
        return 1.0
    observed = abs(diff.sum())
    if len(diff) <= 16:
        signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * len(diff))).reshape(len(diff), -1).T
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(resamples, len(diff)))
    sums = np.abs(signs @ diff)
    return float(np.mean(sums >= observed - 1e-12))
