"""Where the shared real data lives for tests ($EVALS_SHARED, default ../shared beside the repo),
and a skip marker for tests that need it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("EVALS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MMLU = SHARED / "realdata" / "mmlu_pro"
TEST_PARQUET = MMLU / "mmlu_pro_test-00000-of-00001.parquet"
VALIDATION_PARQUET = MMLU / "mmlu_pro_validation-00000-of-00001.parquet"
GPT4O = MMLU / "tiger_gpt4o_2024-05-13_cot5shot"
GPT4O_GLOB = str(GPT4O / "*_result.json")

needs_real = pytest.mark.skipif(
    not (TEST_PARQUET.is_file() and GPT4O.is_dir()),
    reason=f"shared real MMLU-Pro data not found under {MMLU} (set EVALS_SHARED)",
)
