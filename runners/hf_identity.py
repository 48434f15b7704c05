"""What identifies a transformers model's weights, for `HFBackend.fingerprint`: the weight files
and their quick digest, and the quantization (a GGUF's type counts, or the config's quantization
settings).

It reads local files (or the hub's local snapshot cache, never the network); it does not load models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runners.fingerprint import gguf_quantization, quick_digest, weight_files
from runners.hf_loading import ModelSource


def weight_paths(source: ModelSource, revision: str | None, config: Any) -> list[Path]:
    """The model's weight files: the GGUF file, else the safetensors/bin files of its folder (a
    hub model's folder in the local snapshot cache); none when that folder is not at hand."""
    directory = _local_directory(source, revision, config)
    if directory is None:
        return []
    if source.gguf_file:
        return [directory / source.gguf_file]
    return weight_files(directory)


def _local_directory(source: ModelSource, revision: str | None, config: Any) -> Path | None:
    if source.local:
        return Path(source.name)
    try:
        from huggingface_hub import snapshot_download

        wanted = revision or getattr(config, "_commit_hash", None)
        return Path(snapshot_download(source.name, revision=wanted, local_files_only=True))
    except Exception:
        return None


def weights_identity(paths: list[Path]) -> dict[str, Any] | None:
    """File names and quick digest of the weight files (None without files)."""
    if not paths:
        return None
    return {"files": [p.name for p in paths], "quick_sha256": quick_digest(paths)}


def quantization(source: ModelSource, paths: list[Path], config: Any) -> dict[str, Any] | None:
    """A GGUF's quantization (its tensor types), else the config's `quantization_config`, else None."""
    if source.gguf_file:
        return {"format": "gguf", **gguf_quantization(paths[0])} if paths else {"format": "gguf"}
    settings = getattr(config, "quantization_config", None)
    if settings is None:
        return None
    return settings.to_dict() if hasattr(settings, "to_dict") else dict(settings)
