"""What the speed benchmarks in this folder share: generic open-ended chat asks (so outputs run to
the token budget), the Requests built from them, timing one `generate` pass over them, and the
figure format. No benchmark logic of its own."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from evals.schema import Backend, Message, Request, Sampling

ASKS = (
    "Explain in two sentences why the sky is blue.",
    "List the first ten prime numbers, separated by commas.",
    "Write a short Python function that reverses a string.",
    "What is 17 times 23? Show the steps.",
    "Summarise the plot of Romeo and Juliet in three sentences.",
    "Translate 'good morning, how are you?' into French.",
    "Give three tips for writing clear technical documentation.",
    "Describe how a hash table works.",
)


def build_requests(count: int, new_tokens: int, unique: bool = False) -> list[Request]:
    """`count` greedy chat requests (the asks in turn), each with a budget of `new_tokens`. With
    `unique` each ask is numbered, so that no two requests are the same (the harness generates
    identical requests once and shares the completion)."""
    sampling = Sampling(max_tokens=new_tokens)
    asks = itertools.islice(itertools.cycle(ASKS), count)
    return [
        Request(
            key=str(i),
            sample_id=str(i),
            repeat=0,
            sampling=sampling,
            messages=(Message.user(f"{a} (question {i + 1})" if unique else a),),
        )
        for i, a in enumerate(asks)
    ]


def timed_generate(
    backend: Backend, requests: list[Request], sync: Callable[[], None] | None = None
) -> tuple[float, int, list[str]]:
    """(seconds, generated tokens, raw outputs in request order) of one `backend.generate` pass;
    `sync` (e.g. torch.cuda.synchronize) runs before the clock stops. Any error ends the benchmark."""
    start = time.perf_counter()
    completions = {c.key: c for c in backend.generate(requests)}
    if sync is not None:
        sync()
    seconds = time.perf_counter() - start
    errors = [c.error for c in completions.values() if c.error]
    if errors:
        raise SystemExit(f"backend errors: {errors[:3]}")
    ordered = [completions[r.key] for r in requests]
    return seconds, sum(c.completion_tokens for c in ordered), [c.raw for c in ordered]


def rate(seconds: float, tokens: int) -> str:
    return f"{seconds:7.2f} s  {tokens:5d} tokens  {tokens / seconds:7.1f} tok/s"
