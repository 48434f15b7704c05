"""The `evals gate` command line (being written)."""

from __future__ import annotations

from typing import Any


def add_gate(sub: Any) -> None:
    """Register `evals gate` on the `evals` subcommands."""
