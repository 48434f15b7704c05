"""Describe the environment a run happened in: package versions, harness git revision, platform.

Reads only; never imports heavy packages (versions come from installed metadata)."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "evals",
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "gguf",
    "datasets",
    "numpy",
    "pandas",
    "pyarrow",
    "vllm",
    "llama-cpp-python",
    "httpx",
    "rich",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_revision() -> dict[str, Any]:
    """The harness's own git commit and whether the work tree had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def _git(root: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10)
    return out.stdout.strip()


def describe() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_revision(),
        "argv": redacted_argv(sys.argv),
    }


SECRET_WORDS = ("key", "token", "secret", "password")


def is_secret(name: str) -> bool:
    """Whether an option of this name holds a credential (api_key, hf_token, ...)."""
    return any(word in name.lower() for word in SECRET_WORDS)


def redacted_argv(argv: list[str]) -> list[str]:
    """The command line with the values of KEY=VALUE arguments whose key names a credential replaced,
    also written as one argument with the flag (`--backend-opt=api_key=...`)."""
    return [_redacted_arg(arg) for arg in argv]


def _redacted_arg(arg: str) -> str:
    name, sep, value = arg.partition("=")
    if sep and is_secret(name.lstrip("-")):
        return f"{name}=<redacted>"
    if sep and name.startswith("-") and "=" in value:  # --flag=KEY=VALUE
        return f"{name}={_redacted_arg(value)}"
    return arg
