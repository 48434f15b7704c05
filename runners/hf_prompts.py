"""Prompt helpers of the transformers backend: text-only chat messages as template dicts, exactly
one BOS at the start of a prompt, and cutting an output at its first stop string.

Only the `runners.hf*` modules import this. It does not load tokenizers or generate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals.schema import AudioPart, ImagePart, Message, TextPart


class UnsupportedInput(ValueError):
    """A request part this backend cannot handle (e.g. media without a processor)."""


def chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Text-only messages as chat-template dicts (text content as a plain string)."""
    out = []
    for message in messages:
        for part in message.content:
            if isinstance(part, ImagePart | AudioPart):
                raise UnsupportedInput(f"{part.type} part in a text-only prompt")
            if not isinstance(part, TextPart):
                raise UnsupportedInput(f"unknown message part {part!r}")
        out.append({"role": message.role, "content": message.text})
    return out


def one_bos(ids: Sequence[int], bos_id: int | None, adds_bos: bool) -> list[int]:
    """Collapse leading BOS tokens to one; prepend one if missing and the tokenizer normally adds it."""
    ids = list(ids)
    if bos_id is None:
        return ids
    leading = next((i for i, token in enumerate(ids) if token != bos_id), len(ids))
    if leading > 1:
        return ids[leading - 1 :]
    if leading == 0 and adds_bos:
        return [bos_id, *ids]
    return ids


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the first occurrence of any stop string; say whether one was found."""
    positions = [pos for pos in (text.find(s) for s in stops if s) if pos >= 0]
    return (text[: min(positions)], True) if positions else (text, False)
