"""The `evals compare` command line (being written)."""

from __future__ import annotations

from typing import Any


def add_compare(sub: Any) -> None:
    """Register `evals compare` on the `evals` subcommands."""
