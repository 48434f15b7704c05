"""GPU throughput of the transformers backend on a randomly initialised Gemma 4 of the published 12B
text shape: the harness (`evals.generation.generate_all` -> `HFBackend`, cache writes included)
against raw `model.generate` on the same rendered prompts at several batch sizes, batch-1 decode
latency against the weight-read bound (weight bytes / HBM bandwidth), peak memory, the static KV
cache (on CUDA transformers compiles its decode step), and a torch.profiler summary of one batch-1
decode step (kernel time against wall time: a launch-bound step spends most of it on the CPU).

One prepared device run (default settings: about 5-7 minutes on one H200, see docs/performance.md):
it builds the model on the device, saves it (safetensors) and loads it through HFBackend as a run
would, warms every path, alternates their order in each repeat, and prints a table as it goes;
`--json` (default `$OUT/gpu_throughput.json` when `$OUT` is set) gets every figure. `--budget-s`
skips the optional sections (static cache, profile) that would not finish in time, and says so.
`--self-test` runs the same code on the CPU with a scaled-down config in seconds. The weights are
random, so the outputs are gibberish: this measures speed, not quality.

Usage: python bench/gpu_throughput.py [--config 12b|tiny] [--device cuda] [--batch-sizes 1,16,64,256]
       [--new-tokens 64] [--prompt-tokens 128] [--repeats 2] [--hbm-tbps 4.8] [--budget-s 480]
       [--no-static] [--json PATH] [--self-test]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Gemma4UnifiedForCausalLM, Gemma4UnifiedTextConfig

from evals.cache import CompletionCache
from evals.generation import generate_all
from evals.schema import Request, Sampling
from runners.hf import HFBackend, left_pad
from runners.tiny_gemma4 import build_tokenizer

H200_HBM_TBPS = 4.8  # H200 HBM3e bandwidth, TB/s (override with --hbm-tbps for another card)
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "the",
    "cat",
    "sleeps",
    "on",
    "a",
    "warm",
    "mat",
]


def text_config(name: str) -> Gemma4UnifiedTextConfig:
    """The published 12B text shape (48 layers, 5 sliding to 1 full, window 1024, 16 heads, 8 KV
    heads of 256, full layers 1 KV head of 512 with k = v, tied embeddings, logit soft-cap 30;
    intermediate 15360 gives the published 11.9 B parameters), or a tiny one of the same pattern."""
    common: dict[str, Any] = dict(
        attention_k_eq_v=True, final_logit_softcapping=30.0, tie_word_embeddings=True,
        pad_token_id=0, eos_token_id=[1, 5], bos_token_id=2,
    )  # fmt: skip
    if name == "12b":
        return Gemma4UnifiedTextConfig(
            vocab_size=262_144, hidden_size=3840, intermediate_size=15_360, num_hidden_layers=48,
            num_attention_heads=16, num_key_value_heads=8, head_dim=256, global_head_dim=512,
            num_global_key_value_heads=1, sliding_window=1024, **common,
        )  # fmt: skip
    if name == "tiny":
        return Gemma4UnifiedTextConfig(
            vocab_size=4096, hidden_size=64, intermediate_size=256, num_hidden_layers=6,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, global_head_dim=32,
            num_global_key_value_heads=1, sliding_window=32, max_position_embeddings=4096, **common,
        )  # fmt: skip
    raise SystemExit(f"unknown --config {name!r}; use 12b or tiny")


def save_random_model(config: Gemma4UnifiedTextConfig, device: str, dtype: torch.dtype, path: Path) -> int:
    """Build the model with seeded random weights on `device` in `dtype`, save it with the tiny
    Gemma 4 tokenizer (ids the model never emits decode to nothing) and return its parameter count.
    A model this function saved before at `path` with the same config and dtype is reused (the
    benchmarks of one device session share it through `--workdir`; saving 24 GB takes a minute)."""
    stamp = path / "bench-model.json"
    wanted = {"config": config.to_dict(), "dtype": str(dtype)}
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if (
            saved.get("config") == json.loads(json.dumps(wanted["config"], default=str))
            and saved.get("dtype") == wanted["dtype"]
        ):
            return int(saved["parameters"])
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Gemma4UnifiedForCausalLM(copy.deepcopy(config)).eval()  # the caller's config unchanged
    finally:
        torch.set_default_dtype(default)
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    stamp.write_text(json.dumps({**wanted, "parameters": count}, default=str))  # last: a complete save
    del model
    free_device(device)
    return count


def free_device(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB (process high-water mark)


def requests(count: int, prompt_tokens: int, new_tokens: int, tag: str) -> list[Request]:
    """Raw prompts of about `prompt_tokens` tokens (lengths vary by up to a quarter, as real ones do)."""
    out = []
    for i in range(count):
        words = prompt_tokens - (i * 7) % max(1, prompt_tokens // 4)
        text = f"{i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(max(1, words)))  # all distinct
        key = f"{tag}-{i}"
        out.append(
            Request(key=key, sample_id=key, repeat=0, sampling=Sampling(max_tokens=new_tokens), prompt=text)
        )
    return out


def generated_tokens(rows: list[list[int]], stop_ids: set[int]) -> int:
    """Tokens up to and including each row's first stop id (as the harness counts them)."""
    return sum(next((i + 1 for i, t in enumerate(row) if t in stop_ids), len(row)) for row in rows)


class Bench:
    def __init__(self, backend: HFBackend, device: str, args: argparse.Namespace) -> None:
        self.backend, self.device, self.args = backend, device, args
        self.model = backend.model
        self.stop_ids = set(backend.stop_ids)
        self.counter = 0
        self.cache = CompletionCache(Path(args.workdir) / "cache.sqlite")

    def fresh(self, batch: int, new_tokens: int) -> list[Request]:
        self.counter += 1
        return requests(batch, self.args.prompt_tokens, new_tokens, f"r{self.counter}")

    @torch.inference_mode()
    def raw(self, batch: int, new_tokens: int, **generate: Any) -> tuple[float, int]:
        """Raw `model.generate` on the rendered prompts of a batch: (seconds, generated tokens)."""
        ids = [self.backend.render(r) for r in self.fresh(batch, new_tokens)]
        input_ids, mask = left_pad(ids, self.backend.pad_id)
        sync(self.device)
        start = time.perf_counter()
        output = self.model.generate(
            input_ids=input_ids.to(self.model.device), attention_mask=mask.to(self.model.device),
            max_new_tokens=new_tokens, do_sample=False, **generate,
        )  # fmt: skip
        sync(self.device)
        seconds = time.perf_counter() - start
        return seconds, generated_tokens(output[:, input_ids.shape[1] :].tolist(), self.stop_ids)

    def harness(self, batch: int, new_tokens: int) -> tuple[float, int]:
        """The run path: `generate_all` through HFBackend with the SQLite cache (fresh requests)."""
        self.backend.set_batch_size(batch)
        batch_requests = self.fresh(batch, new_tokens)
        sync(self.device)
        start = time.perf_counter()
        results, stats = generate_all(self.backend, batch_requests, self.cache, show_progress=False)
        sync(self.device)
        seconds = time.perf_counter() - start
        errors = [c.error for c in results.values() if c.error]
        if errors:
            raise SystemExit(f"harness errors: {errors[:2]}")
        return seconds, stats.completion_tokens


def measure(
    bench: Bench,
    paths: dict[str, Callable[[int, int], tuple[float, int]]],
    batch: int,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Warm every path, then `args.repeats` rounds with the order of the paths alternating."""
    names = list(paths)
    for name in names:
        paths[name](batch, 4)  # warm-up: kernels, allocator, tokenizer
    samples: dict[str, list[tuple[float, int, float]]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            reset_peak(bench.device)
            seconds, tokens = paths[name](batch, args.new_tokens)
            samples[name].append((seconds, tokens, peak_gb(bench.device)))
    rows = []
    for name in names:
        rates = [tokens / seconds for seconds, tokens, _ in samples[name]]
        rows.append({
            "path": name, "batch": batch, "new_tokens": args.new_tokens, "repeats": args.repeats,
            "tokens_per_s": statistics.median(rates), "tokens_per_s_each": rates,
            "seconds": statistics.median(s for s, _, _ in samples[name]),
            "peak_memory_gb": max(p for _, _, p in samples[name]),
        })  # fmt: skip
    base = next(r for r in rows if r["path"] == names[0])["tokens_per_s"]
    for row in rows:
        row["vs_raw"] = row["tokens_per_s"] / base
    return rows


@torch.inference_mode()
def decode_latency(bench: Bench, tokens: int, **generate: Any) -> float:
    """Seconds per decode step at batch 1: (time for `tokens` new tokens - time for 1) / (tokens - 1)."""
    times = {}
    for count in (1, tokens, 1, tokens):
        seconds, _ = bench.raw(1, count, min_new_tokens=count, **generate)
        times.setdefault(count, []).append(seconds)
    return (min(times[tokens]) - min(times[1])) / (tokens - 1)


@torch.inference_mode()
def profile_decode_step(bench: Bench, rows: int = 12) -> dict[str, Any]:
    """Profile one batch-1 decode step after a prefill: wall time, kernel time, launches, top ops."""
    from torch.profiler import ProfilerActivity, profile

    model, device = bench.model, bench.device
    ids = torch.tensor([bench.backend.render(bench.fresh(1, 1)[0])], device=model.device)
    out = model(input_ids=ids, use_cache=True)
    step = out.logits[:, -1:].argmax(-1)
    for _ in range(3):  # warm the decode step
        model(input_ids=step, cache=out.cache, use_cache=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    sync(device)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        model(input_ids=step, cache=out.cache, use_cache=True)
        sync(device)
        wall = time.perf_counter() - start
    events = prof.key_averages()
    kernel_us = sum(getattr(e, "self_device_time_total", 0) for e in events)
    launches = sum(e.count for e in events if "launch" in e.key.lower())
    try:
        table = events.table(sort_by="self_device_time_total" if device.startswith("cuda") else "self_cpu_time_total",
                             row_limit=rows)  # fmt: skip
    except (KeyError, ValueError, AttributeError):  # an older profiler's sort keys
        table = events.table(sort_by="self_cpu_time_total", row_limit=rows)
    return {
        "wall_ms": wall * 1e3,
        "kernel_ms": kernel_us / 1e3,
        "kernel_share": (kernel_us / 1e6) / wall if wall else 0.0,
        "launches": launches,
        "cpu_ops": sum(e.count for e in events),
        "table": table,
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        print(f"| {r['path']:<15} | {r['batch']:>5} | {r['new_tokens']:>4} | {r['tokens_per_s']:>9.1f} | "
              f"{r['vs_raw']:>5.2f}x | {r['peak_memory_gb']:>7.2f} |", flush=True)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    device = args.device
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    config = text_config(args.config)
    report: dict[str, Any] = {
        "machine": machine(device), "command": " ".join(sys.argv), "config": args.config,
        "dtype": str(dtype).removeprefix("torch."), "hbm_tbps": args.hbm_tbps, "skipped": [],
    }  # fmt: skip
    model_dir = Path(args.workdir) / "model"
    start = time.perf_counter()
    report["parameters"] = save_random_model(config, device, dtype, model_dir)
    report["build_and_save_s"] = time.perf_counter() - start
    start = time.perf_counter()
    backend = HFBackend(str(model_dir), device=device, dtype=report["dtype"], progress=False,
                        max_batch_size=max(args.batch_sizes))  # fmt: skip
    report["load_s"] = time.perf_counter() - start
    weight_bytes = sum(p.numel() * p.element_size() for p in backend.model.parameters())
    report["weight_bytes"] = weight_bytes
    print(f"model: {args.config}, {report['parameters'] / 1e9:.2f} B parameters, {weight_bytes / 1e9:.2f} GB "
          f"({report['dtype']}) on {report['machine']['device']}; built+saved {report['build_and_save_s']:.0f} s, "
          f"loaded {report['load_s']:.0f} s", flush=True)  # fmt: skip
    bench = Bench(backend, device, args)
    paths = {"raw generate": bench.raw, "harness": bench.harness}
    print(
        "| path            | batch | new  |     tok/s |  /raw | peak GB |\n|---|---|---|---|---|---|",
        flush=True,
    )
    report["rows"] = []
    for batch in args.batch_sizes:
        rows = measure(bench, paths, batch, args)
        print_rows(rows)
        report["rows"] += rows
        write(report, args.json)
    step = decode_latency(bench, args.new_tokens)
    bound = weight_bytes / (args.hbm_tbps * 1e12)
    report["decode"] = {"batch1_ms_per_token": step * 1e3, "weight_read_bound_ms": bound * 1e3,
                        "x_bound": step / bound}  # fmt: skip
    print(f"batch-1 decode: {step * 1e3:.2f} ms/token; weight-read bound {bound * 1e3:.2f} ms "
          f"({weight_bytes / 1e9:.2f} GB at {args.hbm_tbps} TB/s): {step / bound:.1f}x", flush=True)  # fmt: skip
    optional(report, "profile", lambda: profile_section(bench, report))
    write(report, args.json)
    if args.static:
        optional(report, "static cache", lambda: static_section(bench, args, report, began))
    report["total_s"] = time.perf_counter() - began
    write(report, args.json)
    backend.close()
    return report


def optional(report: dict[str, Any], name: str, section: Callable[[], None]) -> None:
    """Run an optional section; a failure is recorded and printed, the figures so far are kept."""
    try:
        section()
    except Exception as exc:  # a device run must still return what it measured
        note = f"{name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        report["skipped"].append(note)
        print(note, flush=True)


def profile_section(bench: Bench, report: dict[str, Any]) -> None:
    report["profile"] = p = profile_decode_step(bench)
    print(f"one decode step (batch 1): wall {p['wall_ms']:.2f} ms, kernels {p['kernel_ms']:.2f} ms "
          f"({100 * p['kernel_share']:.0f}% of wall), {p['launches']} launches, {p['cpu_ops']} ops\n{p['table']}",
          flush=True)  # fmt: skip


def static_section(bench: Bench, args: argparse.Namespace, report: dict[str, Any], began: float) -> None:
    """Static KV cache (compiled decode on CUDA): first call (compile) apart, then steady state,
    batch 1 and the largest batch; skipped, with a note, past the time budget."""
    report["static"] = []
    for batch in sorted({1, max(args.batch_sizes)}):
        left = args.budget_s - (time.perf_counter() - began)
        if left < args.static_reserve_s:
            note = f"static cache at batch {batch}: skipped, {left:.0f} s of --budget-s left"
            report["skipped"].append(note)
            print(note, flush=True)
            continue
        first, _ = bench.raw(batch, args.new_tokens, cache_implementation="static")
        seconds, tokens = bench.raw(batch, args.new_tokens, cache_implementation="static")
        dynamic = next(r for r in report["rows"] if r["batch"] == batch and r["path"] == "raw generate")
        entry = {"batch": batch, "first_call_s": first, "tokens_per_s": tokens / seconds,
                 "vs_dynamic": (tokens / seconds) / dynamic["tokens_per_s"]}  # fmt: skip
        if batch == 1:
            step = decode_latency(bench, args.new_tokens, cache_implementation="static")
            entry["batch1_ms_per_token"] = step * 1e3
            entry["x_bound"] = step / (report["weight_bytes"] / (args.hbm_tbps * 1e12))
        report["static"].append(entry)
        print(f"static cache, batch {batch}: first call {first:.1f} s, then {entry['tokens_per_s']:.1f} tok/s "
              f"({entry['vs_dynamic']:.2f}x dynamic)"
              + (f", {entry['batch1_ms_per_token']:.2f} ms/token" if batch == 1 else ""), flush=True)  # fmt: skip
        write(report, args.json)


def machine(device: str) -> dict[str, Any]:
    info = {"host": platform.node(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "device": device, "load_average": os.getloadavg()}  # fmt: skip
    if device.startswith("cuda"):
        info["device"] = torch.cuda.get_device_name()
    return info


def write(report: dict[str, Any], path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(report, indent=2, default=str) + "\n")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="12b", choices=["12b", "tiny"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hbm-tbps", type=float, default=H200_HBM_TBPS, help="HBM bandwidth in TB/s")
    parser.add_argument("--budget-s", type=float, default=480, help="skip optional sections past this")
    parser.add_argument("--static-reserve-s", type=float, default=150, help="time a static section needs")
    parser.add_argument("--no-static", dest="static", action="store_false")
    parser.add_argument(
        "--json",
        default=str(Path(os.environ["OUT"]) / "gpu_throughput.json") if os.environ.get("OUT") else None,
    )
    parser.add_argument("--workdir", default=None, help="where the model and cache go (default: a temp dir)")
    parser.add_argument("--self-test", action="store_true", help="tiny config on the CPU, in seconds")
    args = parser.parse_args(argv)
    if args.self_test:
        args.config, args.device, args.batch_sizes, args.new_tokens = "tiny", "cpu", "1,4", 8
        args.prompt_tokens, args.repeats, args.static_reserve_s = 16, 2, 0
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",")]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on the GPU machine, or use --self-test (CPU, tiny config)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.workdir:
        run(args)
        return
    with tempfile.TemporaryDirectory(prefix="gpu-throughput-") as tmp:
        args.workdir = tmp
        run(args)


if __name__ == "__main__":
    main()
