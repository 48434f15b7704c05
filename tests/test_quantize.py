"""llama-quantize from scripts/build_llama_cpp.sh: it is built beside llama-server, quantizes a real
GGUF (the tiny Gemma 4 converted by llama.cpp's converter) to Q8_0 that llama-server loads and
answers with, and bad input is one line. Skips where the build is absent (fails under
EVALS_REQUIRE_LLAMA_CPP=1, as the other llama.cpp tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from llama_cpp_required import skip_or_fail

from evals.schema import Message, Request, Sampling
from runners.gguf_quantize import (
    QuantizationError,
    QuantizeNotFound,
    find_llama_quantize,
    quant_type,
    quantize_gguf,
)
from runners.llama_server import cached_builds
from runners.llamacpp import GGUFInfo, LlamaCppBackend

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def llama_quantize() -> Path:
    try:
        return find_llama_quantize()
    except QuantizeNotFound as exc:
        skip_or_fail(str(exc))
        raise


def test_bad_quant_type_is_one_line(tmp_path: Path) -> None:
    assert quant_type("q4_k_m") == "Q4_K_M"
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF")
    with pytest.raises(ValueError, match=r"unknown quantization type 'Q9_X'; choose one of: Q4_0, ") as info:
        quantize_gguf(source, tmp_path / "out.gguf", "Q9_X")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"not found; pass an existing \.gguf file"):
        quantize_gguf(tmp_path / "missing.gguf", tmp_path / "out.gguf", "Q8_0")
    with pytest.raises(QuantizeNotFound, match="is not an executable llama-quantize binary"):
        find_llama_quantize(tmp_path / "nope")


@pytest.mark.subprocess
def test_command_line_bad_type_exits_2_with_one_line(tmp_path: Path) -> None:
    source = tmp_path / "model.gguf"
    source.write_bytes(b"GGUF")
    result = subprocess.run(
        [sys.executable, "-m", "runners.gguf_quantize", str(source), str(tmp_path / "o.gguf"), "Q9_X"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("gguf_quantize: error: unknown quantization type 'Q9_X'")
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
@pytest.mark.server
def test_q8_0_of_a_real_gguf_loads_and_answers(
    llama_quantize: Path, llama_server_binary: Path, tiny_gemma4_gguf, tmp_path: Path
) -> None:
    # scripts/build_llama_cpp.sh keeps llama-quantize beside llama-server (one build, one version).
    for build in cached_builds():
        assert (build / "bin" / "llama-quantize").is_file(), f"{build} lacks llama-quantize: rerun the build"
    out = quantize_gguf(tiny_gemma4_gguf.model, tmp_path / "model.Q8_0.gguf", "Q8_0", threads=1)
    assert not list(tmp_path.glob(".*partial*"))  # written aside, renamed into place
    assert out.stat().st_size < tiny_gemma4_gguf.model.stat().st_size
    assert GGUFInfo.read(out).quantization["type"] == "Q8_0"
    fingerprints = {}
    for name, path in (("f32", tiny_gemma4_gguf.model), ("q8_0", out)):
        backend = LlamaCppBackend(
            str(path), mmproj="none", parallel=1, threads=1, ctx_size=512, progress=False
        )
        try:
            fingerprints[name] = backend.fingerprint()
            if name == "q8_0":
                request = Request(
                    key="hi",
                    sample_id="hi",
                    repeat=0,
                    sampling=Sampling(max_tokens=6),
                    messages=(Message.user("Hi"),),
                )
                (completion,) = backend.generate([request])
                assert completion.error is None and completion.completion_tokens > 0
        finally:
            backend.close()
    assert (fingerprints["f32"]["quantization"]["type"], fingerprints["q8_0"]["quantization"]["type"]) == (
        "F32",
        "Q8_0",
    )
    assert fingerprints["f32"]["weights"] != fingerprints["q8_0"]["weights"]


@pytest.mark.slow
def test_a_failing_quantization_quotes_the_tool_in_one_line(llama_quantize: Path, tmp_path: Path) -> None:
    not_gguf = tmp_path / "broken.gguf"
    not_gguf.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(
        QuantizationError, match=r"llama-quantize failed on .*broken\.gguf \(Q8_0\): "
    ) as info:
        quantize_gguf(not_gguf, tmp_path / "out.gguf", "Q8_0", threads=1)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.gguf").exists() and not list(tmp_path.glob(".*partial*"))
