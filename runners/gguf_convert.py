"""Convert a Hugging Face model directory to GGUF with llama.cpp's own converter.

Runs `convert_hf_to_gguf.py` from the llama.cpp sources that `scripts/build_llama_cpp.sh` keeps
next to the server binary (`runners.llama_server.llama_cpp_source`), in a subprocess of the current
Python with the vendored `gguf-py` first on PYTHONPATH, so the converter matches the server that
will load the file. `mmproj=True` writes the multimodal projector instead of the text model.

It does not quantize beyond what the converter's `--outtype` offers (f32, f16, bf16, q8_0, ...),
build llama.cpp, or make a model convertible (see `runners.tiny_gemma4.save_tiny_gemma4_gguf_ready`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runners.llama_server import BUILD_SCRIPT, llama_cpp_source

CONVERTER = "convert_hf_to_gguf.py"
OUTTYPES = ("f32", "f16", "bf16", "q8_0", "tq1_0", "tq2_0", "auto")


class ConversionError(RuntimeError):
    """The converter ran and failed."""


def converter_source(source: str | Path | None = None) -> Path:
    """The llama.cpp source directory holding the converter; a one-line ValueError if there is none."""
    found = Path(source) if source is not None else llama_cpp_source()
    if found is None or not (found / CONVERTER).is_file():
        where = f"in {found}" if found is not None else "in any cached llama.cpp build"
        raise ValueError(f"llama.cpp's {CONVERTER} not found {where}; build it with {BUILD_SCRIPT}")
    return found


def convert_to_gguf(
    model_dir: str | Path,
    outfile: str | Path,
    *,
    outtype: str = "f32",
    mmproj: bool = False,
    source: str | Path | None = None,
    timeout: float = 600.0,
) -> Path:
    """Write `outfile` from the HF model in `model_dir`; returns `outfile`. Raises ValueError for bad
    arguments and ConversionError (quoting the converter's last error line) when it fails."""
    model_dir, outfile = Path(model_dir), Path(outfile)
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{str(model_dir)!r} has no config.json; pass a Hugging Face model directory")
    if outtype not in OUTTYPES:
        raise ValueError(f"unknown outtype {outtype!r}; choose one of: {', '.join(OUTTYPES)}")
    src = converter_source(source)
    command = [sys.executable, str(src / CONVERTER), str(model_dir), "--outfile", str(outfile)]
    command += ["--outtype", outtype] + (["--mmproj"] if mmproj else [])
    env = dict(os.environ)
    # The vendored gguf package (the converter also puts it on sys.path unless NO_LOCAL_GGUF is set).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src / "gguf-py"), env.get("PYTHONPATH")]))
    env.pop("NO_LOCAL_GGUF", None)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ConversionError(f"{CONVERTER} ran past {timeout:g} s on {model_dir}") from exc
    if result.returncode != 0 or not outfile.is_file():
        raise ConversionError(
            f"{CONVERTER} failed on {model_dir}: {_last_error(result.stderr + result.stdout)}"
        )
    return outfile


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1]


def main(argv: list[str] | None = None) -> int:
    """`python -m runners.gguf_convert MODEL_DIR OUT.gguf [--outtype f16] [--mmproj]`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m runners.gguf_convert",
        description="Convert a Hugging Face model directory to GGUF with llama.cpp's own converter.",
    )
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("outfile", type=Path)
    parser.add_argument("--outtype", default="f32", help="f32, f16, bf16, q8_0, ... (default f32)")
    parser.add_argument("--mmproj", action="store_true", help="write the multimodal projector instead")
    args = parser.parse_args(argv)
    try:
        path = convert_to_gguf(args.model_dir, args.outfile, outtype=args.outtype, mmproj=args.mmproj)
    except (ValueError, ConversionError) as exc:
        print(f"gguf_convert: error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
