"""Store each prompt of a run once, with shared text stored once: prompts.jsonl.

Sample records name their prompt by `prompt_id` (a hash of the rendered request without its
sampling). Few-shot prompts repeat the same worked examples in thousands of prompts, so text is
cut into paragraphs (after each blank line) and each distinct paragraph is stored once; a prompt
lists its paragraphs by id. Reading joins them back exactly. Media parts are kept as references
(path or hash), never as bytes. This module does not decide what a prompt is; requests do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from typing import Any

from evals.schema import Part, Request, TextPart, stable_hash

_PARAGRAPH_END = re.compile(r"(?<=\n\n)")


def prompt_id(request: Request) -> str:
    """Identity of the prompt itself: messages or raw prompt, media by hash (not sampling, key or
    repeat). Equal ids mean the model saw the same input."""
    identity = request.cache_identity()
    return stable_hash({"prompt": identity["prompt"], "messages": identity["messages"]})[:24]


class PromptStore:
    """Collects prompts while sample records are built; `lines()` gives prompts.jsonl."""

    def __init__(self) -> None:
        self._blocks: dict[str, str] = {}
        self._prompts: dict[str, dict[str, Any]] = {}

    def add(self, request: Request) -> str:
        pid = prompt_id(request)
        if pid not in self._prompts:
            if request.prompt is not None:
                self._prompts[pid] = {"id": pid, "prompt": self._split(request.prompt)}
            else:
                messages = [
                    {"role": m.role, "content": [self._part(p) for p in m.content]} for m in request.messages
                ]
                self._prompts[pid] = {"id": pid, "messages": messages}
        return pid

    def lines(self) -> Iterator[dict[str, Any]]:
        """Text blocks first, then prompts (a reader may stream the file once)."""
        for bid, text in self._blocks.items():
            yield {"block": bid, "text": text}
        yield from self._prompts.values()

    def _split(self, text: str) -> list[str]:
        ids = []
        for piece in _PARAGRAPH_END.split(text):
            if piece:
                bid = hashlib.sha256(piece.encode()).hexdigest()[:16]
                self._blocks.setdefault(bid, piece)
                ids.append(bid)
        return ids

    def _part(self, part: Part) -> dict[str, Any]:
        if isinstance(part, TextPart):
            return {"type": "text", "text": self._split(part.text)}
        return {"type": part.type, "path": part.path, "sha256": part.sha256}


def read_prompts(lines: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """prompt id -> the prompt as a reader wants it: a string (raw prompt) or a list of
    {"role", "content": [text or "<image PATH>"/"<audio PATH>"]} messages."""
    blocks: dict[str, str] = {}
    prompts: dict[str, Any] = {}
    for line in lines:
        if "block" in line:
            blocks[line["block"]] = line["text"]
        elif "prompt" in line:
            prompts[line["id"]] = "".join(blocks[b] for b in line["prompt"])
        else:
            prompts[line["id"]] = [
                {"role": m["role"], "content": [_part_text(p, blocks) for p in m["content"]]}
                for m in line["messages"]
            ]
    return prompts


def _part_text(part: dict[str, Any], blocks: dict[str, str]) -> str:
    if part["type"] == "text":
        return "".join(blocks[b] for b in part["text"])
    return f"<{part['type']} {part.get('path') or part['sha256'][:12]}>"
