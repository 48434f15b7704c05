"""How the transformers backend forms its batches: prepared requests, groups of one sampling
setting sorted by prompt length, and left-padded model inputs.

Only the `runners.hf*` modules import this. It does not render prompts, size batches (see
`runners.hf_generation`) or call the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from evals.schema import Request, Sampling


@dataclass(frozen=True)
class Prepared:
    """A request with its rendered prompt ids. For a media request (`media`), the ids hold one
    placeholder per image or clip (media are not decoded yet) and serve only to sort the batch."""

    request: Request
    ids: list[int]
    media: bool = False


def group_by_sampling(items: Sequence[Prepared]) -> list[list[Prepared]]:
    """Group by sampling settings except the seed and the token budget (each row of a batch stops
    at its own `max_tokens`), each group sorted by prompt length (longest first)."""
    groups: dict[Sampling, list[Prepared]] = {}
    for item in items:
        key = dataclasses.replace(item.request.sampling, seed=0, max_tokens=1)
        groups.setdefault(key, []).append(item)
    return [sorted(group, key=lambda item: -len(item.ids)) for group in groups.values()]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask, padded on the left to the longest row."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask
