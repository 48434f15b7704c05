"""What every backend builds its Completions from: the split of a decoded output into reasoning
and final answer, and the one error Completion for a request that failed.

`split_output` understands Gemma 4 channels (`<|channel>thought\\n...<channel|>answer`, decoded
with special tokens kept) and `<think>...</think>` tags. `error_completion` turns a failure into a
Completion with a one-line `error`. It does not decode tokens and does not extract answers: tasks
do that on the returned final answer only.
"""

from __future__ import annotations

from dataclasses import dataclass

from evals.schema import Completion, Request

GEMMA4_OPEN = "<|channel>"
GEMMA4_CLOSE = "<channel|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Special tokens that may trail a decoded answer and are never part of it.
END_MARKERS = ("<turn|>", "<eos>", "<end_of_turn>", "<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>")
PAD_MARKERS = ("<pad>",)


@dataclass(frozen=True)
class SplitOutput:
    answer: str
    reasoning: str | None
    thought_open: bool  # a thought block was opened and never closed


def split_output(raw: str) -> SplitOutput:
    """Return the final answer, the reasoning (if any) and whether a thought block stayed open."""
    text = _strip_end_markers(raw)
    for open_tag, close_tag, label in (
        (GEMMA4_OPEN, GEMMA4_CLOSE, "thought"),
        (THINK_OPEN, THINK_CLOSE, ""),
    ):
        if open_tag in text or close_tag in text:
            return _split(text, open_tag, close_tag, label)
    return SplitOutput(answer=text.strip(), reasoning=None, thought_open=False)


def _split(text: str, open_tag: str, close_tag: str, label: str) -> SplitOutput:
    last_close = text.rfind(close_tag)
    last_open = text.rfind(open_tag)
    if last_open > last_close:  # the last block never closed: no usable final answer
        reasoning = _block_body(text[last_open + len(open_tag) :], label)
        return SplitOutput(answer="", reasoning=reasoning, thought_open=True)
    head, answer = text[:last_close], text[last_close + len(close_tag) :]
    bodies = [_block_body(chunk, label) for chunk in head.split(open_tag) if chunk.strip()]
    reasoning = "\n".join(b for b in bodies if b) if bodies else ""
    return SplitOutput(answer=_strip_pads(answer).strip(), reasoning=reasoning, thought_open=False)


def _block_body(chunk: str, label: str) -> str:
    chunk = chunk.replace(GEMMA4_CLOSE, "").replace(THINK_CLOSE, "")
    if label and chunk.startswith(label):
        chunk = chunk[len(label) :]
    return chunk.strip()


def _strip_end_markers(text: str) -> str:
    text = _strip_pads(text)
    changed = True
    while changed:
        changed = False
        stripped = text.rstrip()
        for marker in END_MARKERS:
            if stripped.endswith(marker):
                text = stripped[: -len(marker)]
                changed = True
    return text


def _strip_pads(text: str) -> str:
    for pad in PAD_MARKERS:
        text = text.replace(pad, "")
    return text


# --- failures -----------------------------------------------------------------------------

_ERROR_LIMIT = 300


def error_message(failure: BaseException) -> str:
    """One line: `Type: first line of the message` (just the type when there is no message),
    whitespace collapsed, at most 300 characters."""
    text = str(failure).strip()
    first = " ".join(text.splitlines()[0].split()) if text else ""
    line = f"{type(failure).__name__}: {first}" if first else type(failure).__name__
    return line if len(line) <= _ERROR_LIMIT else line[: _ERROR_LIMIT - 3] + "..."


def error_completion(
    request: Request,
    failure: BaseException | str,
    *,
    seconds: float = 0.0,
    prompt_tokens: int = 0,
    timed_out: bool = False,
) -> Completion:
    """The Completion of a request that failed: no text, finish_reason "error" ("timeout" when it
    ran out of time), and `failure` as its error (an exception through `error_message`, a string
    as given: a reason the caller already wrote as one line)."""
    return Completion(
        key=request.key,
        text="",
        finish_reason="timeout" if timed_out else "error",
        prompt_tokens=prompt_tokens,
        seconds=seconds,
        error=failure if isinstance(failure, str) else error_message(failure),
    )
