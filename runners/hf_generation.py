"""Generation helpers for the transformers backend: per-row seeded sampling, stop strings, and
batch-size back-off on out-of-memory.

Only `runners.hf` imports this module. It does not load models, render prompts or decode outputs.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
from transformers import LogitsProcessor, StoppingCriteria

T = TypeVar("T")
R = TypeVar("R")


# --- sampling -----------------------------------------------------------------------------


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Apply temperature, then top-k, then top-p (nucleus) to float logits of shape (batch, vocab)."""
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # keeps the token that crosses top_p
        drop_sorted = mass_before > top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


SAMPLER_VERSION = 2  # bump whenever the same seed would draw different tokens (part of the fingerprint)


class SeededSampler(LogitsProcessor):
    """Sample each row with its own seed and force that token.

    Used with greedy decoding (`do_sample=False`): the returned scores are 0 for the sampled token
    and -inf elsewhere. The noise for row i at generated position t comes from a generator seeded
    with (`seeds[i]`, t) alone, so a row's tokens depend on its seed and prompt but not on the other
    rows, nor on how often the processor is called: assisted (MTP) generation, which scores several
    drafted positions per call and discards the rejected ones, samples exactly the same tokens.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        temperature: float,
        top_k: int,
        top_p: float,
        device: Any,
        prompt_len: int = 0,
    ):
        self.seeds = [int(seed) for seed in seeds]
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.device = torch.device(device)
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = filter_logits(scores.float(), self.temperature, self.top_k, self.top_p)
        position = input_ids.shape[1] - self.prompt_len
        choices = torch.argmax(logits + self._gumbel_noise(logits, position), dim=-1, keepdim=True)
        return torch.full_like(scores, float("-inf")).scatter_(-1, choices, 0.0)

    def _gumbel_noise(self, logits: torch.Tensor, position: int) -> torch.Tensor:
        """One row of Gumbel noise per seed: argmax(logits + noise) samples softmax(logits)."""
        if len(self.seeds) != logits.shape[0]:
            raise ValueError(f"{len(self.seeds)} seeds for a batch of {logits.shape[0]} rows")
        uniform = torch.stack(
            [
                torch.rand(logits.shape[-1], generator=self._generator(seed, position), device=logits.device)
                for seed in self.seeds
            ]
        )
        return -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))

    def _generator(self, seed: int, position: int) -> torch.Generator:
        key = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
        return torch.Generator(device=self.device).manual_seed(int.from_bytes(key, "little") >> 1)


# --- stopping -----------------------------------------------------------------------------


class StopStrings(StoppingCriteria):
    """Stop a row once its generated text contains one of `stops`; remember the step it stopped.

    Only the last few tokens are decoded per step (enough to contain any stop string), so the cost
    does not grow with the output length. When a call brings several new tokens (assisted / MTP
    generation accepts a run of drafted tokens at once), each new step is checked in turn, so
    `stopped_at` is the same as with one token per call.
    """

    def __init__(self, stops: Sequence[str], decode: Callable[[list[int]], str], prompt_len: int, rows: int):
        self.stops = tuple(s for s in stops if s)
        self.decode = decode
        self.prompt_len = prompt_len
        self.window = 2 * max((len(s) for s in self.stops), default=0) + 4
        self.stopped_at: list[int | None] = [None] * rows  # number of generated tokens at the stop
        self.checked = 0  # generated steps already looked at

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_len :]
        steps = generated.shape[1]
        first = min(self.checked + 1, steps)
        tails = generated[:, max(0, first - self.window) :].tolist()
        offset = max(0, first - self.window)  # generated index of tails[row][0]
        for row, tail in enumerate(tails):
            for step in range(first, steps + 1):
                if self.stopped_at[row] is not None:
                    break
                window = tail[max(0, step - self.window - offset) : step - offset]
                if any(s in self.decode(window) for s in self.stops):
                    self.stopped_at[row] = step
        self.checked = steps
        done = [at is not None for at in self.stopped_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class TokenCounter(StoppingCriteria):
    """Report generated tokens while a batch runs (for progress bars); never stops a row.

    Each call counts the new tokens of every row that has not yet produced an end id (one per
    step, or a run of them when assisted generation accepts several drafted tokens at once)."""

    def __init__(self, callback: Callable[[int], None], end_ids: Sequence[int], prompt_len: int, rows: int):
        self.callback = callback
        self.end_ids = frozenset(end_ids)
        self.prompt_len = prompt_len
        self.done = [False] * rows
        self.seen = 0  # generated steps already counted

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_len + self.seen :].tolist()
        count = 0
        for row, tokens in enumerate(new):
            for token in tokens:
                if self.done[row]:
                    break
                count += 1
                self.done[row] = token in self.end_ids
        self.seen += len(new[0]) if new else 0
        if count:
            self.callback(count)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


# --- out-of-memory back-off ---------------------------------------------------------------


def is_oom(exc: BaseException) -> bool:
    """True for torch's out-of-memory error or a RuntimeError that reports one."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


class BatchSizer:
    """The current batch size: fixed, or adaptive (halved on out-of-memory and remembered)."""

    def __init__(self, size: int, adaptive: bool):
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        self.size = size
        self.adaptive = adaptive

    def shrink(self, failed: int) -> bool:
        """Halve below a failed batch of `failed` rows; False when it cannot shrink further."""
        if not self.adaptive or failed <= 1:
            return False
        self.size = min(self.size, max(1, failed // 2))
        return True


def generate_with_backoff(
    batch: Sequence[T], generate: Callable[[Sequence[T]], list[R]], sizer: BatchSizer
) -> Iterator[list[R]]:
    """Run `generate` on `batch` in chunks of `sizer.size`, yielding each chunk's results in order.

    On out-of-memory an adaptive sizer is halved and the failed chunk is retried in smaller chunks;
    the smaller size is kept for later batches. Other errors, and out-of-memory at size 1 or with a
    fixed size, propagate.
    """
    pending: deque[Sequence[T]] = deque([batch])
    while pending:
        chunk = pending.popleft()
        if len(chunk) > sizer.size:
            pieces = [chunk[i : i + sizer.size] for i in range(0, len(chunk), sizer.size)]
            pending.extendleft(reversed(pieces))
            continue
        try:
            results: list[R] | None = generate(chunk)
        except Exception as exc:
            if not (is_oom(exc) and sizer.shrink(len(chunk))):
                raise
            results = None
        if results is None:  # out of memory: free it outside the handler (the traceback pins tensors)
            _free_accelerator_memory()
            pending.appendleft(chunk)
            continue
        yield results


def _free_accelerator_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
