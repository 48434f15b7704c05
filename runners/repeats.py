"""Grouping the repeats of one prompt, for backends that send them as one call with `n` choices.

Tasks build the repeats of a prompt as requests that are identical except for `repeat` (and its
key) and a seed that rises by one per repeat. `group_repeats` finds runs of such requests with
consecutive seeds s, s+1, ..., so that a backend can send each run once with `n` = its length and
seed s (servers and vLLM seed choice i with s+i). The openai, llama.cpp and vLLM backends share it.
It does not talk to any server and does not decide whether a server honours `n`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from evals.schema import Request


@dataclass(frozen=True)
class RepeatGroup:
    """Requests sent as one call: a single request, or repeats of one prompt with consecutive
    seeds (in seed order), sent once with n = their count and the first one's seed."""

    requests: tuple[Request, ...]

    @property
    def n(self) -> int:
        return len(self.requests)

    @property
    def first(self) -> Request:
        return self.requests[0]


def prompt_identity(request: Request) -> Hashable:
    """What the repeats of one prompt share: messages or prompt, and sampling except the seed."""
    return (request.messages, request.prompt, dataclasses.replace(request.sampling, seed=0))


def group_repeats(requests: Sequence[Request], *, use_n: bool, n_cap: int | None = None) -> list[RepeatGroup]:
    """One group per request, or (`use_n`) one per run of consecutive seeds among the repeats of
    one prompt, each at most `n_cap` long. Groups keep the order of their first request."""
    if not use_n:
        return [RepeatGroup((request,)) for request in requests]
    by_prompt: dict[Hashable, list[tuple[int, Request]]] = {}
    for index, request in enumerate(requests):
        by_prompt.setdefault(prompt_identity(request), []).append((index, request))
    groups: list[tuple[int, RepeatGroup]] = []
    for members in by_prompt.values():
        run: list[tuple[int, Request]] = []
        for item in sorted(members, key=lambda item: item[1].sampling.seed):
            previous = run[-1][1] if run else None
            follows = previous is not None and item[1].sampling.seed == previous.sampling.seed + 1
            if run and (not follows or (n_cap is not None and len(run) >= n_cap)):
                groups.append((min(i for i, _ in run), RepeatGroup(tuple(r for _, r in run))))
                run = []
            run.append(item)
        if run:
            groups.append((min(i for i, _ in run), RepeatGroup(tuple(r for _, r in run))))
    return [group for _, group in sorted(groups, key=lambda item: item[0])]


def split_group(group: RepeatGroup, cap: int) -> list[RepeatGroup]:
    """`group` cut into consecutive groups of at most `cap` requests."""
    size = max(cap, 1)
    return [RepeatGroup(group.requests[i : i + size]) for i in range(0, group.n, size)]
