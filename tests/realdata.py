"""Where the shared real data lives for tests: `$EVALS_SHARED`, by default the `shared` folder
beside the repository, holding `realdata/`. Tests that read it carry `@pytest.mark.realdata(path)`
(tests/conftest.py skips them, naming the missing path, where it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("EVALS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
REALDATA = SHARED / "realdata"
MMLU = REALDATA / "mmlu_pro"
TEST_PARQUET = MMLU / "mmlu_pro_test-00000-of-00001.parquet"
VALIDATION_PARQUET = MMLU / "mmlu_pro_validation-00000-of-00001.parquet"
GPT4O = MMLU / "tiger_gpt4o_2024-05-13_cot5shot"
GPT4O_GLOB = str(GPT4O / "*_result.json")

needs_real = pytest.mark.realdata(TEST_PARQUET, VALIDATION_PARQUET, GPT4O)
