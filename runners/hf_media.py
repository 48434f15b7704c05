"""Image and audio inputs for the transformers backend (`runners.hf`), through the model's processor.

A request with image or audio parts is encoded here, one request at a time, inside the batch step
(so media are decoded per batch, never for a whole run): images are decoded with Pillow, audio
with soundfile, mixed down to mono float32 and resampled to the feature extractor's rate with
soxr (the Gemma 4 feature extractor ignores `sampling_rate`, so feeding it 44.1 kHz audio would
silently give the wrong number of soft tokens). The chat messages then go through
`processor.apply_chat_template(..., tokenize=True)`, which renders the template (exactly one BOS),
expands each `<|image|>` / `<|audio|>` placeholder to its soft tokens and returns the tensors the
model needs (`pixel_values`, `image_position_ids`, `input_features`, `input_features_mask`,
`mm_token_type_ids`). `collate` left-pads such per-request encodings into one batch.

Parts are passed in the order the task gave them: Gemma 4 expects images before the text and audio
after it, and the tasks build their messages that way; nothing is reordered here.

A part that cannot be used (missing file, bytes that are not an image or audio, a clip longer than
the model takes) raises `MediaError` with a one-line reason; the backend turns it into that
request's error Completion. Only `runners.hf` imports this module; it loads no model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evals.schema import AudioPart, ImagePart, Message, Part, Request, TextPart, iter_parts
from runners.fingerprint import text_sha256

SEQUENCE_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")
# Per-item processor outputs (one row per image or audio clip) and the value that pads their
# second axis when items of different widths meet in one batch.
ITEM_PAD_VALUES: dict[str, float | int | bool] = {
    "pixel_values": 0.0,
    "image_position_ids": -1,
    "input_features": 0.0,
    "input_features_mask": False,
}


class MediaError(ValueError):
    """A media part that cannot be used; the message says why in one line."""


# --- what the processor takes -------------------------------------------------------------


@dataclass(frozen=True)
class AudioLimits:
    """The feature extractor's sampling rate, samples per soft token and the most soft tokens per clip."""

    sampling_rate: int = 16_000
    samples_per_token: int = 640
    max_tokens: int = 750

    @property
    def max_seconds(self) -> float:
        return self.max_tokens * self.samples_per_token / self.sampling_rate

    @property
    def max_samples(self) -> int:
        return self.max_tokens * self.samples_per_token

    @staticmethod
    def of(processor: Any) -> AudioLimits:
        """Read the limits from a processor (Gemma 4 defaults where an attribute is missing)."""
        extractor = getattr(processor, "feature_extractor", None)
        default = AudioLimits()
        return AudioLimits(
            sampling_rate=int(getattr(extractor, "sampling_rate", default.sampling_rate)),
            samples_per_token=int(getattr(extractor, "audio_samples_per_token", default.samples_per_token)),
            max_tokens=int(getattr(processor, "audio_seq_length", default.max_tokens)),
        )


def has_media(request: Request) -> bool:
    """True when any message of the request carries an image or audio part."""
    return any(isinstance(part, ImagePart | AudioPart) for part in iter_parts(request.messages))


# --- decoding -----------------------------------------------------------------------------


def _describe(part: ImagePart | AudioPart) -> str:
    if part.data is not None:
        return f"{part.type} ({len(part.data)} bytes)"
    return f"{part.type} file {part.path!r}"


def _read_bytes(part: ImagePart | AudioPart) -> bytes:
    """The encoded bytes of a part (inline data first, then the file)."""
    if part.data is not None:
        return part.data
    if part.path is None:
        raise MediaError(f"{part.type} part has neither path nor data")
    path = Path(part.path)
    if not path.is_file():
        raise MediaError(f"{part.type} file {part.path!r} does not exist")
    return path.read_bytes()


def load_image(part: ImagePart) -> Any:
    """Decode an image part into a PIL image (pixels loaded; colour mode left to the processor)."""
    from PIL import Image, UnidentifiedImageError

    data = _read_bytes(part)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError as exc:  # its message names a BytesIO object: say it plainly
        raise MediaError(f"{_describe(part)} is not a readable image (unknown or corrupt format)") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{_describe(part)} is not a readable image: {exc}") from exc
    return image


def load_audio(part: AudioPart, limits: AudioLimits) -> np.ndarray:
    """Decode an audio part into mono float32 at `limits.sampling_rate`; clips longer than the model
    takes raise MediaError (checked before the samples are read)."""
    import soundfile

    data = _read_bytes(part)
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as clip:
            rate, frames = clip.samplerate, clip.frames
            _check_duration(frames, rate, limits)
            samples = clip.read(dtype="float32", always_2d=True)
    except RuntimeError as exc:  # soundfile.LibsndfileError and its kin
        raise MediaError(f"{_describe(part)} is not readable audio: {exc}") from exc
    wave = resample(to_mono(samples), rate, limits.sampling_rate)
    return wave[: limits.max_samples]  # resampling may round a full-length clip up by a sample


def _check_duration(frames: int, rate: int, limits: AudioLimits) -> None:
    """Raise MediaError for an empty clip or one longer than the model takes."""
    if frames <= 0:
        raise MediaError("audio clip is empty")
    seconds = frames / rate
    if seconds > limits.max_seconds:
        shown = f"{seconds:.1f}" if round(seconds, 1) > limits.max_seconds else f"{seconds:.3f}"
        raise MediaError(f"audio clip is {shown} s; the model takes at most {limits.max_seconds:g} s")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array into float32 mono."""
    return np.ascontiguousarray(samples.mean(axis=1) if samples.ndim == 2 else samples, dtype=np.float32)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample mono float32 audio from `rate` to `target` Hz with soxr (high quality)."""
    if rate == target or wave.size == 0:
        return wave
    import soxr

    return np.asarray(soxr.resample(wave, rate, target), dtype=np.float32)


# --- chat messages ------------------------------------------------------------------------


def content_part(part: Part, limits: AudioLimits | None = None) -> dict[str, Any]:
    """A chat-template content part. With `limits`, media are decoded ({"type": "image", "image":
    PIL image} / {"type": "audio", "audio": float32 array}); without, only the type is given (enough
    to render the placeholder text)."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if not isinstance(part, ImagePart | AudioPart):
        raise MediaError(f"unknown message part {part!r}")
    if limits is None:
        return {"type": part.type}
    if isinstance(part, ImagePart):
        return {"type": "image", "image": load_image(part)}
    return {"type": "audio", "audio": load_audio(part, limits)}


def media_messages(messages: Sequence[Message], limits: AudioLimits | None = None) -> list[dict[str, Any]]:
    """Messages as chat-template dicts with content-part lists, parts in the given order."""
    return [
        {"role": message.role, "content": [content_part(part, limits) for part in message.content]}
        for message in messages
    ]


# --- encoding and batching ----------------------------------------------------------------


@dataclass
class Encoded:
    """One request's prompt ids (soft tokens included) and its processor tensors (batch of one)."""

    ids: list[int]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


class MediaEncoder:
    """Encode media requests with a processor, with the image budget `max_soft_tokens` pinned."""

    def __init__(self, processor: Any, max_soft_tokens: int | None = None):
        self.processor = processor
        self.max_soft_tokens = max_soft_tokens
        self.limits = AudioLimits.of(processor)

    @property
    def image_soft_tokens(self) -> int | None:
        """The image budget in force: the backend option, else the image processor's default."""
        if self.max_soft_tokens is not None:
            return self.max_soft_tokens
        return getattr(getattr(self.processor, "image_processor", None), "max_soft_tokens", None)

    def encode(self, request: Request) -> Encoded:
        """Decode the request's media and run the processor's chat template on it."""
        if request.prompt is not None:
            raise MediaError("raw prompts cannot carry images or audio")
        kwargs: dict[str, Any] = (
            {} if self.max_soft_tokens is None else {"max_soft_tokens": self.max_soft_tokens}
        )
        output = self.processor.apply_chat_template(
            media_messages(request.messages, self.limits),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            enable_thinking=request.sampling.thinking,
            processor_kwargs=kwargs,
        )
        tensors = {key: value for key, value in output.items() if isinstance(value, torch.Tensor)}
        return Encoded(ids=tensors["input_ids"][0].tolist(), tensors=tensors)

    def identity(self) -> dict[str, Any]:
        """Class names of the processor and its parts, sha256 of its config and chat template, and
        the image budget in force."""
        parts = ("image_processor", "feature_extractor", "video_processor", "tokenizer")
        classes = {
            name: type(getattr(self.processor, name)).__name__
            for name in parts
            if hasattr(self.processor, name)
        }
        to_dict = getattr(self.processor, "to_dict", None)
        return {
            "class": type(self.processor).__name__,
            "parts": classes,
            "config_sha256": text_sha256(to_dict() if to_dict else None),
            "chat_template_sha256": text_sha256(getattr(self.processor, "chat_template", None)),
            "max_soft_tokens": self.image_soft_tokens,
        }


def collate(rows: Sequence[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad per-request encodings into one batch for `generate`.

    Sequence tensors (ids, attention mask, `mm_token_type_ids`) are left-padded; rows without
    media (text-only requests, ids only) get an all-ones mask and text type ids. Per-item tensors
    (one row per image or clip) are concatenated in batch order, which is the order the model
    scatters them into the placeholder tokens, with their second axis padded to the widest.
    """
    width = max(len(row.ids) for row in rows)
    batch = {
        "input_ids": torch.full((len(rows), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
        "mm_token_type_ids": torch.zeros((len(rows), width), dtype=torch.long),
    }
    for i, row in enumerate(rows):
        values = {
            "input_ids": torch.tensor(row.ids, dtype=torch.long),
            "attention_mask": torch.ones(len(row.ids), dtype=torch.long),
            **{key: row.tensors[key][0] for key in SEQUENCE_KEYS[1:] if key in row.tensors},
        }
        for key, value in values.items():
            batch[key][i, width - len(row.ids) :] = value
    batch.update(_concat_items(rows))
    return batch


def _concat_items(rows: Sequence[Encoded]) -> dict[str, torch.Tensor]:
    keys = {key for row in rows for key in row.tensors if key not in SEQUENCE_KEYS}
    unknown = keys - ITEM_PAD_VALUES.keys()
    if unknown:
        raise ValueError(f"cannot batch processor outputs {sorted(unknown)}")
    out = {}
    for key in sorted(keys):
        items = [row.tensors[key] for row in rows if key in row.tensors]
        out[key] = torch.cat(_pad_axis1(items, ITEM_PAD_VALUES[key]), dim=0)
    return out


def _pad_axis1(items: list[torch.Tensor], value: float | int | bool) -> list[torch.Tensor]:
    """Pad each tensor's second axis (at the end) to the widest of them."""
    width = max(item.shape[1] for item in items)
    padded = []
    for item in items:
        if item.shape[1] < width:
            shape = (item.shape[0], width - item.shape[1], *item.shape[2:])
            item = torch.cat([item, torch.full(shape, value, dtype=item.dtype)], dim=1)
        padded.append(item)
    return padded
