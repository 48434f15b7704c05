"""Generation helpers for the transformers backend: per-row seeded sampling, stop strings, token
progress, batch sizes from the KV cache's footprint and free memory, and batch-size back-off on
out-of-memory.

Only the `runners.hf*` modules import this. It does not load models, render prompts or decode outputs.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

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
    `offsets[i]` is the number of tokens row i generated before this call's input (a refilled row
    resumes at its own position; `runners.hf_refill`), 0 by default.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        temperature: float,
        top_k: int,
        top_p: float,
        device: Any,
        prompt_len: int = 0,
        offsets: Sequence[int] | None = None,
    ):
        self.seeds = [int(seed) for seed in seeds]
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.device = torch.device(device)
        self.prompt_len = prompt_len
        self.offsets = list(offsets) if offsets is not None else [0] * len(self.seeds)
        if len(self.offsets) != len(self.seeds):
            raise ValueError(f"{len(self.offsets)} offsets for {len(self.seeds)} seeds")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = filter_logits(scores.float(), self.temperature, self.top_k, self.top_p)
        step = input_ids.shape[1] - self.prompt_len
        choices = torch.argmax(logits + self._gumbel_noise(logits, step), dim=-1, keepdim=True)
        return torch.full_like(scores, float("-inf")).scatter_(-1, choices, 0.0)

    def _gumbel_noise(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """One row of Gumbel noise per seed: argmax(logits + noise) samples softmax(logits)."""
        if len(self.seeds) != logits.shape[0]:
            raise ValueError(f"{len(self.seeds)} seeds for a batch of {logits.shape[0]} rows")
        uniform = torch.stack(
            [
                torch.rand(
                    logits.shape[-1], generator=self._generator(seed, offset + step), device=logits.device
                )
                for seed, offset in zip(self.seeds, self.offsets, strict=True)
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
    `stopped_at` is the same as with one token per call. Row i's generated text starts at column
    `starts[i]` of the input ids (default `prompt_len`): a refilled row's input carries what it
    generated before (`runners.hf_refill`), which a stop string may straddle; only the columns from
    `prompt_len` on are new and checked, and `stopped_at` counts from `starts[i]`.
    """

    def __init__(
        self,
        stops: Sequence[str],
        decode: Callable[[list[int]], str],
        prompt_len: int,
        rows: int,
        starts: Sequence[int] | None = None,
    ):
        self.stops = tuple(s for s in stops if s)
        self.decode = decode
        self.window = 2 * max((len(s) for s in self.stops), default=0) + 4
        self.starts = list(starts) if starts is not None else [prompt_len] * rows
        self.stopped_at: list[int | None] = [None] * rows  # number of generated tokens at the stop
        self.checked_to = prompt_len  # the first input column not yet looked at

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        width = input_ids.shape[1]
        low = max(0, min(self.checked_to, width - 1) - self.window)  # column of tails[row][0]
        tails = input_ids[:, low:].tolist()
        for row, tail in enumerate(tails):
            start = self.starts[row]
            for column in range(max(self.checked_to, start), width):
                if self.stopped_at[row] is not None:
                    break
                window = tail[max(start, column + 1 - self.window) - low : column + 1 - low]
                if any(s in self.decode(window) for s in self.stops):
                    self.stopped_at[row] = column + 1 - start
        self.checked_to = width
        done = [at is not None for at in self.stopped_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class RowBudget(StoppingCriteria):
    """Mark row i done once it has generated `remaining[i]` tokens in this call: rows of one batch
    with different budgets (or, refilled, different budgets left); `max_new_tokens` is the largest."""

    def __init__(self, remaining: Sequence[int], prompt_len: int):
        self.remaining = torch.tensor(list(remaining), dtype=torch.long)
        self.prompt_len = prompt_len

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        steps = input_ids.shape[1] - self.prompt_len
        return (self.remaining <= steps).to(input_ids.device)


class TokenCounter(StoppingCriteria):
    """Report generated tokens while a batch runs (for progress bars); never stops a row.

    Each call counts the new tokens of every row that has not ended (one per step, or a run of them
    when assisted generation accepts several drafted tokens at once). A row ends at an end id, at
    `limits[i]` new tokens (its budget in a batch of larger ones), or at its stop string (`stopped`,
    the batch's `StopStrings.stopped_at`, counted from `offsets[i]` tokens generated before this
    call's input); the padding after that is not counted."""

    def __init__(
        self,
        callback: Callable[[int], None],
        end_ids: Sequence[int],
        prompt_len: int,
        rows: int,
        limits: Sequence[int] | None = None,
        stopped: Callable[[], list[int | None]] | None = None,
        offsets: Sequence[int] | None = None,
    ):
        self.callback = callback
        self.end_ids = frozenset(end_ids)
        self.prompt_len = prompt_len
        self.done = [False] * rows
        self.limits = list(limits) if limits is not None else None
        self.stopped = stopped
        self.offsets = list(offsets) if offsets is not None else [0] * rows
        self.seen = 0  # generated steps already counted

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_len + self.seen :].tolist()
        stopped = self.stopped() if self.stopped is not None else [None] * len(new)
        count = 0
        for row, tokens in enumerate(new):
            for step, token in enumerate(tokens, start=self.seen + 1):
                if self.done[row]:
                    break
                count += 1
                limit = self.limits[row] if self.limits is not None else None
                at = stopped[row]
                self.done[row] = (
                    token in self.end_ids
                    or (limit is not None and step >= limit)
                    or (at is not None and self.offsets[row] + step >= at)
                )
        self.seen += len(new[0]) if new else 0
        if count:
            self.callback(count)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def sampling_processors(
    sampling: Any, seeds: Sequence[int], device: Any, prompt_len: int, offsets: Sequence[int] | None = None
) -> LogitsProcessorList:
    """The seeded sampler for a sampled batch (`sampling.temperature` > 0), else nothing (greedy)."""
    processors = LogitsProcessorList()
    if sampling.temperature > 0:
        processors.append(
            SeededSampler(
                seeds, sampling.temperature, sampling.top_k, sampling.top_p, device, prompt_len, offsets
            )
        )
    return processors


def stop_criteria(
    stopper: StopStrings | None,
    callback: Callable[[int], None] | None,
    end_ids: Sequence[int],
    prompt_len: int,
    limits: Sequence[int],
    offsets: Sequence[int] | None = None,
) -> StoppingCriteriaList:
    """Stop strings and the progress counter, where there are any (`limits`: each row's budget in
    this call; `offsets`: tokens each row generated before it)."""
    criteria = StoppingCriteriaList([stopper] if stopper else [])
    if callback is not None:
        stopped = (lambda: stopper.stopped_at) if stopper is not None else None
        criteria.append(TokenCounter(callback, end_ids, prompt_len, len(limits), limits, stopped, offsets))
    return criteria


# --- batch size from memory -----------------------------------------------------------------

USABLE_SHARE = 0.85  # of the free memory a batch may plan to fill (allocator fragmentation, temporaries)


@dataclass(frozen=True)
class KVFootprint:
    """Bytes a sequence costs while it generates, per token: the KV cache of the layers that keep
    every token (`full`), of the sliding-window layers that keep at most `window` tokens
    (`windowed`), and the transient activations of a prompt token during prefill (`prefill`), plus
    the per-row logits buffers of one step (`per_row`)."""

    full: int
    windowed: int
    window: int
    prefill: int
    per_row: int

    def row_bytes(self, prompt_tokens: int, max_tokens: int) -> int:
        """Peak bytes of one row with a prompt of `prompt_tokens` and `max_tokens` to generate: the
        larger of the prompt's KV plus its prefill temporaries and the KV at the end of the budget."""
        prefill_peak = self.kv_bytes(prompt_tokens) + self.prefill * prompt_tokens
        return max(prefill_peak, self.kv_bytes(prompt_tokens + max_tokens)) + self.per_row

    def kv_bytes(self, tokens: int) -> int:
        """KV-cache bytes of one sequence of `tokens` tokens."""
        return self.full * tokens + self.windowed * min(tokens, self.window)


def kv_footprint(config: Any, dtype_bytes: int) -> KVFootprint:
    """The footprint of a transformers config (the text config of a multimodal one is used): per
    layer, keys and values of `num_key_value_heads` x `head_dim` each (a layer's own values from
    Gemma-style `per_layer_config` where present), sliding layers capped at `sliding_window` tokens,
    layers that reuse another layer's KV (`num_kv_shared_layers`) counted as free."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = int(text.num_hidden_layers)
    types = list(getattr(text, "layer_types", None) or ["full_attention"] * layers)
    sharing = list(getattr(text, "kv_sharing_modes", None) or [None] * layers)
    window = int(getattr(text, "sliding_window", None) or 0)
    full = windowed = 0
    for index, layer_type in enumerate(types):
        if sharing[index] == "reuse":
            continue
        heads, head_dim = _layer_kv_shape(text, index)
        per_token = 2 * heads * head_dim * dtype_bytes
        if layer_type == "sliding_attention" and window > 0:
            windowed += per_token
        else:
            full += per_token
    hidden = int(text.hidden_size)
    intermediate = int(getattr(text, "intermediate_size", None) or 4 * hidden)
    vocab = int(text.vocab_size)
    return KVFootprint(
        full=full,
        windowed=windowed,
        window=window,
        prefill=(3 * intermediate + 6 * hidden) * dtype_bytes,  # one layer's MLP and residual temporaries
        per_row=4 * vocab * 4,  # float32 logits, soft-capped / processed copies of one step
    )


def _layer_kv_shape(text: Any, index: int) -> tuple[int, int]:
    """(KV heads, head dim) of layer `index`: the per-layer override where the config has one."""
    layer = text
    per_layer = getattr(text, "per_layer_config", None)
    if per_layer is not None:
        try:
            layer = per_layer[index]
        except (KeyError, IndexError, TypeError):
            layer = text
    heads = getattr(layer, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(layer, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return int(heads), int(head_dim)


def batch_for_budget(
    footprint: KVFootprint, free_bytes: int, prompt_tokens: int, max_tokens: int, cap: int
) -> int:
    """The most rows (1..`cap`) whose peak footprint fits in `USABLE_SHARE` of `free_bytes`."""
    fits = int(free_bytes * USABLE_SHARE) // max(1, footprint.row_bytes(prompt_tokens, max_tokens))
    return max(1, min(cap, fits))


def free_memory_bytes(device: Any) -> int:
    """Free memory where the model runs: the accelerator's free memory (CUDA), else the host's
    available memory (Linux MemAvailable, else the physical pages)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        idle = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's own pool
        return int(torch.cuda.mem_get_info(device)[0]) + idle
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


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


def resolve_batch_sizer(batch_size: int | str, max_batch_size: int) -> BatchSizer:
    """The sizer for the `batch_size` option: adaptive from `max_batch_size` for "auto", else fixed."""
    if batch_size == "auto":
        return BatchSizer(max_batch_size, adaptive=True)
    if (isinstance(batch_size, str) and not batch_size.isdigit()) or int(batch_size) < 1:
        raise ValueError(
            f"batch_size must be 'auto' or a positive integer, got {batch_size!r}; e.g. batch_size=8"
        )
    return BatchSizer(int(batch_size), adaptive=False)


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
            free_accelerator_memory()
            pending.appendleft(chunk)
            continue
        yield results


def free_accelerator_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
