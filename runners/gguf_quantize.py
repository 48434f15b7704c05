"""Quantize a GGUF file with llama.cpp's own `llama-quantize`.

Finds the `llama-quantize` binary that `scripts/build_llama_cpp.sh` builds beside `llama-server`
(or the one named by `$EVALS_LLAMA_QUANTIZE`, or on PATH) and runs it in a subprocess, so the
quantization matches the server that will load the file. The output is written aside and renamed
into place: a failed or interrupted run never leaves a half-written `.gguf` under the final name.

It does not convert Hugging Face checkpoints (see `runners.gguf_convert`), build llama.cpp, or
judge what a quantization costs (run the result with `evals run --backend llamacpp` and compare).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runners.llama_server import BUILD_SCRIPT, locate_tool

BINARY = "llama-quantize"
# The types llama-quantize accepts by name (llama.cpp 0.3.x); checked before the binary runs so a
# typo is one line here rather than the tool's full usage text.
QUANT_TYPES = (
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4_MOE",
    "Q2_K", "Q2_K_S", "Q3_K", "Q3_K_S", "Q3_K_M", "Q3_K_L",
    "Q4_K", "Q4_K_S", "Q4_K_M", "Q5_K", "Q5_K_S", "Q5_K_M", "Q6_K",
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
    "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0",
    "F16", "BF16", "F32", "COPY",
)  # fmt: skip


class QuantizeNotFound(FileNotFoundError):
    """No llama-quantize binary could be located."""


class QuantizationError(RuntimeError):
    """llama-quantize ran and failed."""


def find_llama_quantize(explicit: str | Path | None = None) -> Path:
    """The llama-quantize binary: `explicit` > $EVALS_LLAMA_QUANTIZE > PATH > newest cached build."""
    given = (("binary", explicit), ("EVALS_LLAMA_QUANTIZE", os.environ.get("EVALS_LLAMA_QUANTIZE")))
    found = locate_tool(BINARY, given, QuantizeNotFound)
    if found is None:
        raise QuantizeNotFound(
            f"{BINARY} not found (not on PATH, not in any cached llama.cpp build); build it with {BUILD_SCRIPT}"
        )
    return found


def quant_type(name: str) -> str:
    """`name` as llama-quantize spells it (case-insensitive); a one-line ValueError if unknown."""
    upper = name.strip().upper()
    if upper not in QUANT_TYPES:
        raise ValueError(f"unknown quantization type {name!r}; choose one of: {', '.join(QUANT_TYPES)}")
    return upper


def quantize_gguf(
    source: str | Path,
    outfile: str | Path,
    qtype: str,
    *,
    allow_requantize: bool = False,
    threads: int | None = None,
    binary: str | Path | None = None,
    timeout: float = 1800.0,
) -> Path:
    """Write `outfile`, `source` quantized to `qtype`; returns `outfile`. `allow_requantize` lets
    an already quantized source be quantized again (it carries the first rounding). Raises
    ValueError for bad arguments and QuantizationError (quoting the tool's error) when it fails."""
    source, outfile = Path(source), Path(outfile)
    if not source.is_file():
        raise ValueError(f"GGUF file {str(source)!r} not found; pass an existing .gguf file")
    qtype = quant_type(qtype)
    if source.resolve() == outfile.resolve():
        raise ValueError(f"output {str(outfile)!r} is the input file; choose another output path")
    tool = find_llama_quantize(binary)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    partial = outfile.with_name(f".{outfile.name}.partial-{os.getpid()}")
    command = [str(tool)] + (["--allow-requantize"] if allow_requantize else [])
    command += [str(source), str(partial), qtype] + ([str(threads)] if threads else [])
    try:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise QuantizationError(f"{BINARY} ran past {timeout:g} s on {source}") from exc
        if result.returncode != 0 or not partial.is_file():
            raise QuantizationError(f"{BINARY} failed on {source} ({qtype}): {_last_error(result)}")
        partial.replace(outfile)
    finally:
        partial.unlink(missing_ok=True)
    return outfile


def _last_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    markers = ("error", "failed", "requantiz", "cannot", "invalid")
    errors = [line for line in lines if any(marker in line.lower() for marker in markers)]
    return (errors or lines or [f"exit status {result.returncode}, no output"])[-1]


def main(argv: list[str] | None = None) -> int:
    """`python -m runners.gguf_quantize IN.gguf OUT.gguf TYPE [--allow-requantize] [--threads N]`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m runners.gguf_quantize",
        description="Quantize a GGUF file with llama.cpp's llama-quantize (built by scripts/build_llama_cpp.sh).",
        epilog="example: python -m runners.gguf_quantize model.f16.gguf model.Q4_K_M.gguf Q4_K_M",
        allow_abbrev=False,
    )
    parser.add_argument("source", type=Path, help="the GGUF file to quantize (F32/F16/BF16, or quantized)")
    parser.add_argument("outfile", type=Path, help="where to write the result")
    parser.add_argument("type", help=f"quantization type: {', '.join(QUANT_TYPES)}")
    parser.add_argument(
        "--allow-requantize", action="store_true", help="allow a source that is already quantized"
    )
    parser.add_argument("--threads", type=int, default=None, help="threads (default: llama-quantize's)")
    args = parser.parse_args(argv)
    try:
        path = quantize_gguf(
            args.source, args.outfile, args.type, allow_requantize=args.allow_requantize, threads=args.threads
        )
    except (ValueError, QuantizationError, QuantizeNotFound) as exc:
        print(f"gguf_quantize: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
