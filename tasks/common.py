"""Small helpers shared by the task modules: per-repeat requests and failure outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from evals.schema import Completion, Message, Outcome, Request, Sampling


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
