"""Small helpers shared by the task modules: per-repeat requests, failure outcomes, and the
official multiple-choice random-guess credit."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from evals.schema import Completion, Message, Outcome, Request, Sample, Sampling, Score


def repeat_requests(
    key_prefix: str,
    sample_id: str,
    sampling: Sampling,
    repeats: int,
    *,
    messages: Sequence[Message] | None = None,
    prompt: str | None = None,
) -> list[Request]:
    """One Request per repeat, keyed `{key_prefix}/{sample_id}/{r}`, with seed `sampling.seed + r`."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    return [
        Request(
            key=f"{key_prefix}/{sample_id}/{r}",
            sample_id=sample_id,
            repeat=r,
            sampling=replace(sampling, seed=sampling.seed + r),
            messages=tuple(messages or ()),
            prompt=prompt,
        )
        for r in range(repeats)
    ]


def failure_outcome(completion: Completion) -> Outcome | None:
    """ERROR/TIMEOUT for a failed generation, TRUNCATED for an unclosed thought block, else None."""
    if completion.error or completion.finish_reason in ("error", "timeout"):
        return Outcome.TIMEOUT if completion.finish_reason == "timeout" else Outcome.ERROR
    if completion.thought_open:
        return Outcome.TRUNCATED
    return None


def no_answer_outcome(completion: Completion) -> Outcome:
    """The outcome when no answer could be read: TRUNCATED if the budget ran out, else UNPARSED."""
    return Outcome.TRUNCATED if completion.finish_reason == "length" else Outcome.UNPARSED


def unanswered_score(sample: Sample, repeat: int, outcome: Outcome, *, guess_seed: int | None) -> Score:
    """A score without an answer. With a `guess_seed` (guessing on), the official random guess
    among `sample.inputs["letters"]` is recorded in details (the outcome and value stay as they
    are; reports show guess-credited accuracy separately). Guesses are drawn for UNPARSED and
    TRUNCATED (official scorers guess whenever no letter was read), never for ERROR/TIMEOUT,
    which should be rerun instead."""
    details: dict[str, object] = {}
    if guess_seed is not None and outcome in (Outcome.UNPARSED, Outcome.TRUNCATED):
        guess = random.Random(f"{guess_seed}:{sample.id}:{repeat}").choice(sample.inputs["letters"])
        details = {"guess": guess, "guess_correct": guess == sample.target}
    return Score(sample.id, repeat, outcome, 0.0, details=details)
