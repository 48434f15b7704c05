"""Batch sizing of the transformers backend: the KV-cache footprint read from real configs (the
published Gemma 4 12B text shape, SmolLM2-135M's Llama shape, the saved tiny Gemma 4), the batch that
fits a memory budget, and the backend's batches: sorted by prompt length, sized from free memory,
the same greedy outputs as one request at a time, and the static-cache option giving the same tokens
as the dynamic cache. Real transformers classes throughout; nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bench_scripts import load_bench
from transformers import Gemma4UnifiedTextConfig, LlamaConfig

from evals.schema import Message, Request, Sampling
from runners.hf import HFBackend
from runners.hf_generation import USABLE_SHARE, KVFootprint, batch_for_budget, free_memory_bytes, kv_footprint
from runners.tiny_gemma4 import save_tiny_gemma4

GIB = 1024**3


def gemma4_12b_text() -> Gemma4UnifiedTextConfig:
    """The published 12B text shape, as bench/gpu_throughput.py builds it (its test checks that shape
    and the 11.9 B parameter count against the model card)."""
    config: Gemma4UnifiedTextConfig = load_bench("gpu_throughput").text_config("12b")
    return config


def test_gemma4_12b_footprint_from_the_published_shape() -> None:
    footprint = kv_footprint(gemma4_12b_text(), dtype_bytes=2)
    # 8 full layers x K and V x 1 head x 512 x 2 bytes; 40 sliding layers x 2 x 8 heads x 256 x 2 bytes.
    assert footprint.full == 8 * 2 * 1 * 512 * 2 == 16_384
    assert footprint.windowed == 40 * 2 * 8 * 256 * 2 == 327_680
    assert footprint.window == 1024
    # A 32K-token reasoning row: the full layers dominate once past the window.
    row = footprint.kv_bytes(32_768)
    assert row == 16_384 * 32_768 + 327_680 * 1024  # 0.5 GiB + 0.31 GiB
    short = footprint.kv_bytes(512)
    assert short == (16_384 + 327_680) * 512  # inside the window every layer keeps every token
    # A long prompt with a short budget peaks in prefill (MLP temporaries of every prompt token).
    assert (
        footprint.row_bytes(8000, 16)
        == footprint.kv_bytes(8000) + 8000 * footprint.prefill + footprint.per_row
    )
    assert footprint.row_bytes(100, 32_768) == footprint.kv_bytes(32_868) + footprint.per_row


def test_batch_for_budget_on_an_h200_with_the_12b_model() -> None:
    footprint = kv_footprint(gemma4_12b_text(), dtype_bytes=2)
    free = 141 * GIB - 24 * GIB  # the H200 less the bf16 weights
    # Short answers (MMLU-Pro-like, 1K prompt + 2K budget): the old fixed 64 is far below what fits;
    # the prompt's prefill temporaries, not the KV cache, set the peak.
    assert batch_for_budget(footprint, free, 1000, 2048, cap=64) == 64
    assert batch_for_budget(footprint, free, 1000, 2048, cap=512) == 219
    assert batch_for_budget(footprint, free, 200, 2048, cap=512) == 283  # KV-bound: more rows
    # 32K reasoning budgets: memory, not the cap, decides.
    per_row = footprint.row_bytes(1000, 32_768)
    expected = int(free * USABLE_SHARE) // per_row
    assert batch_for_budget(footprint, free, 1000, 32_768, cap=256) == expected
    assert 100 < expected < 140
    # An 80 GB card fits fewer; a budget that does not fit even one row still runs one.
    assert batch_for_budget(footprint, 80 * GIB - 24 * GIB, 1000, 32_768, cap=256) < expected // 2
    assert batch_for_budget(footprint, 1 * GIB, 1000, 65_536, cap=256) == 1


def test_llama_shape_without_layer_types() -> None:
    smollm2 = LlamaConfig(
        vocab_size=49_152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
    )
    footprint = kv_footprint(smollm2, dtype_bytes=4)
    assert footprint == KVFootprint(
        full=30 * 2 * 3 * 64 * 4,
        windowed=0,
        window=0,
        prefill=(3 * 1536 + 6 * 576) * 4,
        per_row=4 * 49_152 * 4,
    )


def test_free_memory_on_the_cpu_is_the_hosts_available_memory() -> None:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    available = int(meminfo["MemAvailable"].split()[0]) * 1024
    assert abs(free_memory_bytes("cpu") - available) < 2 * GIB  # other processes move it a little


# --- the backend's batches ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gemma4(tmp_path_factory.mktemp("tiny-batching"), with_processor=False)


@pytest.fixture(scope="module")
def one_at_a_time(tiny_dir: Path) -> Iterator[HFBackend]:
    backend = HFBackend(str(tiny_dir), batch_size=1, progress=False)
    yield backend
    backend.close()


def requests(count: int, max_tokens: int = 12) -> list[Request]:
    words = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "again", "and", "again"]
    return [
        Request(
            key=f"r{i}",
            sample_id=f"r{i}",
            repeat=0,
            sampling=Sampling(max_tokens=max_tokens),
            messages=(Message.user(" ".join(words[: 1 + (i * 5) % len(words)])),),
        )
        for i in range(count)
    ]


def raw_by_key(backend: HFBackend, batch: list[Request]) -> dict[str, str]:
    return {c.key: c.raw for c in backend.generate(batch)}


@pytest.mark.slow
def test_auto_batches_are_sized_from_memory_and_sorted(tiny_dir: Path, one_at_a_time: HFBackend) -> None:
    auto = HFBackend(str(tiny_dir), max_batch_size=4, progress=False)
    batch = requests(10)
    assert raw_by_key(auto, batch) == raw_by_key(one_at_a_time, batch)
    assert auto.batch_sizes == [4, 4, 2]  # the tiny model fits the cap; the rest in a last batch
    # Sorted longest prompt first: every batch's prompts are no shorter than the next batch's.
    lengths = sorted((len(auto.render(r)) for r in batch), reverse=True)
    assert lengths[:4] >= lengths[4:8]
    auto.close()


@pytest.mark.slow
def test_rows_with_different_budgets_share_a_batch_and_stop_at_their_own(
    tiny_dir: Path, one_at_a_time: HFBackend
) -> None:
    batch = [
        Request(
            key=r.key, sample_id=r.sample_id, repeat=0, sampling=Sampling(max_tokens=n), messages=r.messages
        )
        for r, n in zip(requests(4), (3, 11, 7, 16), strict=True)
    ]
    mixed = HFBackend(str(tiny_dir), batch_size=4, progress=False)
    completions = {c.key: c for c in mixed.generate(batch)}
    assert mixed.batch_sizes == [4]  # one batch, not one per budget
    alone = {c.key: c for c in one_at_a_time.generate(batch)}
    for request in batch:
        got, expected = completions[request.key], alone[request.key]
        assert (got.raw, got.finish_reason, got.completion_tokens) == (
            expected.raw, expected.finish_reason, expected.completion_tokens,
        )  # fmt: skip
        assert got.completion_tokens <= request.sampling.max_tokens
    assert max(mixed.decode_steps) <= 16  # the batch ends when its largest budget is spent
    mixed.close()


@pytest.mark.slow
def test_static_cache_gives_the_dynamic_cache_tokens(tiny_dir: Path, one_at_a_time: HFBackend) -> None:
    static = HFBackend(str(tiny_dir), batch_size=4, static_cache=True, progress=False)
    batch = requests(6, max_tokens=10)
    assert raw_by_key(static, batch) == raw_by_key(one_at_a_time, batch)
    static.close()


@pytest.mark.slow
def test_smollm2_auto_batching_equals_batch_size_one(smollm2_gguf: Path) -> None:
    """One batch of six through `generate` against each prompt alone through `greedy_ids` (plain
    batch-1 `model.generate` on the same rendered ids): the same tokens."""
    asks = ["What is the capital of France?", "Name three primary colours.", "Count from one to five.",
            "Say hello in Spanish.", "What is 12 times 12?", "Give a synonym for 'quick'."]  # fmt: skip
    sampling = Sampling(max_tokens=24)
    batch = [
        Request(key=str(i), sample_id=str(i), repeat=0, sampling=sampling, messages=(Message.user(a),))
        for i, a in enumerate(asks)
    ]
    backend = HFBackend(str(smollm2_gguf), progress=False)
    backend.generated_ids = {}
    completions = list(backend.generate(batch))
    assert backend.batch_sizes == [6]
    assert all(c.error is None for c in completions)
    for request in batch:
        alone = backend.greedy_ids(backend.render(request), 24)
        batched = backend.generated_ids[request.key]
        assert batched[: len(alone)] == alone  # batched keeps the end-of-turn id, greedy_ids drops it
        assert len(batched) in (len(alone), len(alone) + 1)
    backend.close()


# --- the batching-waste simulator (bench/batching_waste.py) ---------------------------------


def test_batching_waste_simulator_by_hand() -> None:
    sim = load_bench("batching_waste")
    lengths = [10, 1, 1, 1, 4, 4]
    # Static, B = 2: batches (10, 1) (1, 1) (4, 4): steps 10 + 1 + 4; padded 9 + 0 + 0.
    assert sim.static(lengths, 2) == (15, 9)
    # Continuous, 2 slots: slot A runs 10; slot B runs 1, 1, 1, 4 (ends at 7), then 4 more (ends at 11).
    assert sim.continuous(lengths, 2) == 11
    # Refill every 4 steps, 2 slots: [10, 1] -> 4 steps (the 1 idles 3) -> [6, 1] -> 4 (idle 3)
    # -> [2, 1] -> 2 steps (idle 1) -> [4, 4] -> 4 steps: 14 steps, 7 idle row-steps.
    assert sim.refill(lengths, 2, 4) == (14, 7)
    # The backend's refill, 2 rows, every 2 steps, half the rows: [10, 1] run 2 steps (the 1 idles
    # one), the 10 is prefilled again (2 prompt + 2 generated) beside the next 1; 2 steps more (idle 1,
    # prefilled again 2 + 4); then [6 left, 4] with nothing waiting run to the end: 6 steps, idle 2.
    items = [(2, 10), (2, 1), (1, 1), (1, 4)]
    assert sim.backend_refill(items, 2, 2, 0.5) == (2 + 2 + 6, 1 + 1 + 2, 4 + 6)
    assert sim.static([n for _, n in items], 2) == (14, 9 + 3)
    result = sim.simulate([(5, n) for n in lengths], batch=2, budget=8)  # the 10 is capped at 8
    assert result["useful_row_steps"] == 8 + 1 + 1 + 1 + 4 + 4
    assert result["strategies"]["arrival"]["steps"] == 8 + 1 + 4
    assert result["strategies"]["oracle-sorted"]["steps"] == 8 + 4 + 1
