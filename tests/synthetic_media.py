"""Deterministic synthetic media for tests, benchmarks and the GPU check: random-pixel PNGs and
white-noise WAV clips, encoded in memory. Content is meaningless; only size, length, sample rate
and the seed matter (soft-token counts depend on the first three). Nothing is read or written on disk.
"""

from __future__ import annotations

import io

import numpy as np

DEFAULT_IMAGE_SIZE = (40, 56)  # height, width: 63 soft tokens at a budget of 70 in the Gemma 4 processor


def noise_samples(seconds: float, rate: int, channels: int = 1, seed: int = 1) -> np.ndarray:
    """(frames, channels) float32 white noise at amplitude 0.1."""
    shape = (round(seconds * rate), channels)
    return (np.random.default_rng(seed).standard_normal(shape) * 0.1).astype(np.float32)


def noise_png(seed: int = 0, size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> bytes:
    """A PNG of uniformly random RGB pixels, `size` = (height, width)."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_wav(seconds: float, rate: int = 16_000, channels: int = 1, seed: int = 1) -> bytes:
    """A 16-bit PCM WAV clip of white noise."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer, noise_samples(seconds, rate, channels, seed), rate, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()
