"""Real vLLM runs of the tiny random Gemma 4 (needs vLLM and a CUDA GPU; skipped elsewhere, with the reason).

The tiny checkpoint is built here (runners/tiny_gemma4.py) with `vision_config.num_soft_tokens`
added to config.json (vLLM's Gemma 4 unified processing reads it from there). vLLM runs it
in float32 with the image budget pinned (max_soft_tokens=70), and the transformers backend runs the
same requests on the CPU in float32 as the reference: prompt token counts must match exactly (same
template, one BOS, same soft-token counts for images and 16 kHz audio), and greedy outputs are
compared (reported; a random model's near-tied logits may flip a token between GPU and CPU).
Seeded sampling must reproduce, and `use_n` must give each repeat exactly what its own seed gives.
Data parallelism runs only where two GPUs are visible.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from evals.schema import AudioPart, Completion, ImagePart, Message, Request, Sampling

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

SMOKE = Path(__file__).parent.parent / "tasks" / "smoke_data"
IMAGE = SMOKE / "mmmu_pro_images" / "math_1.png"
AUDIO = SMOKE / "covost2_audio" / "builtin-fr-1.wav"
BUDGET = 70
GREEDY = Sampling(temperature=0.0, max_tokens=12)


def _skip_reason() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (it needs a CUDA machine: pip install -e '.[vllm]' there)"
    if importlib.util.find_spec("torchvision") is None:
        return "the Gemma 4 image processor needs torchvision"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    return None


REASON = _skip_reason()
if REASON:
    pytestmark.append(pytest.mark.skip(reason=f"real vLLM tests skipped: {REASON}"))


def ask(key: str, *parts: Any, sampling: Sampling = GREEDY, thinking: bool = False) -> Request:
    sampling = Sampling(**{**sampling.__dict__, "thinking": thinking})
    return Request(key, key.split("/")[0], sampling.seed, sampling, messages=(Message.user(*parts),))


REQUESTS = [
    ask("text-a/0", "The capital of France is"),
    ask("text-b/0", "Count to five:"),
    ask("text-think/0", "Why is the sky blue?", thinking=True),
    ask("image/0", ImagePart(path=str(IMAGE)), "What is in the picture?"),
    ask("audio/0", "Transcribe the clip.", AudioPart(path=str(AUDIO))),
    Request("raw/0", "raw", 0, GREEDY, prompt="Once upon a time"),
]


def by_key(completions: Any) -> dict[str, Completion]:
    return {c.key: c for c in completions}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from runners.tiny_gemma4 import save_tiny_gemma4

    path = save_tiny_gemma4(tmp_path_factory.mktemp("tiny-gemma4-vllm"))
    config_path = path / "config.json"
    config = json.loads(config_path.read_text())
    config["vision_config"]["num_soft_tokens"] = BUDGET
    config_path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def vllm_backend(tiny_dir: Path) -> Any:
    import vllm

    assert not hasattr(vllm, "RECORDS"), "the test stand-in was imported instead of the real vLLM"
    from runners.vllm import VLLMBackend

    backend = VLLMBackend(
        str(tiny_dir),
        dtype="float32",
        max_soft_tokens=BUDGET,
        max_model_len=2048,
        gpu_memory_utilization=0.3,
        enforce_eager=True,
        progress=False,
    )
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hf_reference(tiny_dir: Path) -> dict[str, Completion]:
    from runners.hf import HFBackend

    backend = HFBackend(str(tiny_dir), device="cpu", dtype="float32", max_soft_tokens=BUDGET, progress=False)
    try:
        return by_key(backend.generate(REQUESTS))
    finally:
        backend.close()


def test_text_image_audio_run_and_match_transformers(
    vllm_backend: Any, hf_reference: dict[str, Completion]
) -> None:
    got = by_key(vllm_backend.generate(REQUESTS))
    assert set(got) == {r.key for r in REQUESTS}
    for key, completion in got.items():
        assert completion.error is None, f"{key}: {completion.error}"
        assert completion.prompt_tokens == hf_reference[key].prompt_tokens, (
            f"{key}: prompt length differs from HF"
        )
        assert completion.completion_tokens > 0
    agree = [key for key in got if got[key].raw == hf_reference[key].raw]
    print(f"\nvLLM vs HF (CPU float32) greedy agreement: {len(agree)}/{len(got)} identical ({sorted(agree)})")
    assert len(agree) * 2 >= len(got), {k: (got[k].raw, hf_reference[k].raw) for k in got if k not in agree}


def test_seeded_sampling_reproduces_and_use_n_matches_separate_seeds(vllm_backend: Any) -> None:
    sampling = Sampling(temperature=1.0, top_p=0.95, max_tokens=12)
    repeats = [
        ask(f"s/{r}", "Tell me a story.", sampling=Sampling(**{**sampling.__dict__, "seed": 100 + r}))
        for r in range(4)
    ]
    vllm_backend.use_n = False
    separate = by_key(vllm_backend.generate(repeats))
    again = by_key(vllm_backend.generate(repeats))
    vllm_backend.use_n = True
    try:
        fanned = by_key(vllm_backend.generate(repeats))
    finally:
        vllm_backend.use_n = False
    assert {k: c.raw for k, c in separate.items()} == {k: c.raw for k, c in again.items()}
    assert {k: c.raw for k, c in separate.items()} == {k: c.raw for k, c in fanned.items()}
    assert len({c.raw for c in separate.values()}) > 1, "different seeds gave identical samples"


def test_data_parallel_on_two_gpus(tiny_dir: Path, vllm_backend: Any) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("data parallelism needs 2 GPUs")
    from runners.vllm import VLLMBackend

    single = by_key(vllm_backend.generate(REQUESTS))
    backend = VLLMBackend(
        str(tiny_dir),
        data_parallel_size=2,
        dtype="float32",
        max_soft_tokens=BUDGET,
        max_model_len=2048,
        gpu_memory_utilization=0.3,
        enforce_eager=True,
        chunk_size=2,
        progress=False,
    )
    try:
        parallel = by_key(backend.generate(REQUESTS))
    finally:
        backend.close()
    assert all(c.error is None for c in parallel.values())
    assert {k: c.raw for k, c in parallel.items()} == {k: c.raw for k, c in single.items()}
