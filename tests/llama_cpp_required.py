"""Skip a llama.cpp test where the build is missing, or fail where CI requires it.

A plain module (not conftest.py) so tests can import it: with a second conftest.py under
tests/reliability, `from conftest import ...` would reach whichever conftest was loaded last.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_LLAMA_CPP = "EVALS_REQUIRE_LLAMA_CPP"


def skip_or_fail(reason: str) -> None:
    """Skip with `reason`, or fail where the llama.cpp build is required (CI)."""
    if os.environ.get(REQUIRE_LLAMA_CPP) == "1":
        pytest.fail(f"{reason} ({REQUIRE_LLAMA_CPP}=1)")
    pytest.skip(reason)
