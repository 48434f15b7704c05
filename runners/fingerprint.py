"""Identity helpers for every backend's fingerprint: weight files, GGUF quantization, chat
template and tokenizer.

Weight identity is a quick digest (name, size, first and last MiB of each file), not a full hash:
it tells apart different checkpoints and quantizations in milliseconds, but a change in the middle
of a file that keeps its size would go unnoticed. Nothing here loads a model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_MIB = 1 << 20


def weight_files(directory: Path) -> list[Path]:
    """The weight files directly inside `directory`, sorted by name."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def quick_digest(paths: Iterable[Path]) -> str:
    """sha256 over (file name, size, first MiB, last MiB) of each file, in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_MIB))
            if size > _MIB:
                handle.seek(max(_MIB, size - _MIB))
                digest.update(handle.read(_MIB))
    return digest.hexdigest()


def gguf_quantization(path: Path) -> dict[str, Any]:
    """The GGUF file type (e.g. MOSTLY_Q4_1) and a count of tensor types (e.g. {"Q4_1": 210}), from
    the header alone (`runners.gguf_meta`: the tokenizer's arrays are skipped, not built)."""
    from runners.gguf_meta import quantization, read_header

    return quantization(read_header(path))


def text_sha256(value: Any) -> str | None:
    """sha256 of a string (or of the canonical JSON of anything else); None stays None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """Vocabulary size, and hashes of the special tokens (with ids) and of the whole vocabulary."""
    specials = {
        name: getattr(tokenizer, name, None) for name in ("bos_token", "eos_token", "pad_token", "unk_token")
    }
    special_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tokenizer.all_special_tokens}
    return {
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "special_tokens_sha256": text_sha256({"named": specials, "ids": special_ids}),
        "vocab_sha256": text_sha256(sorted(tokenizer.get_vocab().items())),
    }
