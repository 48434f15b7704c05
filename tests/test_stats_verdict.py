"""Statistics (clustered standard error, bootstrap CI, outcome rates) and card verdicts."""

from __future__ import annotations

import math

import numpy as np

from evals.schema import Outcome, Score
from evals.stats import guess_credited_accuracy, summarize, summarize_by
from evals.verdict import judge


def scores_from(values: list[float], repeats: int = 1) -> list[Score]:
    return [
        Score(str(i), r, Outcome.CORRECT if v else Outcome.WRONG, v)
        for i, v in enumerate(values)
        for r in range(repeats)
    ]


def test_mean_stderr_and_ci_of_binary_scores() -> None:
    values = [1.0] * 70 + [0.0] * 30
    summary = summarize(scores_from(values))
    assert summary.value == 0.7
    assert math.isclose(summary.stderr, np.std(values, ddof=1) / 10)
    assert summary.ci_low < 0.7 < summary.ci_high
    assert 0.60 < summary.ci_low < 0.65 and 0.75 < summary.ci_high < 0.80  # about ±1.96 stderr


def test_repeats_are_clustered_by_sample() -> None:
    # 4 identical repeats carry no more information than one: same stderr as one repeat
    one = summarize(scores_from([1.0, 0.0] * 25))
    four = summarize(scores_from([1.0, 0.0] * 25, repeats=4))
    assert four.n_samples == 50 and four.n_scores == 200
    assert math.isclose(one.stderr, four.stderr)


def test_outcome_rates_and_groups() -> None:
    scores = [
        Score("a", 0, Outcome.CORRECT, 1.0),
        Score("b", 0, Outcome.UNPARSED, 0.0),
        Score("c", 0, Outcome.TRUNCATED, 0.0),
        Score("d", 0, Outcome.ERROR, 0.0),
    ]
    summary = summarize(scores)
    assert summary.rate(Outcome.UNPARSED) == 0.25 and summary.rate(Outcome.TIMEOUT) == 0.0
    groups = summarize_by(scores, {"a": "x", "b": "x", "c": "y", "d": "y"})
    assert groups["x"].value == 0.5 and groups["y"].value == 0.0


def test_guess_credit_is_reported_only_when_present() -> None:
    plain = [Score("a", 0, Outcome.UNPARSED, 0.0), Score("b", 0, Outcome.CORRECT, 1.0)]
    assert guess_credited_accuracy(plain) is None
    guessed = [Score("a", 0, Outcome.UNPARSED, 0.0, details={"guess_correct": True}), plain[1]]
    assert guess_credited_accuracy(guessed) == 1.0
    assert summarize(guessed).value == 0.5  # the headline accuracy never includes guesses


def test_verdicts() -> None:
    summary = summarize(scores_from([1.0] * 77 + [0.0] * 23))
    assert judge(77.2, summary).label == "reproduced"
    low = judge(95.0, summary)
    assert low.label == "below" and math.isclose(low.gap_points, 77.0 - 95.0)
    assert judge(40.0, summary).label == "above"
    assert judge(None, summary).label == "n/a"
    truncated = [Score(f"t{i}", 0, Outcome.TRUNCATED, 0.0) for i in range(10)] + scores_from([1.0] * 90)
    assert judge(90.0, summarize(truncated)).label == "unclear"


def test_pass_at_k_matches_enumeration() -> None:
    from itertools import combinations

    from evals.stats import pass_at_k

    for n, correct, k in [(4, 1, 2), (8, 3, 4), (5, 0, 3), (6, 6, 2), (10, 2, 1)]:
        outcomes = [1] * correct + [0] * (n - correct)
        draws = list(combinations(outcomes, k))
        expected = sum(any(d) for d in draws) / len(draws)
        assert math.isclose(pass_at_k(n, correct, k), expected)


def test_repeat_metrics_avg_pass_and_majority() -> None:
    from evals.stats import repeat_metrics

    def score(sid: str, repeat: int, answer: str | None, gold: str) -> Score:
        if answer is None:
            return Score(sid, repeat, Outcome.UNPARSED, 0.0)
        ok = answer == gold
        return Score(sid, repeat, Outcome.CORRECT if ok else Outcome.WRONG, float(ok), extracted=answer)

    scores = [
        # p1: right once in four, majority wrong ("5" twice)
        score("p1", 0, "5", "7"), score("p1", 1, "7", "7"), score("p1", 2, "5", "7"), score("p1", 3, None, "7"),
        # p2: right three times: majority right
        score("p2", 0, "1", "1"), score("p2", 1, "1", "1"), score("p2", 2, "2", "1"), score("p2", 3, "1", "1"),
        # p3: a 1-1 tie, the answer seen first wins ("9", wrong)
        score("p3", 0, "9", "4"), score("p3", 1, "4", "4"), score("p3", 2, None, "4"), score("p3", 3, None, "4"),
    ]  # fmt: skip
    assert math.isclose(summarize(scores).value, (0.25 + 0.75 + 0.25) / 3)  # avg@4
    extra = repeat_metrics(scores)
    assert set(extra) == {"pass@4", "maj@4"}
    assert extra["pass@4"].value == 1.0
    assert math.isclose(extra["maj@4"].value, 1 / 3)
    assert extra["maj@4"].n_samples == 3 and extra["maj@4"].ci_low <= extra["maj@4"].value
    assert repeat_metrics(scores_from([1.0, 0.0])) == {}  # single repeat: nothing extra


def test_flags_are_counted() -> None:
    scores = [
        Score("a", 0, Outcome.CORRECT, 1.0, flags=("last_integer_fallback",)),
        Score("b", 0, Outcome.WRONG, 0.0),
    ]
    assert summarize(scores).flags == {"last_integer_fallback": 1}


def test_macro_mean_weights_groups_equally() -> None:
    from evals.stats import macro_mean

    scores = scores_from([1.0] * 10 + [0.0] * 30)  # ids 0-9 right, 10-39 wrong
    groups = {str(i): ("small" if i < 20 else "large") for i in range(40)}  # small: 10/20, large: 0/20
    summary = macro_mean(scores, groups)
    assert math.isclose(summary.value, (0.5 + 0.0) / 2)
    assert summary.ci_low <= summary.value <= summary.ci_high and summary.n_samples == 40
    lopsided = {str(i): ("a" if i < 10 else "b") for i in range(40)}  # a: 10/10, b: 0/30
    assert math.isclose(macro_mean(scores, lopsided).value, 0.5)
    assert math.isclose(summarize(scores).value, 0.25)  # the pooled mean differs
