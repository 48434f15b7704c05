"""Refilled against static batches on a GPU: the transformers backend on a random Gemma 4 of the
published 12B text shape, with rows as long as published answers.

Random weights never end a row by themselves (an end id is 2 of 262,144), so each request's
`max_tokens` is drawn instead (seeded) from the lengths of GPT-4o's 12,032 published MMLU-Pro
answers (`published_lengths.json`, capped at --cap): every row ends where a real answer of that
length would. The same requests run greedy on the same loaded model through static batches
(`refill_every=0`; rows of different budgets share a batch and each stops at its own) and refilled
ones (`refill_every`, `refill_share`), alternating over --repeats rounds after a warm-up of both.
Printed per path: wall time, tokens/s, generate calls, decode steps and row-steps; the speed ratio;
identical outputs; and the decode steps bench/batching_waste.py's simulator predicts for the same
lengths in the backend's order (they match exactly when no row ends early, which checks the
simulator behind docs/performance.md). `--json` (default `$OUT/gpu_refill.json` when `$OUT` is set)
gets every figure. `--self-test` runs it on the CPU with the tiny config in seconds.

One prepared device run (defaults: 128 requests, batch 64, cap 1024, share 0.5: 2,048 static decode
steps against 1,662 refilled; estimated 6-8 minutes on an H200 at the 80-115 ms per step measured
before, building and loading the model included; see docs/performance.md). So few requests show
little of the full run's gain (the last batch runs to its longest row either way); what the device
run is for is measuring the exchange rate between a decode step and prefilled tokens, which the
simulator then applies to the whole published distribution (`batching_waste.py
--prefill-tokens-per-step`).

Usage: python bench/gpu_refill.py [--config 12b|tiny] [--device cuda] [--requests 128]
       [--batch-size 64] [--cap 1024] [--divide 1] [--refill-every 64] [--refill-share 0.5] [--repeats 1]
       [--json PATH] [--self-test]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hf_refill
import torch
from batching_waste import PREFILL_TOKENS_PER_STEP, backend_refill, static
from gpu_throughput import machine, requests, save_random_model, sync, text_config, write

from evals.schema import Request, Sampling
from runners.hf import HFBackend

LENGTHS = Path(__file__).with_name("published_lengths.json")


def budgets(count: int, cap: int, divide: int = 1, seed: int = 0) -> list[int]:
    """`count` output lengths drawn from the published MMLU-Pro answers, divided by `divide` (the
    self-test's short rows keep the distribution's shape), each capped at `cap`."""
    published = json.loads(LENGTHS.read_text())["mmlu_pro_gpt4o"]
    return [max(1, min(cap, n // divide)) for n in random.Random(seed).sample(published, count)]


def build(count: int, prompt_tokens: int, cap: int, divide: int, tag: str) -> list[Request]:
    """Distinct raw prompts of about `prompt_tokens` tokens with published-length budgets."""
    base = requests(count, prompt_tokens, 1, tag)
    drawn = budgets(count, cap, divide)
    return [dataclasses.replace(r, sampling=Sampling(max_tokens=n)) for r, n in zip(base, drawn, strict=True)]


def run_pass(
    backend: HFBackend, batch: list[Request], every: int, share: float, device: str
) -> dict[str, Any]:
    """bench/hf_refill.py's pass, synchronised with the device, as a JSON-ready dict with the
    number of rows that ended before their drawn budget (none should: the weights are random)."""
    done = hf_refill.run_pass(backend, batch, every, share, sync=lambda: sync(device))
    figures = dataclasses.asdict(done)
    figures["decode_steps"] = figures.pop("steps")
    budget = {r.key: r.sampling.max_tokens for r in batch}
    figures["ended_early"] = sum(len(ids) < budget[key] for key, ids in done.ids.items())
    return {**figures, "tokens_per_s": done.tokens / done.seconds}


def predicted(backend: HFBackend, batch: list[Request], args: argparse.Namespace) -> dict[str, int]:
    """The simulator's decode steps for these budgets in the backend's order (longest prompt first)."""
    order = sorted(batch, key=lambda r: -len(backend.render(r)))
    items = [(len(backend.render(r)), r.sampling.max_tokens) for r in order]
    refill_steps, _, again = backend_refill(items, args.batch_size, args.refill_every, args.refill_share)
    return {
        "static_steps": static([n for _, n in items], args.batch_size)[0],
        "refill_steps": refill_steps,
        "prefilled_again": again,
    }


def prefill_exchange(
    static_pass: dict[str, Any], refill_pass: dict[str, Any], sim: dict[str, int]
) -> dict[str, Any]:
    """The simulator's exchange rate, measured: the static pass's seconds per decode step, the
    refilled pass's time beyond its decode steps at that rate (its prefills again), and so the
    prefilled tokens that cost one decode step (None when nothing was prefilled again or the
    refilled pass took no longer than its steps)."""
    step = static_pass["seconds"] / static_pass["decode_steps"]
    extra = refill_pass["seconds"] - refill_pass["decode_steps"] * step
    again = sim["prefilled_again"]
    per_step = again / (extra / step) if again and extra > 0 else None
    return {"step_ms": step * 1e3, "extra_s": extra, "prefilled_again": again, "tokens_per_step": per_step}


def run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    report: dict[str, Any] = {
        "machine": machine(args.device),
        "command": " ".join(sys.argv),
        "config": args.config,
    }
    model_dir = Path(args.workdir) / "model"
    report["parameters"] = save_random_model(text_config(args.config), args.device, dtype, model_dir)
    backend = HFBackend(str(model_dir), device=args.device, dtype=str(dtype).removeprefix("torch."),
                        batch_size=args.batch_size, progress=False)  # fmt: skip
    report["load_s"] = time.perf_counter() - began
    print(f"model: {args.config}, {report['parameters'] / 1e9:.2f} B parameters on {report['machine']['device']}; "
          f"built, saved and loaded in {report['load_s']:.0f} s", flush=True)  # fmt: skip
    batch = build(args.requests, args.prompt_tokens, args.cap, args.divide, "bench")
    lengths = sorted(r.sampling.max_tokens for r in batch)
    report["budgets"] = {"median": statistics.median(lengths), "max": lengths[-1], "cap": args.cap,
                         "at_cap": sum(n >= args.cap for n in lengths), "total": sum(lengths)}  # fmt: skip
    paths = {"static": 0, f"refill-{args.refill_every}": args.refill_every}
    warm = build(min(4, args.requests), args.prompt_tokens, 8, 1, "warm")
    for every in paths.values():
        run_pass(backend, warm, every, args.refill_share, args.device)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    for repeat in range(args.repeats):
        for name in list(paths) if repeat % 2 == 0 else list(paths)[::-1]:
            done = run_pass(backend, batch, paths[name], args.refill_share, args.device)
            runs[name].append(done)
            print(f"round {repeat + 1} {name:>10}: {done['seconds']:7.2f} s, {done['tokens']} tokens, "
                  f"{done['tokens_per_s']:8.1f} tok/s, {done['calls']} calls, {done['decode_steps']} decode steps, "
                  f"{done['row_steps']} row-steps", flush=True)  # fmt: skip
    static_name, refill_name = paths
    medians = {name: statistics.median(r["tokens_per_s"] for r in rs) for name, rs in runs.items()}
    last = {name: rs[-1] for name, rs in runs.items()}
    same = sum(last[refill_name]["ids"][k] == v for k, v in last[static_name]["ids"].items())
    report["paths"] = {
        name: [{k: v for k, v in r.items() if k != "ids"} for r in rs] for name, rs in runs.items()
    }
    report["refill_vs_static"] = medians[refill_name] / medians[static_name]
    report["identical"] = same
    report["predicted"] = predicted(backend, batch, args)
    report["prefill_exchange"] = prefill_exchange(last[static_name], last[refill_name], report["predicted"])
    report["total_s"] = time.perf_counter() - began
    print(f"budgets: {args.requests} drawn from published MMLU-Pro lengths, median {report['budgets']['median']}, "
          f"cap {args.cap} ({report['budgets']['at_cap']} at it); batch {args.batch_size}, refill_every "
          f"{args.refill_every}, refill_share {args.refill_share}", flush=True)  # fmt: skip
    print(f"refill / static (tok/s): {report['refill_vs_static']:.2f}x; identical outputs {same}/{args.requests}; "
          f"decode steps static {last[static_name]['decode_steps']} (simulated {report['predicted']['static_steps']}), "
          f"refill {last[refill_name]['decode_steps']} (simulated {report['predicted']['refill_steps']}); "
          f"rows that ended before their budget: {last[static_name]['ended_early']}", flush=True)  # fmt: skip
    exchange = report["prefill_exchange"]
    if exchange["tokens_per_step"] is not None:
        print(f"one decode step ({exchange['step_ms']:.1f} ms) costs as much as prefilling "
              f"{exchange['tokens_per_step']:.0f} tokens again (bench/batching_waste.py assumes "
              f"{PREFILL_TOKENS_PER_STEP}; rerun it with --prefill-tokens-per-step)", flush=True)  # fmt: skip
    write(report, args.json)
    backend.close()
    return report


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="12b", choices=["12b", "tiny"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--cap", type=int, default=1024, help="largest budget (published lengths run to 7K)")
    parser.add_argument("--divide", type=int, default=1, help="divide the published lengths by this")
    parser.add_argument("--refill-every", type=int, default=64)
    parser.add_argument(
        "--refill-share", type=float, default=0.5, help="0.5: refills often (measures their cost)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--json", default=str(Path(os.environ["OUT"]) / "gpu_refill.json") if os.environ.get("OUT") else None
    )
    parser.add_argument("--workdir", default=None, help="where the model goes (default: a temp dir)")
    parser.add_argument("--self-test", action="store_true", help="tiny config on the CPU, in seconds")
    args = parser.parse_args(argv)
    if args.self_test:
        args.config, args.device, args.requests, args.batch_size = "tiny", "cpu", 12, 4
        args.cap, args.divide, args.prompt_tokens, args.repeats = 48, 16, 16, 2
        args.refill_every, args.refill_share = 4, 0.5
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on the GPU machine, or use --self-test (CPU, tiny config)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    if args.workdir:
        return run(args)
    with tempfile.TemporaryDirectory(prefix="gpu-refill-") as tmp:
        args.workdir = tmp
        return run(args)


if __name__ == "__main__":
    main()
