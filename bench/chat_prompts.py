"""Chat prompts shared by the speed benchmarks in this folder (generic, open-ended asks, so that
outputs run to the token budget). Builds Requests only; times nothing."""

from __future__ import annotations

import itertools

from evals.schema import Message, Request, Sampling

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


def build_requests(count: int, new_tokens: int) -> list[Request]:
    """`count` greedy chat requests (the asks in turn), each with a budget of `new_tokens`."""
    sampling = Sampling(max_tokens=new_tokens)
    asks = itertools.islice(itertools.cycle(ASKS), count)
    return [
        Request(key=str(i), sample_id=str(i), repeat=0, sampling=sampling, messages=(Message.user(a),))
        for i, a in enumerate(asks)
    ]
