"""Speed of MTP (drafter-assisted) generation in the transformers backend against plain generation.

Loads the same target twice through HFBackend, once plain and once with an MTP drafter
(`draft_model`), and times both on the same chat prompts, one request at a time (assisted
generation is batch-1 only, so the fair baseline is batch 1 too; plain batched generation is timed
as well for context). Prints wall times, tokens per second, the speed-up, the drafter's acceptance
rate (accepted drafted tokens / drafted tokens, from forward-call counts) and whether the outputs
are identical (they must be: greedy, and the drafter changes only speed).

Without --model it builds a tiny random Gemma 4 and a tiny random drafter on the spot: their
weights are random, so the drafter is almost never right, acceptance is near 0 and the "speed-up"
is below 1 (each round costs a draft and a verification for one token). That run checks the
plumbing, not the speed. With --model DIR --draft DIR (a real target and its assistant, e.g. on a
GPU) it measures the real pair. It measures speed only, not answer quality.

Usage: python bench/mtp_speedup.py [--model DIR --draft DIR] [--prompts 8] [--new-tokens 64]
       [--num-assistant-tokens 4] [--device auto] [--dtype auto]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import build_requests, rate, timed_generate

from evals.schema import Request
from runners.hf import HFBackend


class CallCounter:
    """Counts forward calls of a module (a forward hook)."""

    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_: object) -> None:
        self.calls += 1

    def reset(self) -> None:
        self.calls = 0


def tiny_pair(directory: Path) -> tuple[str, str]:
    from runners.tiny_gemma4 import save_tiny_gemma4, save_tiny_gemma4_assistant

    target = save_tiny_gemma4(directory / "target")
    return str(target), str(save_tiny_gemma4_assistant(directory / "draft", target))


def timed(backend: HFBackend, requests: list[Request]) -> tuple[float, int, list[str]]:
    return timed_generate(backend, requests, torch.cuda.synchronize if torch.cuda.is_available() else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="target model directory (default: a tiny random Gemma 4)")
    parser.add_argument("--draft", help="MTP assistant directory for --model")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--num-assistant-tokens", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    if bool(args.model) != bool(args.draft):
        parser.error("--model and --draft go together")

    with tempfile.TemporaryDirectory() as scratch:
        model, draft = (args.model, args.draft) if args.model else tiny_pair(Path(scratch))
        common = {"device": args.device, "dtype": args.dtype, "progress": False}
        plain = HFBackend(model, batch_size=1, **common)
        batched = HFBackend(model, batch_size=args.prompts, **common)
        mtp = HFBackend(model, draft_model=draft, draft_tokens=args.num_assistant_tokens, **common)
        label = "tiny random Gemma 4 + tiny random drafter" if not args.model else f"{model} + {draft}"
        print(f"model: {label} on {mtp.device}, {mtp.dtype}, {torch.get_num_threads()} threads")
        requests = build_requests(args.prompts, args.new_tokens)
        for backend in (plain, batched, mtp):  # warm-up, not timed
            timed(backend, requests[:1])

        target_calls, draft_calls = CallCounter(mtp.model), CallCounter(mtp.draft.model)
        plain_s, plain_tokens, plain_texts = timed(plain, requests)
        batch_s, batch_tokens, batch_texts = timed(batched, requests)
        target_calls.reset()
        draft_calls.reset()
        mtp_s, mtp_tokens, mtp_texts = timed(mtp, requests)

    accepted = mtp_tokens - target_calls.calls  # each verification round yields accepted + 1 tokens
    acceptance = accepted / draft_calls.calls if draft_calls.calls else 0.0
    same = sum(a == b for a, b in zip(plain_texts, mtp_texts, strict=True))
    same_batched = sum(a == b for a, b in zip(batch_texts, mtp_texts, strict=True))
    print(f"prompts: {len(requests)}, max new tokens: {args.new_tokens}, greedy")
    print(f"(a) plain, one at a time:     {rate(plain_s, plain_tokens)}")
    print(f"(b) plain, batched:           {rate(batch_s, batch_tokens)}")
    print(
        f"(c) MTP drafter, one at a time ({args.num_assistant_tokens} drafted per round): {rate(mtp_s, mtp_tokens)}"
    )
    print(f"speed-up (c/a, tok/s): {(mtp_tokens / mtp_s) / (plain_tokens / plain_s):.2f}x")
    print(
        f"drafter: {draft_calls.calls} tokens drafted, {accepted} accepted "
        f"(acceptance {acceptance:.1%}), {target_calls.calls} target forward passes, "
        f"{mtp_tokens / max(target_calls.calls, 1):.2f} tokens per target pass"
    )
    print(f"identical outputs (c) vs (a): {same}/{len(requests)}, (c) vs (b): {same_batched}/{len(requests)}")
    if not args.model:
        print("note: random weights, so acceptance near 0 and a speed-up below 1 are expected here")


if __name__ == "__main__":
    main()
