"""The OpenAI-compatible wire format: Requests to JSON payloads, response choices to Completions.

Pure functions, no I/O except reading media files named by a request. `chat_payload` builds the
body of `POST /v1/chat/completions` (text, `image_url` data URIs, `input_audio` base64 clips,
sampling settings, `chat_template_kwargs.enable_thinking`); `completion_payload` builds the body of
`POST /v1/completions` for raw-`prompt` requests. `completion_from_choice` turns one response choice
into a `Completion`: answer and reasoning (from `reasoning_content`/`reasoning`, or from Gemma 4
channel / `<think>` markers left in the content), finish reason, thought left open, token counts.

It does not send anything, retry, or decide which requests share one `n` > 1 call: `runners.openai`
does that. Media that cannot be read or recognised raise `MediaError` (a ValueError) naming the
file and the fix; the backend turns that into the request's error Completion.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from typing import Any

from evals.schema import AudioPart, Completion, FinishReason, ImagePart, Message, Part, Request, TextPart
from runners.outputs import split_output

CHAT_ENDPOINT = "chat/completions"
COMPLETION_ENDPOINT = "completions"

_STOP_REASONS = {"stop", "eos", "stop_sequence", "end_turn", "tool_calls", "function_call"}
_LENGTH_REASONS = {"length", "max_tokens"}


class MediaError(ValueError):
    """An image or audio part that cannot be read or whose format is not recognised."""


# --- request side -------------------------------------------------------------------------


def endpoint(request: Request) -> str:
    """The path under the API base (`.../v1/`) that takes this request."""
    return COMPLETION_ENDPOINT if request.prompt is not None else CHAT_ENDPOINT


def payload(request: Request, model: str, *, n: int = 1, extra_body: dict[str, Any] | None = None) -> dict:
    """`chat_payload` or `completion_payload`, whichever the request needs."""
    build = completion_payload if request.prompt is not None else chat_payload
    return build(request, model, n=n, extra_body=extra_body)


def chat_payload(
    request: Request, model: str, *, n: int = 1, extra_body: dict[str, Any] | None = None
) -> dict:
    """The JSON body of POST /v1/chat/completions for a chat request."""
    if request.prompt is not None:
        raise ValueError(f"request {request.key} has a raw prompt; build it with completion_payload")
    body: dict[str, Any] = {"model": model, "messages": [wire_message(m) for m in request.messages]}
    body.update(sampling_fields(request, n))
    body["chat_template_kwargs"] = {"enable_thinking": request.sampling.thinking}
    return merge_extra(body, extra_body)


def completion_payload(
    request: Request, model: str, *, n: int = 1, extra_body: dict[str, Any] | None = None
) -> dict:
    """The JSON body of POST /v1/completions for a raw-prompt request (no chat template)."""
    if request.prompt is None:
        raise ValueError(f"request {request.key} has chat messages; build it with chat_payload")
    body: dict[str, Any] = {"model": model, "prompt": request.prompt}
    body.update(sampling_fields(request, n))
    return merge_extra(body, extra_body)


def sampling_fields(request: Request, n: int = 1) -> dict[str, Any]:
    """max_tokens, temperature, top_p, seed; top_k only when > 0, stop only when given, n only when > 1."""
    sampling = request.sampling
    fields: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": sampling.seed,
    }
    if sampling.top_k > 0:
        fields["top_k"] = sampling.top_k
    if sampling.stop:
        fields["stop"] = list(sampling.stop)
    if n > 1:
        fields["n"] = n
    return fields


def merge_extra(body: dict[str, Any], extra_body: dict[str, Any] | None) -> dict[str, Any]:
    """`body` updated with `extra_body`; dict values present in both are merged one level deep
    (so `{"chat_template_kwargs": {"reasoning_effort": "high"}}` keeps `enable_thinking`)."""
    for name, value in (extra_body or {}).items():
        if isinstance(value, dict) and isinstance(body.get(name), dict):
            body[name] = {**body[name], **value}
        else:
            body[name] = value
    return body


def wire_message(message: Message) -> dict[str, Any]:
    """One chat message: plain string content when it is text only, else a list of content parts."""
    if all(isinstance(part, TextPart) for part in message.content):
        return {"role": message.role, "content": message.text}
    return {"role": message.role, "content": [wire_part(part) for part in message.content]}


def wire_part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return {"type": "image_url", "image_url": {"url": image_data_uri(part)}}
    if isinstance(part, AudioPart):
        data = media_bytes(part)
        encoded = base64.b64encode(data).decode("ascii")
        return {
            "type": "input_audio",
            "input_audio": {"data": encoded, "format": audio_format(data, part.path)},
        }
    raise ValueError(f"unknown message part {type(part).__name__}; use TextPart, ImagePart or AudioPart")


def media_bytes(part: ImagePart | AudioPart) -> bytes:
    """The part's encoded bytes, read from its path when it carries none."""
    if part.data is not None:
        return part.data
    if part.path is None:
        raise MediaError(f"{part.type} part has neither path nor data; give one of them")
    try:
        with open(part.path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MediaError(f"{part.type} file '{part.path}' cannot be read ({reason}); check the path") from exc


def image_data_uri(part: ImagePart) -> str:
    data = media_bytes(part)
    return f"data:{image_mime(data, part.path)};base64,{base64.b64encode(data).decode('ascii')}"


def image_mime(data: bytes, path: str | None = None) -> str:
    """The image's MIME type from its first bytes (or, failing that, its file name)."""
    signatures = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"BM", "image/bmp"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
    )
    for magic, mime in signatures:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed = mimetypes.guess_type(path)[0] if path else None
    if guessed and guessed.startswith("image/"):
        return guessed
    raise MediaError(
        f"image {_name(path)} is not PNG, JPEG, GIF, WEBP, BMP or TIFF (first bytes {data[:8]!r}); "
        "convert it to PNG"
    )


def audio_format(data: bytes, path: str | None = None) -> str:
    """The `input_audio.format` of a clip ("wav", "mp3", "flac", "ogg") from its first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"fLaC"):
        return "flac"
    if data.startswith(b"OggS"):
        return "ogg"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    raise MediaError(
        f"audio {_name(path)} is not WAV, FLAC, MP3 or OGG (first bytes {data[:8]!r}); convert it to WAV"
    )


def _name(path: str | None) -> str:
    return f"'{path}'" if path else "(bytes)"


# --- response side ------------------------------------------------------------------------


def completion_from_choice(
    key: str, choice: dict[str, Any], usage: dict[str, Any] | None, seconds: float
) -> Completion:
    """One response choice (chat `message` or completions `text`) as a Completion.

    `text` is the answer only; `reasoning` comes from `message.reasoning_content` (llama-server,
    vLLM, SGLang) or `message.reasoning` (vLLM >= 0.10, Ollama), or from thought markers left in
    the content; `raw` is the content exactly as sent (a server-side reasoning parser keeps the
    thought out of it). `thought_open` is True when a thought block never closed, or the budget ran
    out while the server was still returning reasoning and no answer. Token counts come from
    `usage` (for one choice; see `share_usage` when n > 1).
    """
    message = choice.get("message")
    if isinstance(message, dict):
        content = message.get("content") or ""
        server_reasoning = message.get("reasoning_content") or message.get("reasoning") or None
    else:
        content = choice.get("text") or ""
        server_reasoning = None
    if not isinstance(content, str):
        raise ValueError(
            f"choice content is {type(content).__name__}, not text; the server answered in an unknown shape"
        )
    split = split_output(content)
    finish, error = finish_reason(choice.get("finish_reason"))
    reasoning = "\n".join(r for r in (server_reasoning, split.reasoning) if r) or None
    cut_in_thought = finish == "length" and bool(server_reasoning) and not split.answer
    usage = usage or {}
    return Completion(
        key=key,
        text=split.answer,
        raw=content,
        reasoning=reasoning,
        thought_open=split.thought_open or cut_in_thought,
        finish_reason=finish,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        seconds=seconds,
        error=error,
    )


def finish_reason(reason: Any) -> tuple[FinishReason, str | None]:
    """The Completion finish reason for a server's, and an error text when it is neither a stop
    nor a length limit (e.g. "content_filter", "abort")."""
    if reason is None or reason in _STOP_REASONS:
        return "stop", None
    if reason in _LENGTH_REASONS:
        return "length", None
    return "error", f"server finished the completion with finish_reason '{reason}'"


def share_usage(
    usage: dict[str, Any] | None,
    choices: Sequence[dict[str, Any]],
    max_tokens: int,
    *,
    covers_all: bool = True,
) -> list[dict[str, int]]:
    """Per-choice usage for an n > 1 response, which reports one usage for all its choices.

    Every choice shares the prompt. A choice cut by the budget has exactly `max_tokens`; the other
    choices share the remaining reported tokens in proportion to their output length. Set
    `covers_all=False` for servers whose usage counts only the first choice (llama-server): the
    total is then extrapolated from the first choice's length. Counts are estimates either way.
    """
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    reported = int(usage.get("completion_tokens") or 0)
    lengths = [len(_choice_output(c)) for c in choices]
    cut = [finish_reason(c.get("finish_reason"))[0] == "length" for c in choices]
    if not covers_all and choices:
        first = max_tokens if cut[0] else reported
        per_char = first / lengths[0] if lengths[0] else 0.0
        counts = [max_tokens if cut[i] else round(lengths[i] * per_char) for i in range(len(choices))]
        if not cut[0]:
            counts[0] = reported
    else:
        rest = max(reported - max_tokens * sum(cut), 0)
        free = sum(length for length, c in zip(lengths, cut, strict=True) if not c)
        counts = [
            max_tokens if c else (round(rest * length / free) if free else 0)
            for length, c in zip(lengths, cut, strict=True)
        ]
    return [{"prompt_tokens": prompt, "completion_tokens": min(count, max_tokens)} for count in counts]


def _choice_output(choice: dict[str, Any]) -> str:
    message = choice.get("message")
    if isinstance(message, dict):
        parts = (message.get("reasoning_content") or message.get("reasoning"), message.get("content"))
        return "".join(p for p in parts if isinstance(p, str))
    text = choice.get("text")
    return text if isinstance(text, str) else ""
