"""Image and audio requests through the transformers backend (runners/hf.py + runners/hf_media.py)
with real classes: a tiny random Gemma4Unified model saved in the session with the real
`Gemma4UnifiedProcessor` (torchvision-backed image processor, 16 kHz audio feature extractor).
Media are made here: a PNG from random pixels, WAV clips from seeded noise. Nothing is mocked."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from synthetic_media import noise_png as png
from synthetic_media import noise_samples
from synthetic_media import noise_wav as wav
from transformers import AutoProcessor

from evals.schema import AudioPart, Completion, ImagePart, Message, Part, Request, Sampling
from runners.hf import HFBackend
from runners.hf_media import AudioLimits, MediaError, load_audio
from runners.tiny_gemma4 import save_tiny_gemma4

torch.set_num_threads(2)

GREEDY = Sampling(max_tokens=8)
IMAGE_SIZE = (40, 56)  # height, width: 63 soft tokens at a budget of 70, 266 at 280


def ask(key: str, *parts: Part | str, sampling: Sampling = GREEDY) -> Request:
    return Request(key=key, sample_id=key, repeat=0, sampling=sampling, messages=(Message.user(*parts),))


def by_key(completions: list[Completion]) -> dict[str, Completion]:
    return {c.key: c for c in completions}


def count(backend: HFBackend, ids: list[int], token: str) -> int:
    return ids.count(backend.tokenizer.convert_tokens_to_ids(token))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gemma4(tmp_path_factory.mktemp("tiny-gemma4-media"))


@pytest.fixture(scope="module")
def processor(tiny_dir: Path):
    return AutoProcessor.from_pretrained(tiny_dir)


@pytest.fixture(scope="module")
def backend(tiny_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_dir), batch_size=4, max_soft_tokens=70)


@pytest.fixture(scope="module")
def single(tiny_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_dir), batch_size=1, max_soft_tokens=70)


def processor_inputs(
    processor, request: Request, image: bytes | None = None, audio: bytes | None = None
) -> dict[str, torch.Tensor]:
    """The processor's own inputs for a one-message request (the test decodes the media itself)."""
    parts = []
    for part in request.messages[0].content:
        if isinstance(part, ImagePart):
            parts.append({"type": "image", "image": Image.open(io.BytesIO(image))})
        elif isinstance(part, AudioPart):
            samples, _ = soundfile.read(io.BytesIO(audio), dtype="float32")
            parts.append({"type": "audio", "audio": samples})
        else:
            parts.append({"type": "text", "text": part.text})
    return processor.apply_chat_template(
        [{"role": "user", "content": parts}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        enable_thinking=request.sampling.thinking,
        processor_kwargs={"max_soft_tokens": 70},
    )


def processor_ids(
    processor, request: Request, image: bytes | None = None, audio: bytes | None = None
) -> list[int]:
    return processor_inputs(processor, request, image, audio)["input_ids"][0].tolist()


def reference_raw(backend: HFBackend, inputs: dict[str, torch.Tensor], max_tokens: int) -> str:
    """Greedy output of the model itself on the processor's inputs, decoded like the backend."""
    inputs = {key: value.to(backend.model.device) for key, value in inputs.items()}
    with torch.inference_mode():
        out = backend.model.generate(
            **inputs, max_new_tokens=max_tokens, do_sample=False, eos_token_id=backend.stop_ids
        )
    return backend.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=False)


# --- the processor saved with the tiny model ---------------------------------------------


def test_tiny_model_comes_with_the_real_processor(processor, backend: HFBackend) -> None:
    assert type(processor).__name__ == "Gemma4UnifiedProcessor"
    assert type(processor.image_processor).__name__ == "Gemma4UnifiedImageProcessor"
    assert type(processor.feature_extractor).__name__ == "Gemma4UnifiedAudioFeatureExtractor"
    assert type(processor.video_processor).__name__ == "Gemma4UnifiedVideoProcessor"
    assert type(backend.processor) is type(processor)
    assert AudioLimits.of(processor) == AudioLimits(16_000, 640, 750)
    fp = backend.fingerprint()["processor"]
    assert fp["class"] == "Gemma4UnifiedProcessor" and fp["max_soft_tokens"] == 70
    assert fp["parts"]["image_processor"] == "Gemma4UnifiedImageProcessor" and len(fp["config_sha256"]) == 64


def test_text_only_fast_path_matches_the_processor(processor, backend: HFBackend) -> None:
    """Text-only requests skip the processor; its chat template gives the very same ids."""
    for thinking in (False, True):
        request = ask("t", "the cat sat", sampling=Sampling(thinking=thinking))
        assert backend.render(request) == processor_ids(processor, request)


# --- rendering: soft tokens, one BOS, order, thinking -------------------------------------


def test_image_and_audio_prompts_carry_their_soft_tokens(processor, backend: HFBackend) -> None:
    image, audio = png(), wav(1.0)
    seen = backend.render(ask("i", ImagePart(data=image), "what is this?"))
    heard = backend.render(ask("a", "transcribe:", AudioPart(data=audio)))
    assert seen == processor_ids(processor, ask("i", ImagePart(data=image), "what is this?"), image=image)
    assert heard == processor_ids(processor, ask("a", "transcribe:", AudioPart(data=audio)), audio=audio)
    own = processor.image_processor(Image.open(io.BytesIO(image)), max_soft_tokens=70)
    assert count(backend, seen, "<|image|>") == own["num_soft_tokens_per_image"][0] == 63
    assert count(backend, heard, "<|audio|>") == 25  # 1.0 s at 40 ms a token
    for ids in (seen, heard):
        assert ids[0] == backend.bos_id and ids.count(backend.bos_id) == 1
    text = backend.tokenizer.decode(seen)
    assert text.index("<|image>") < text.index("what is this?")  # parts keep the order given
    assert backend.tokenizer.decode(heard).index("transcribe:") < backend.tokenizer.decode(heard).index(
        "<|audio>"
    )


def test_image_budget_option_sets_the_soft_token_count(tiny_dir: Path, processor) -> None:
    image = png()
    for budget in (70, 280):
        backend = HFBackend(str(tiny_dir), max_soft_tokens=budget)
        encoded = backend.render_media(ask("i", ImagePart(data=image), "what?"))
        own = processor.image_processor(Image.open(io.BytesIO(image)), max_soft_tokens=budget)
        expected = own["num_soft_tokens_per_image"][0]
        assert count(backend, encoded.ids, "<|image|>") == expected == {70: 63, 280: 266}[budget]
        assert encoded.tensors["pixel_values"].shape[:2] == (1, budget)
        assert (
            backend.fingerprint()["max_soft_tokens"] == backend.fingerprint()["processor"]["max_soft_tokens"]
        )


def test_thinking_switch_with_media(backend: HFBackend) -> None:
    image = ImagePart(data=png())
    on = backend.tokenizer.decode(backend.render(ask("on", image, "hi", sampling=Sampling(thinking=True))))
    off = backend.tokenizer.decode(backend.render(ask("off", image, "hi", sampling=Sampling(thinking=False))))
    assert on.startswith("<bos><|turn>system\n<|think|><turn|>\n<|turn>user\n") and on.count("<bos>") == 1
    assert on.endswith("hi<turn|>\n<|turn>model\n")
    assert off.startswith("<bos><|turn>user\n") and off.endswith(
        "<|turn>model\n<|channel>thought\n<channel|>"
    )
    results = by_key(
        list(backend.generate([ask("on", image, "hi", sampling=Sampling(max_tokens=4, thinking=True))]))
    )
    assert results["on"].error is None and results["on"].completion_tokens > 0


# --- audio decoding -----------------------------------------------------------------------


def test_wrong_sample_rate_is_resampled_not_an_error(processor, backend: HFBackend) -> None:
    at_16k = backend.render(ask("a", "say", AudioPart(data=wav(1.0, 16_000))))
    at_44k = backend.render(ask("b", "say", AudioPart(data=wav(1.0, 44_100))))
    assert count(backend, at_16k, "<|audio|>") == count(backend, at_44k, "<|audio|>") == 25
    # What the resampling prevents: the feature extractor ignores the rate, 44.1 kHz gives 69 tokens.
    raw = processor.feature_extractor(noise_samples(1.0, 44_100)[:, 0], sampling_rate=44_100)
    assert int(raw["input_features_mask"].sum()) == 69


def test_stereo_is_mixed_to_mono_and_the_30_s_cap_holds(tmp_path: Path) -> None:
    limits = AudioLimits()
    left_right = np.stack([np.full(8000, 0.5), np.full(8000, 0.25)], axis=1).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, left_right, 8000, subtype="FLOAT")
    mono = load_audio(AudioPart(path=str(path)), limits)
    assert mono.dtype == np.float32 and mono.ndim == 1 and len(mono) == 16_000
    assert np.allclose(mono[100:-100], 0.375, atol=1e-3)
    assert len(load_audio(AudioPart(data=wav(30.0, 8000)), limits)) == limits.max_samples
    with pytest.raises(MediaError, match=r"audio clip is 30\.1 s; the model takes at most 30 s"):
        load_audio(AudioPart(data=wav(30.1, 8000)), limits)
    with pytest.raises(MediaError, match=r"audio clip is 30\.001 s"):  # not "30.0 s, at most 30 s"
        load_audio(AudioPart(data=wav(30.001, 8000)), limits)
    with pytest.raises(MediaError, match="audio clip is empty"):
        load_audio(AudioPart(data=wav(0.0, 8000)), limits)


# --- generation ---------------------------------------------------------------------------


def test_mixed_batch_generates_like_one_at_a_time(processor, backend: HFBackend, single: HFBackend) -> None:
    image, audio = png(), wav(1.0)
    requests = [
        ask("image", ImagePart(data=image), "what is this?"),
        ask("audio", "transcribe:", AudioPart(data=audio)),
        ask("text", "the cat sat on a mat"),
        ask("both", ImagePart(data=png(seed=5, size=(30, 30))), "and", AudioPart(data=wav(0.5, seed=2))),
    ]
    batched = by_key(list(backend.generate(requests)))  # one batch of four
    alone = by_key([c for r in requests for c in single.generate([r])])
    for key, completion in batched.items():
        assert completion.error is None and completion.completion_tokens > 0
        assert (completion.raw, completion.completion_tokens) == (
            alone[key].raw,
            alone[key].completion_tokens,
        )
        assert completion.prompt_tokens == alone[key].prompt_tokens
    # The backend gives the model what the processor gives for the request alone (ids, pixels,
    # positions, audio frames, mm_token_type_ids for the bidirectional image attention).
    for key, inputs in (
        ("image", processor_inputs(processor, requests[0], image=image)),
        ("audio", processor_inputs(processor, requests[1], audio=audio)),
    ):
        assert batched[key].prompt_tokens == inputs["input_ids"].shape[1]
        assert batched[key].raw == reference_raw(backend, inputs, GREEDY.max_tokens)
    assert batched["text"].prompt_tokens == len(backend.render(requests[2]))


def test_bad_media_give_error_completions_and_the_batch_goes_on(backend: HFBackend, tmp_path: Path) -> None:
    truncated = png()[:60]
    requests = [
        ask("good-image", ImagePart(data=png()), "what is this?"),
        ask("corrupt", ImagePart(data=b"these bytes are not an image"), "what is this?"),
        ask("truncated", ImagePart(data=truncated), "what is this?"),
        ask("missing", "transcribe:", AudioPart(path=str(tmp_path / "nope.wav"))),
        ask("not-audio", "transcribe:", AudioPart(data=b"RIFF....WAVEjunk")),
        ask("too-long", "transcribe:", AudioPart(data=wav(42.0, 8000))),
        ask("good-44k", "transcribe:", AudioPart(data=wav(1.0, 44_100))),
        ask("good-text", "hello"),
    ]
    results = by_key(list(backend.generate(requests)))
    assert len(results) == len(requests)
    expected = {
        "corrupt": "image (28 bytes) is not a readable image (unknown or corrupt format)",
        "truncated": "is not a readable image",
        "missing": f"audio file {str(tmp_path / 'nope.wav')!r} does not exist",
        "not-audio": "is not readable audio",
        "too-long": "audio clip is 42.0 s; the model takes at most 30 s",
    }
    for key, message in expected.items():
        assert results[key].finish_reason == "error" and message in (results[key].error or ""), results[key]
        assert results[key].error.startswith("MediaError: ") and "\n" not in results[key].error
    for key in ("good-image", "good-44k", "good-text"):
        assert results[key].error is None and results[key].completion_tokens > 0
    assert results["good-44k"].prompt_tokens == len(backend.render(requests[6]))


def test_media_without_a_processor_is_an_error_completion(tmp_path: Path) -> None:
    """A checkpoint saved without its processor still runs text; media requests say why they cannot."""
    backend = HFBackend(str(save_tiny_gemma4(tmp_path / "no-processor", with_processor=False)))
    assert backend.processor is None and backend.fingerprint()["processor"] is None
    results = by_key(
        list(backend.generate([ask("image", ImagePart(data=png()), "what?"), ask("text", "hi")]))
    )
    assert results["image"].finish_reason == "error"
    assert "need the model's processor, which did not load" in (results["image"].error or "")
    assert results["text"].error is None and results["text"].completion_tokens > 0
