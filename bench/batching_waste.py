"""Decode steps wasted by static batching, simulated on real output-length distributions.

Lengths: the published GPT-4o MMLU-Pro CoT outputs (12,032 responses, TIGER-Lab) and O1-mini's
LiveCodeBench submissions (880 visible answers; O1's hidden reasoning is not in them, so these are
answer lengths only). Tokens are counted with the SmolLM2 tokenizer when its dequantized copy is in
the HF backend's GGUF cache (`~/.cache/evals/hf-gguf`), else approximated as characters / 4; the
output says which. Prompt lengths (for the backend's sort) are the question text's tokens.

A static batch of B rows decodes until its longest row ends (transformers' `generate` stops when
every row has ended, not before), so each batch costs B x max(lengths) row-steps of which
sum(lengths) are useful: waste = padded row-steps / useful row-steps. Strategies:

- arrival: dataset order, B at a time (MMLU-Pro's files go category by category);
- shuffled: a seeded random order (no locality to exploit);
- prompt-sorted: the HF backend's order (longest prompt first), B at a time;
- oracle-sorted: sorted by the true output length (a lower bound for static batching; not
  attainable, the lengths are unknown before generating);
- refill-K: every K steps finished rows are replaced by waiting requests (chunked continuous
  batching; K = 1 is continuous batching as llama-server and vLLM do it);
- backend refill_every=K: the HF backend's refilled batches as built (prompt-sorted; a segment
  ends at K steps or later once 90% of its rows have finished and requests wait (`refill_share`)), with the tokens
  prefilled again counted and converted to decode steps at `PREFILL_TOKENS_PER_STEP` (or `--prefill-tokens-per-step`).

Decode time is counted in steps (one step per generated position of the batch), which is what a
memory-bound decode costs whatever the batch size; "steps vs continuous" compares wall time.

Usage: python bench/batching_waste.py [--batch-sizes 64,256] [--budget 32768] [--json PATH]
"""

from __future__ import annotations

import argparse
import glob
import heapq
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("EVALS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
REALDATA = SHARED / "realdata"
GPT4O = REALDATA / "mmlu_pro" / "tiger_gpt4o_2024-05-13_cot5shot"
O1_LCB = REALDATA / "livecodebench" / "lcb_submissions_O1-Mini-2024-09-12_codegeneration_1_0.2_eval_all.json"
SMOLLM2_CACHE = "~/.cache/evals/hf-gguf/SmolLM2-135M-Instruct.*"

Item = tuple[int, int]  # (prompt tokens, output tokens)
REFILL_SHARE = 0.9  # the HF backend's default refill_share
# Prefilled tokens that cost one decode step: a memory-bound step of the 12B model reads its 24 GB
# of weights (~5 ms at 4.8 TB/s on an H200) while prefill runs at roughly 16K tokens/s (~24 GFLOP a
# token at ~400 TFLOP/s): about 80 tokens. An assumption, not a measurement; on a CPU both are
# compute-bound and a prefilled token costs about a decoded row-step (bench/hf_refill.py).
PREFILL_TOKENS_PER_STEP = 80


def counter() -> tuple[str, Callable[[list[str]], list[int]]]:
    """(name, function: texts -> token counts): the SmolLM2 tokenizer if cached, else chars / 4."""
    folders = sorted(glob.glob(os.path.expanduser(SMOLLM2_CACHE)))
    if folders:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folders[-1])
        return "SmolLM2-135M tokenizer", lambda texts: [len(ids) for ids in tokenizer(texts)["input_ids"]]
    return "characters / 4", lambda texts: [max(1, len(t) // 4) for t in texts]


def mmlu_pro_items(count: Callable[[list[str]], list[int]]) -> list[Item]:
    rows = [row for path in sorted(GPT4O.glob("*_result.json")) for row in json.loads(path.read_text())]
    prompts = count([row["question"] + "\n" + "\n".join(row["options"]) for row in rows])
    outputs = count([row["response"] or "" for row in rows])
    return list(zip(prompts, outputs, strict=True))


def livecodebench_items(count: Callable[[list[str]], list[int]]) -> list[Item]:
    rows = json.loads(O1_LCB.read_text())
    prompts = count([row["question_content"] + (row.get("starter_code") or "") for row in rows])
    outputs = count([row["output_list"][0] if row["output_list"] else "" for row in rows])
    return list(zip(prompts, outputs, strict=True))


def static(lengths: Sequence[int], batch: int) -> tuple[int, int]:
    """(decode steps, padded row-steps) of static batches of `batch` rows in the given order."""
    steps = padded = 0
    for start in range(0, len(lengths), batch):
        rows = lengths[start : start + batch]
        steps += max(rows)
        padded += len(rows) * max(rows) - sum(rows)
    return steps, padded


def refill(lengths: Sequence[int], batch: int, every: int) -> tuple[int, int]:
    """(decode steps, idle row-steps) when finished rows are replaced every `every` steps."""
    queue = list(lengths)[::-1]
    slots = [queue.pop() for _ in range(min(batch, len(queue)))]
    steps = idle = 0
    while slots:
        chunk = min(every, max(slots))
        steps += chunk
        idle += sum(max(0, chunk - left) for left in slots)
        slots = [left - chunk for left in slots if left > chunk]
        while len(slots) < batch and queue:
            slots.append(queue.pop())
    return steps, idle


def backend_refill(items: Sequence[Item], batch: int, every: int, share: float) -> tuple[int, int, int]:
    """(decode steps, idle row-steps, tokens prefilled again) of the HF backend's `refill_every`
    (runners/hf_refill.py): a segment ends once it has run `every` steps and at least `share` of its
    rows have finished while requests wait (else when all its rows end); the unfinished rows are
    prefilled again with prompt + generated tokens, waiting requests fill the free slots."""
    queue = list(items)[::-1]
    rows: list[list[int]] = [[*queue.pop(), 0] for _ in range(min(batch, len(queue)))]  # prompt, length, done
    steps = idle = again = 0
    while rows:
        need = max(1, math.ceil(share * len(rows)))
        left = sorted(length - done for _, length, done in rows)
        run = max(left) if not queue else max(every, left[need - 1])
        run = min(run, max(left))
        steps += run
        idle += sum(max(0, run - n) for n in left)
        kept = [[p, length, done + run] for p, length, done in rows if length - done > run]
        again += sum(p + done for p, _, done in kept)
        rows = kept
        while len(rows) < batch and queue:
            rows.append([*queue.pop(), 0])
    return steps, idle, again


def continuous(lengths: Sequence[int], batch: int) -> int:
    """Decode steps of per-step continuous batching (a free slot takes the next request at once)."""
    ends: list[int] = []
    for length in lengths:
        start = heapq.heappop(ends) if len(ends) >= batch else 0
        heapq.heappush(ends, start + length)
    return max(ends)


def simulate(
    items: list[Item], batch: int, budget: int, exchange: float = PREFILL_TOKENS_PER_STEP
) -> dict[str, Any]:
    capped = [(p, min(o, budget)) for p, o in items]
    arrival = [o for _, o in capped]
    useful = sum(arrival)
    orders = {
        "arrival": arrival,
        "shuffled": random.Random(0).sample(arrival, len(arrival)),
        "prompt-sorted": [o for _, o in sorted(capped, key=lambda item: -item[0])],
        "oracle-sorted": sorted(arrival, reverse=True),
    }
    best = continuous(arrival, batch)
    out: dict[str, Any] = {
        "batch": batch,
        "requests": len(items),
        "useful_row_steps": useful,
        "strategies": {},
    }
    for name, lengths in orders.items():
        steps, padded = static(lengths, batch)
        out["strategies"][name] = {"steps": steps, "waste": padded / useful, "vs_continuous": steps / best}
    for every in (256, 1024):
        steps, idle = refill(arrival, batch, every)
        out["strategies"][f"refill-{every}"] = {
            "steps": steps, "waste": idle / useful, "vs_continuous": steps / best,
        }  # fmt: skip
    sorted_items = sorted(capped, key=lambda item: -item[0])  # the backend's order
    for every in (64, 256):
        steps, idle, again = backend_refill(sorted_items, batch, every, REFILL_SHARE)
        cost = steps + again / exchange
        out["strategies"][f"backend refill_every={every}"] = {
            "steps": steps, "waste": idle / useful, "vs_continuous": steps / best,
            "prefilled_again": again, "time_vs_continuous": cost / best,
        }  # fmt: skip
    out["strategies"]["continuous"] = {"steps": best, "waste": 0.0, "vs_continuous": 1.0}
    return out


def write_lengths(path: Path, how: str, datasets: dict[str, list[Item]]) -> None:
    """The output lengths alone, for benchmarks that run where the published outputs are not
    (bench/gpu_refill.py on a device machine)."""
    mmlu, lcb = datasets.values()
    about = (
        f"Output lengths in tokens ({how}) of published model outputs: GPT-4o's {len(mmlu):,} MMLU-Pro "
        "chain-of-thought responses (TIGER-Lab, gpt-4o-2024-05-13, 5-shot CoT) and O1-mini's "
        f"{len(lcb)} LiveCodeBench code-generation answers (visible answers only). Written by "
        "bench/batching_waste.py --write-lengths; read by bench/gpu_refill.py, which runs where the "
        "published outputs are not at hand."
    )
    lengths = {"mmlu_pro_gpt4o": [o for _, o in mmlu], "livecodebench_o1_mini": [o for _, o in lcb]}
    path.write_text(json.dumps({"about": about, "tokenizer": how, **lengths}, separators=(",", ":")) + "\n")


def describe(name: str, items: list[Item]) -> str:
    outputs = sorted(o for _, o in items)
    pick = lambda q: outputs[min(len(outputs) - 1, int(q * len(outputs)))]  # noqa: E731
    return (f"{name}: {len(items)} outputs, tokens median {pick(0.5)}, p90 {pick(0.9)}, p99 {pick(0.99)}, "
            f"max {outputs[-1]}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--budget", type=int, default=32768, help="max_tokens: outputs are capped at it")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--prefill-tokens-per-step",
        type=float,
        default=None,
        help="prefilled tokens that cost one decode step (measured by bench/gpu_refill.py; default 80)",
    )
    parser.add_argument(
        "--write-lengths", default=None, help="also write the output lengths (bench/published_lengths.json)"
    )
    args = parser.parse_args()
    exchange = args.prefill_tokens_per_step or PREFILL_TOKENS_PER_STEP
    if not GPT4O.is_dir() or not O1_LCB.is_file():
        raise SystemExit(f"published outputs not found under {REALDATA}; set EVALS_SHARED")
    how, count = counter()
    print(f"tokens counted with: {how}")
    datasets = {
        "MMLU-Pro (GPT-4o CoT)": mmlu_pro_items(count),
        "LiveCodeBench (O1-mini answers)": livecodebench_items(count),
    }
    if args.write_lengths:
        write_lengths(Path(args.write_lengths), how, datasets)
    report: dict[str, Any] = {"tokens": how, "budget": args.budget, "exchange": exchange, "datasets": {}}
    for name, items in datasets.items():
        print(describe(name, items))
        report["datasets"][name] = [
            simulate(items, int(b), args.budget, exchange) for b in args.batch_sizes.split(",")
        ]
    print("\n| outputs | batch | strategy | waste (padded / useful) | decode steps | steps vs continuous "
          f"| prefilled again | time vs continuous (1 step = {exchange:g} prefill tokens) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, results in report["datasets"].items():
        for result in results:
            for strategy, figures in result["strategies"].items():
                again = figures.get("prefilled_again", 0)
                time_ratio = figures.get("time_vs_continuous", figures["vs_continuous"])
                print(f"| {name} | {result['batch']} | {strategy} | {figures['waste']:.2f} | {figures['steps']:,} | "
                      f"{figures['vs_continuous']:.2f}x | {again:,} | {time_ratio:.2f}x |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
