"""Speed of MTP (drafter-assisted) generation in the llama.cpp backend against plain generation.

Starts llama-server through LlamaCppBackend twice on the same target GGUF, once plain and once
with an MTP drafter (`draft_model`: `--spec-type draft-mtp`), one slot each (`parallel=1`, so
requests run one at a time), and one after the other (never both loaded at once). Both get the same
chat prompts, greedy, after one untimed warm-up request. Prints wall times and tokens per second
(client side, HTTP included), the server's own decode rate (its `timings`), the speed-up, the
drafter's acceptance rate (llama-server's `draft_n_accepted / draft_n` summed over the responses)
and whether the outputs are identical in token count and text (they must be: greedy, and the
drafter changes only speed).

Without --model it builds the tiny random Gemma 4 and its tiny random drafter on the spot and
converts both with llama.cpp's converter, as the llama.cpp tests do. Their weights are random, so
the drafter is almost never right, acceptance is near 0 and the "speed-up" is below 1 (every round
pays for drafting and a wider verification batch and keeps one token). That run checks the
plumbing, not the speed. With --model X.gguf --draft Y.gguf (a real target and its MTP drafter) it
measures the real pair. It measures speed only, not answer quality, and does not build llama.cpp.

The tiny pair runs llama-server on one thread unless --threads says otherwise: a model that small
gains nothing from more, and on a busy machine extra threads spin against each other and make the
timings swing by 10x and more. A real pair gets the server's own thread count by default.

Usage: python bench/llamacpp_mtp_speedup.py [--model X.gguf --draft Y.gguf] [--prompts 8]
       [--new-tokens 64] [--draft-tokens 4] [--ctx-size 4096] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from common import build_requests

from evals.schema import Request
from runners.llamacpp import LlamaCppBackend
from runners.repeats import RepeatGroup


class RecordingBackend(LlamaCppBackend):
    """LlamaCppBackend that keeps the `timings` object of every llama-server response."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.timings: list[dict[str, Any]] = []
        super().__init__(*args, **kwargs)

    def completions(self, job: RepeatGroup, response: dict[str, Any], seconds: float) -> list[Any]:
        self.timings.append(dict(response.get("timings") or {}))
        return super().completions(job, response, seconds)


def tiny_pair(directory: Path) -> tuple[str, str]:
    """The tiny random Gemma 4 and its drafter, saved GGUF-ready and converted (f32)."""
    from runners.gguf_convert import convert_to_gguf
    from runners.tiny_gemma4 import save_tiny_gemma4_assistant_gguf_ready, save_tiny_gemma4_gguf_ready

    target = save_tiny_gemma4_gguf_ready(directory / "target")
    draft = save_tiny_gemma4_assistant_gguf_ready(directory / "draft", target)
    model = convert_to_gguf(target, directory / "model.gguf", outtype="f32")
    drafter = convert_to_gguf(draft, directory / "drafter.gguf", outtype="f32")
    return str(model), str(drafter)


class Run:
    """One timed pass: wall seconds, per-request token counts and raw outputs, server timings."""

    def __init__(self, backend: RecordingBackend, requests: list[Request]) -> None:
        backend.timings.clear()
        start = time.perf_counter()
        completions = {c.key: c for c in backend.generate(requests)}
        self.seconds = time.perf_counter() - start
        errors = [c.error for c in completions.values() if c.error]
        if errors:
            raise SystemExit(f"backend errors: {errors[:3]}")
        ordered = [completions[r.key] for r in requests]
        self.counts = [c.completion_tokens for c in ordered]
        self.texts = [c.raw for c in ordered]
        self.tokens = sum(self.counts)
        self.timings = list(backend.timings)

    def total(self, key: str) -> float:
        return sum(float(t.get(key) or 0) for t in self.timings)

    def line(self) -> str:
        server_ms = self.total("predicted_ms")
        server = f"{self.total('predicted_n') / server_ms * 1000:7.1f} tok/s" if server_ms else "    n/a"
        return (
            f"{self.seconds:7.2f} s  {self.tokens:5d} tokens  {self.tokens / self.seconds:7.1f} tok/s"
            f"  (server decode {server})"
        )


def measure(model: str, requests: list[Request], **kwargs: Any) -> Run:
    """Start a server for `model`, warm it up on the first request (untimed), time all, stop it."""
    backend = RecordingBackend(model, parallel=1, progress=False, **kwargs)
    try:
        Run(backend, requests[:1])
        return Run(backend, requests)
    finally:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="target .gguf (default: the tiny random Gemma 4, converted here)")
    parser.add_argument("--draft", help="MTP drafter .gguf for --model")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--draft-tokens", type=int, default=4, help="most tokens drafted per round")
    parser.add_argument("--ctx-size", type=int, default=4096, help="server context (prompt + output)")
    parser.add_argument(
        "--threads", type=int, help="llama-server threads (default: 1 for the tiny pair, else its own choice)"
    )
    args = parser.parse_args()
    if bool(args.model) != bool(args.draft):
        parser.error("--model and --draft go together")

    requests = build_requests(args.prompts, args.new_tokens)
    threads = args.threads if args.threads is not None or args.model else 1
    common = {"ctx_size": args.ctx_size, "threads": threads}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        model, draft = (args.model, args.draft) if args.model else tiny_pair(Path(scratch))
        prepared = time.perf_counter() - began
        plain = measure(model, requests, **common)
        mtp = measure(model, requests, draft_model=draft, draft_tokens=args.draft_tokens, **common)

    label = "tiny random Gemma 4 + tiny random drafter (f32 GGUF)" if not args.model else f"{model} + {draft}"
    print(f"model: {label}")
    if not args.model:
        print(f"built and converted in {prepared:.1f} s")
    print(
        f"prompts: {len(requests)}, max new tokens: {args.new_tokens}, greedy, one slot, "
        f"threads: {threads or 'server default'}"
    )
    print(f"(a) plain:                                  {plain.line()}")
    print(f"(b) MTP drafter ({args.draft_tokens} drafted per round at most): {mtp.line()}")
    print(f"speed-up (b/a, tok/s): {(mtp.tokens / mtp.seconds) / (plain.tokens / plain.seconds):.2f}x")
    drafted, accepted = mtp.total("draft_n"), mtp.total("draft_n_accepted")
    if any("draft_n" in t for t in mtp.timings):
        print(
            f"drafter: {drafted:.0f} tokens drafted, {accepted:.0f} accepted "
            f"(acceptance {accepted / drafted if drafted else 0.0:.1%}, from llama-server's timings)"
        )
    else:
        print("drafter: llama-server reported no draft_n / draft_n_accepted; acceptance unknown")
    same_counts = sum(a == b for a, b in zip(plain.counts, mtp.counts, strict=True))
    same_texts = sum(a == b for a, b in zip(plain.texts, mtp.texts, strict=True))
    print(
        f"identical outputs (b) vs (a): token counts {same_counts}/{len(requests)}, text {same_texts}/{len(requests)}"
    )
    print(f"total run time: {time.perf_counter() - began:.1f} s")
    if not args.model:
        print("note: random weights, so acceptance near 0 and a speed-up below 1 are expected here")


if __name__ == "__main__":
    main()
