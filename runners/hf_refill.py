"""Chunked continuous batching ("refill") for the transformers backend.

A static batch decodes until its longest row ends, and rows that finish early idle meanwhile. With
`refill_every=N` a batch runs in segments instead: once a segment has decoded N steps and at least
`refill_share` of its rows have finished while requests are waiting, the segment ends; the finished
rows leave (their completions are yielded at once), waiting requests take their places, and the
unfinished rows are prefilled again with their prompt plus what they have generated so far, then
decode on. With nothing waiting a segment runs to its end, as a static batch does.

The price is that prefill, and a difference of float rounding: a token whose logits come from a
prefill rather than from a decode step can differ in the last bits, so a greedy row can take
another token at a near-tie (bench/hf_refill.py measures how often). Seeded sampling draws its noise
per (seed, position), so a row's sampled tokens do not depend on when it was refilled.

This module keeps each row's progress and decides when a segment ends; it does not call the model
(`runners.hf` runs each segment) or size batches (`runners.hf_generation`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from transformers import StoppingCriteria

from runners.hf_generation import BatchSizer, RowBudget, is_oom

T = TypeVar("T")

MIN_PREFILL_CHUNK = 256  # a refilled batch's prefill runs in chunks of its longest prompt, at least this


@dataclass
class RowState(Generic[T]):
    """One request's progress across segments: its prompt ids, the tokens generated so far, and
    whether it has finished (an end id, a stop string, or its budget of `budget` tokens)."""

    item: T
    prompt: list[int]
    budget: int
    generated: list[int] = field(default_factory=list)
    stopped_at: int | None = None  # generated tokens at a stop string, if one was hit
    finished: bool = False
    seconds: float = 0.0  # this row's share of the segments it took part in
    error: Exception | None = None  # the segment failed (not out-of-memory that a smaller batch fixes)

    @property
    def ids(self) -> list[int]:
        """The next segment's input: prompt and generated tokens."""
        return self.prompt + self.generated

    @property
    def remaining(self) -> int:
        return self.budget - len(self.generated)

    def extend(self, new: Sequence[int], end_ids: frozenset[int], stopped_at: int | None) -> None:
        """Add a segment's tokens: up to and including the first end id, at most the remaining
        budget, and up to a stop string's position (`stopped_at` counts all generated tokens)."""
        end = next((i + 1 for i, token in enumerate(new) if token in end_ids), len(new))
        end = min(end, self.remaining)
        if stopped_at is not None and stopped_at - len(self.generated) <= end:  # not in padding past the end
            end = stopped_at - len(self.generated)
            self.stopped_at = stopped_at
        self.generated.extend(new[:end])
        ended = bool(self.generated) and self.generated[-1] in end_ids
        self.finished = ended or self.stopped_at is not None or self.remaining <= 0


class RefillTrigger(StoppingCriteria):
    """End the whole segment once it has run `every` steps and at least `need` rows are done.

    A row is done when it has produced an end id, hit its budget (`budget`), or hit a stop string
    (`stops`, the segment's StopStrings, when there is one). Only the newest column is read per call.
    """

    def __init__(
        self,
        every: int,
        need: int,
        prompt_len: int,
        end_ids: frozenset[int],
        budget: RowBudget,
        stops: Callable[[], list[int | None]] | None = None,
    ):
        self.every, self.need, self.prompt_len = every, need, prompt_len
        self.end_ids, self.budget, self.stops = end_ids, budget, stops
        self.done: list[bool] | None = None
        self.seen = prompt_len  # the first input column not yet read

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        rows, width = input_ids.shape
        done = self.done if self.done is not None else [False] * rows
        for row, tokens in enumerate(input_ids[:, self.seen :].tolist()):
            done[row] = done[row] or any(token in self.end_ids for token in tokens)
        self.done, self.seen = done, width
        steps = width - self.prompt_len
        if steps < self.every:
            return torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
        stopped = self.stops() if self.stops is not None else [None] * rows
        left = self.budget.remaining.tolist()
        finished = sum(
            d or budget <= steps or at is not None for d, budget, at in zip(done, left, stopped, strict=True)
        )
        return torch.full((rows,), finished >= self.need, dtype=torch.bool, device=input_ids.device)


def rows_needed(rows: int, share: float) -> int:
    """Finished rows that end a segment of `rows` rows: `share` of them, at least one."""
    return max(1, math.ceil(share * rows - 1e-9))


def run_refilled(
    waiting: deque[RowState[T]],
    capacity: Callable[[], int],
    run_segment: Callable[[list[RowState[T]], bool], None],
    sizer: BatchSizer,
    free_memory: Callable[[], None],
) -> Iterator[RowState[T]]:
    """Run `waiting` rows in refilled segments; yield each row as soon as it finishes.

    `capacity()` is the batch size; `run_segment(active, more_waiting)` runs one segment, extending
    the rows it was given. On out-of-memory an adaptive `sizer` halves and the rows beyond the new
    size go back to the front of the queue with their progress kept. Any other error (or one that
    cannot shrink) fails the rows of that segment (each yielded with `error` set) and the rest go on.
    """
    active: list[RowState[T]] = []
    while waiting or active:
        size = max(1, min(capacity(), sizer.size))
        while len(active) > size:  # after a back-off
            waiting.appendleft(active.pop())
        while waiting and len(active) < size:
            active.append(waiting.popleft())
        backed_off = False
        try:
            run_segment(active, bool(waiting))
        except Exception as exc:
            if is_oom(exc) and sizer.shrink(len(active)):
                backed_off = True
            else:
                for row in active:
                    row.error, row.finished = exc, True
        if backed_off:  # out of memory: free it outside the handler (the traceback pins tensors)
            free_memory()
            continue
        yield from (row for row in active if row.finished)
        active = [row for row in active if not row.finished]


def check_refill(every: int, share: float, static_cache: bool, draft: bool) -> None:
    """Refuse option values and combinations that cannot refill, in one line each."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"refill_share must be a share of a batch's rows in (0, 1], got {share}; e.g. 0.9")
    if every < 0:
        raise ValueError(f"refill_every must be 0 (static batches) or a number of decode steps, got {every}")
    if every and static_cache:
        raise ValueError("refill_every and static_cache cannot be combined: a refilled batch changes shape")
    if every and draft:
        raise ValueError("refill_every needs batches; draft_model generates one request at a time")
