"""Paired statistics against known values: textbook McNemar examples, scipy's own tests, and the
bootstrap's coverage on a case with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from evals.paired_stats import mcnemar_exact, paired_bootstrap, paired_bootstrap_indices, paired_sign_flip


def test_mcnemar_exact_textbook_values() -> None:
    # Agresti (2013) style example: 1 vs 7 discordant pairs; exact two-sided p = 2 * P(X <= 1 | n=8, p=0.5)
    assert mcnemar_exact(1, 7) == pytest.approx(2 * (1 + 8) / 2**8)  # 0.0703125
    # Fagerland, Lydersen & Laake (2013), the classic 2x2 with b=6, c=1 (n=7): p = 0.125
    assert mcnemar_exact(6, 1) == pytest.approx(0.125)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert mcnemar_exact(20, 40) == pytest.approx(stats.binomtest(40, 60, 0.5).pvalue)


def test_paired_bootstrap_of_a_constant_shift_is_that_shift() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(500)
    result = paired_bootstrap(a, a + 0.1)
    assert result.diff == pytest.approx(0.1) and result.low == pytest.approx(0.1) and result.n == 500


def test_paired_bootstrap_interval_matches_the_normal_approximation() -> None:
    rng = np.random.default_rng(2)
    a = (rng.random(4000) < 0.6).astype(float)
    b = np.where(rng.random(4000) < 0.1, 1 - a, a)  # 10% of answers flipped at random
    result = paired_bootstrap(a, b)
    diff = b - a
    half = 1.96 * diff.std(ddof=1) / math.sqrt(len(diff))
    assert result.low == pytest.approx(diff.mean() - half, abs=0.004)
    assert result.high == pytest.approx(diff.mean() + half, abs=0.004)


def test_paired_bootstrap_is_paired() -> None:
    """Two runs that differ on 3 of 2000 samples have a narrow paired interval, far narrower than
    treating them as independent would give."""
    a = np.tile([1.0, 0.0], 1000)
    b = a.copy()
    b[:6:2] = 0.0  # three right answers lost
    result = paired_bootstrap(a, b)
    assert result.diff == pytest.approx(-3 / 2000)
    assert result.high - result.low < 0.004


def test_bootstrap_by_indices_recomputes_a_corpus_statistic() -> None:
    hits_a = np.array([3, 4, 5, 6] * 50, dtype=float)
    hits_b = hits_a + 1
    lengths = np.full(200, 10.0)

    def ratio_difference(idx: np.ndarray) -> float:  # a corpus-level ratio, not a mean of ratios
        return float(hits_b[idx].sum() / lengths[idx].sum() - hits_a[idx].sum() / lengths[idx].sum())

    result = paired_bootstrap_indices(200, ratio_difference, resamples=200)
    assert result.diff == pytest.approx(0.1) and result.low == pytest.approx(0.1)


def test_sign_flip_test_agrees_with_exact_enumeration_and_scipy() -> None:
    a = np.array([0.25, 0.5, 0.75, 0.5, 0.25, 1.0, 0.0, 0.5])
    b = np.array([0.5, 0.75, 1.0, 0.5, 0.5, 1.0, 0.25, 0.75])
    p = paired_sign_flip(a, b)
    expected = stats.permutation_test(
        (b - a,), np.sum, permutation_type="samples", alternative="two-sided", n_resamples=np.inf
    ).pvalue
    assert p == pytest.approx(expected)
    assert paired_sign_flip(a, a) == 1.0


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([1.0, 0.0], [1.0])
