"""Contract tests of the vLLM backend against the stand-in `vllm` package (tests/vllm_standin).

The stand-in records exactly what reaches the engine and rejects keywords that vLLM 0.33.0 does not
take (checked against the real source when tests/test_vllm_api.py has cached it). These tests say
nothing about what real vLLM generates: tests/test_vllm_gpu.py does that where a GPU is present.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals import registry
from evals.generation import model_hash
from evals.schema import AudioPart, ImagePart, Message, Request, Sampling
from runners.repeats import group_repeats
from runners.vllm import VLLMBackend
from runners.vllm_worker import device_groups, shard_units

HERE = Path(__file__).parent
STANDIN = HERE / "vllm_standin"
SMOKE = HERE.parent / "tasks" / "smoke_data"
IMAGE = SMOKE / "mmmu_pro_images" / "math_1.png"
AUDIO = SMOKE / "covost2_audio" / "builtin-fr-1.wav"


def _api_source() -> Any:
    spec = importlib.util.spec_from_file_location("vllm_api_source", STANDIN / "vllm_api_source.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """The stand-in `vllm` on sys.path (and PYTHONPATH, for worker processes), logging to a file."""
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(STANDIN), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setenv("VLLM_STANDIN_LOG", str(tmp_path / "engine.jsonl"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    api = _api_source().cached_api_json()
    if api is not None:  # validate against the real 0.33.0 names, not the built-in subset
        monkeypatch.setenv("VLLM_STANDIN_API", str(api))
    import vllm

    assert hasattr(vllm, "RECORDS"), "the real vllm was imported instead of the stand-in"
    yield vllm
    sys.modules.pop("vllm", None)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-model"
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "gemma4_unified"}')
    (path / "model.safetensors").write_bytes(b"weights" * 100)
    (path / "chat_template.jinja").write_text("{{ messages }}")
    return path


def make(model_dir: Path, **options: Any) -> VLLMBackend:
    return VLLMBackend(str(model_dir), progress=False, **options)


def req(
    key: str, *parts: Any, seed: int = 0, repeat: int = 0, thinking: bool = False, **sampling: Any
) -> Request:
    return Request(
        key=key,
        sample_id=key.split("/")[0],
        repeat=repeat,
        sampling=Sampling(seed=seed, thinking=thinking, **sampling),
        messages=(Message.user(*parts),),
    )


def events(vllm: Any, kind: str) -> list[dict[str, Any]]:
    return [r for r in vllm.RECORDS if r["event"] == kind]


def logged(kind: str) -> list[dict[str, Any]]:
    lines = Path(os.environ["VLLM_STANDIN_LOG"]).read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def run(backend: VLLMBackend, requests: list[Request]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for completion in backend.generate(requests):
        assert completion.key not in out, f"{completion.key} yielded twice"
        out[completion.key] = completion
    assert set(out) == {r.key for r in requests}
    return out


# --- registry and options -------------------------------------------------------------------


def test_registry_names_the_backend() -> None:
    assert registry.BACKENDS["vllm"] == "runners.vllm:VLLMBackend"
    assert registry.backend_class("vllm") is VLLMBackend


def test_missing_vllm_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(
        ValueError, match=r"needs the package 'vllm'; install it with: pip install -e '\.\[vllm\]'"
    ):
        make(model_dir)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size must be a positive integer"),
        ({"data_parallel_size": "2x"}, "backend 'vllm' option 'data_parallel_size' takes int, got '2x'"),
        ({"tensor_parralel_size": 2}, "backend 'vllm' has no option 'tensor_parralel_size'; its options:"),
        ({"dtype": "fp7"}, "unknown dtype 'fp7'; choose one of"),
        ({"gpu_memory_utilization": 1.5}, r"gpu_memory_utilization must be in \(0, 1\]"),
        ({"draft_tokens": 2}, "draft_tokens needs draft_model"),
        (
            {"engine_args": {"max_model_len": 9}},
            "engine_args sets 'max_model_len'.*pass it as max_model_len=",
        ),
        ({"engine_args": "not json"}, "engine_args must be a mapping"),
        ({"limit_mm_per_prompt": {"image": -1}}, r"limit_mm_per_prompt\['image'\] must be a count"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"max_soft_tokens": 0}, "max_soft_tokens must be a positive integer"),
    ],
)
def test_bad_options_are_one_line_errors(model_dir: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        make(model_dir, **options)
    assert "\n" not in str(info.value)


def test_missing_model_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist; pass a model directory or a hub id"):
        VLLMBackend(str(tmp_path / "nope"))


def test_engine_gets_exactly_the_options(standin: Any, model_dir: Path, tmp_path: Path) -> None:
    drafter = tmp_path / "drafter"
    drafter.mkdir()
    backend = make(
        model_dir,
        tensor_parallel_size=2,
        max_model_len=8192,
        gpu_memory_utilization=0.8,
        dtype="bfloat16",
        max_soft_tokens=280,
        limit_mm_per_prompt="image=4,audio=2",
        draft_model=str(drafter),
        draft_tokens=3,
        seed=7,
        enforce_eager=True,
        revision="abc123",
        engine_args='{"kv_cache_dtype": "fp8"}',
    )
    run(backend, [req("a/0", "hi")])
    (init,) = events(standin, "init")
    assert init["kwargs"] == {
        "model": str(model_dir.resolve()),
        "tensor_parallel_size": 2,
        "dtype": "bfloat16",
        "seed": 7,
        "revision": "abc123",
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.8,
        "limit_mm_per_prompt": {"image": 4, "audio": 2},
        "speculative_config": {"method": "mtp", "model": str(drafter.resolve()), "num_speculative_tokens": 3},
        "enforce_eager": True,
        "mm_processor_kwargs": {"max_soft_tokens": 280},
        "kv_cache_dtype": "fp8",
    }


def test_defaults_leave_vllm_defaults_alone(standin: Any, model_dir: Path) -> None:
    run(make(model_dir), [req("a/0", "hi")])
    (init,) = events(standin, "init")
    assert init["kwargs"] == {
        "model": str(model_dir.resolve()),
        "tensor_parallel_size": 1,
        "dtype": "auto",
        "seed": 0,
    }


def test_engine_loads_lazily_once(standin: Any, model_dir: Path) -> None:
    backend = make(model_dir)
    assert events(standin, "init") == []  # nothing loads when every request is cached
    run(backend, [req("a/0", "x")])
    run(backend, [req("b/0", "y")])  # e.g. follow-up turns
    assert len(events(standin, "init")) == 1


def test_unknown_engine_arg_is_rejected_by_the_strict_standin(model_dir: Path) -> None:
    backend = make(model_dir, engine_args={"no_such_engine_arg": 1})
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such_engine_arg'"):
        run(backend, [req("a/0", "x")])


# --- what reaches the engine ----------------------------------------------------------------


def test_chat_conversation_carries_text_and_media_in_order(standin: Any, model_dir: Path) -> None:
    image = IMAGE.read_bytes()
    messages = (
        Message.system("Be brief."),
        Message.user(
            ImagePart(path=str(IMAGE)),
            ImagePart(data=image),
            "Describe, then transcribe:",
            AudioPart(path=str(AUDIO)),
        ),
    )
    request = Request("m/0", "m", 0, Sampling(seed=3), messages=messages)
    run(make(model_dir), [request])
    (chat,) = events(standin, "chat")
    ((system, user),) = chat["conversations"]
    assert system == {"role": "system", "content": "Be brief."}
    assert [p["type"] for p in user["content"]] == ["image_url", "image_url", "text", "input_audio"]
    for part in user["content"][:2]:
        url = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == image
    assert user["content"][2] == {"type": "text", "text": "Describe, then transcribe:"}
    audio = user["content"][3]["input_audio"]
    assert audio["format"] == "wav"
    assert base64.b64decode(audio["data"]) == AUDIO.read_bytes()
    assert chat["kwargs"] == {"use_tqdm": False, "chat_template_kwargs": {"enable_thinking": False}}


def test_sampling_params_per_request(standin: Any, model_dir: Path) -> None:
    requests = [
        req("a/0", "one", seed=11, temperature=0.7, top_p=0.9, top_k=20, max_tokens=64, stop=("END",)),
        req("b/0", "two", seed=12),
    ]
    run(make(model_dir), requests)
    (chat,) = events(standin, "chat")
    assert chat["sampling"] == [
        {
            "n": 1,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 20,
            "max_tokens": 64,
            "seed": 11,
            "stop": ["END"],
            "skip_special_tokens": False,
            "spaces_between_special_tokens": False,
        },
        {
            "n": 1,
            "temperature": 0.0,
            "top_p": 1.0,
            "top_k": 0,  # vLLM 0.33's "off" (test_vllm_api checks it is SamplingParams' default)
            "max_tokens": 1024,
            "seed": 12,
            "stop": [],
            "skip_special_tokens": False,
            "spaces_between_special_tokens": False,
        },
    ]


def test_thinking_goes_to_the_chat_template_per_call(standin: Any, model_dir: Path) -> None:
    requests = [req("a/0", "p", thinking=True), req("b/0", "q"), req("c/0", "r", thinking=True)]
    out = run(make(model_dir), requests)
    calls = events(standin, "chat")
    assert [c["kwargs"]["chat_template_kwargs"] for c in calls] == [
        {"enable_thinking": True},
        {"enable_thinking": False},
    ]
    assert [len(c["conversations"]) for c in calls] == [2, 1]
    assert out["b/0"].text.startswith("echo:q|")  # outputs went back to the right keys
    assert out["c/0"].text.startswith("echo:r|")


def test_raw_prompts_go_to_generate(standin: Any, model_dir: Path) -> None:
    raw = Request("p/0", "p", 0, Sampling(seed=5, max_tokens=9), prompt="<bos>Once upon")
    out = run(make(model_dir), [raw, req("c/0", "chat")])
    (generate,) = events(standin, "generate")
    assert generate["prompts"] == ["<bos>Once upon"]
    assert generate["sampling"][0]["max_tokens"] == 9 and generate["sampling"][0]["seed"] == 5
    assert generate["kwargs"] == {"use_tqdm": False}
    assert len(events(standin, "chat")) == 1
    assert out["p/0"].text == "echo:<bos>Once upon|seed=5|i=0"


# --- outputs back to requests ---------------------------------------------------------------


def test_use_n_fans_out_consecutive_seeds_to_the_right_keys(standin: Any, model_dir: Path) -> None:
    repeats = [req(f"s/{r}", "same", seed=10 + r, repeat=r, temperature=1.0) for r in (2, 0, 3, 1)]
    gap = req("s/9", "same", seed=19, repeat=9, temperature=1.0)  # seed 19 does not follow 13
    other = req("t/0", "different", seed=10, temperature=1.0)
    out = run(make(model_dir, use_n=True), [*repeats, gap, other])
    (chat,) = events(standin, "chat")
    assert [(s["n"], s["seed"]) for s in chat["sampling"]] == [(4, 10), (1, 19), (1, 10)]
    for r in range(4):  # vLLM seeds child i with seed + i: key s/r gets the sample of seed 10 + r
        assert out[f"s/{r}"].text == f"echo:same|seed={10 + r}|i={r}"
    assert out["s/9"].text == "echo:same|seed=19|i=0"
    assert out["t/0"].text == "echo:different|seed=10|i=0"


def test_without_use_n_every_repeat_is_its_own_prompt(standin: Any, model_dir: Path) -> None:
    run(make(model_dir), [req(f"s/{r}", "same", seed=r, repeat=r) for r in range(3)])
    (chat,) = events(standin, "chat")
    assert [(s["n"], s["seed"]) for s in chat["sampling"]] == [(1, 0), (1, 1), (1, 2)]


def test_thinking_split_finish_reasons_and_token_counts(standin: Any, model_dir: Path) -> None:
    out = run(
        make(model_dir),
        [
            req("think/0", "[[think]]", seed=4),
            req("open/0", "[[open]]"),
            req("len/0", "[[length]]"),
            req("ab/0", "[[abort]]"),
        ],
    )
    think = out["think/0"]
    assert (think.text, think.reasoning, think.thought_open, think.finish_reason) == (
        "echo:[[think]]|seed=4|i=0",
        "reasoning 4",
        False,
        "stop",
    )
    assert think.raw.startswith("<|channel>thought\n")
    assert think.completion_tokens == len(think.raw) // 4 + 1
    conversation = [{"role": "user", "content": "[[think]]"}]
    assert think.prompt_tokens == len(json.dumps(conversation)) // 10 + 1
    assert (out["open/0"].text, out["open/0"].thought_open, out["open/0"].finish_reason) == (
        "",
        True,
        "length",
    )
    assert out["len/0"].finish_reason == "length" and out["len/0"].error is None
    assert out["ab/0"].finish_reason == "error" and "reason 'abort'" in out["ab/0"].error


def test_a_failing_request_is_isolated(standin: Any, model_dir: Path, tmp_path: Path) -> None:
    requests = [
        req("ok/0", "fine"),
        req("bad/0", "[[raise]]"),
        req("gone/0", ImagePart(path=str(tmp_path / "missing.png")), "what?"),
        req("ok/1", "also fine"),
    ]
    out = run(make(model_dir), requests)
    assert out["ok/0"].error is None and out["ok/1"].error is None
    assert out["bad/0"].error == "ValueError: stand-in engine: this prompt makes the call fail"
    assert "missing.png' cannot be read" in out["gone/0"].error
    assert all(out[k].finish_reason == "error" for k in ("bad/0", "gone/0"))


def test_chunks_are_yielded_before_the_next_engine_call(standin: Any, model_dir: Path) -> None:
    stream = make(model_dir, chunk_size=2).generate([req(f"k/{i}", f"q{i}", seed=i) for i in range(5)])
    first = [next(stream), next(stream)]
    assert len(events(standin, "chat")) == 1  # the first chunk is out; the second not started
    rest = list(stream)
    assert [len(c["conversations"]) for c in events(standin, "chat")] == [2, 2, 1]
    assert sorted(c.key for c in first + rest) == [f"k/{i}" for i in range(5)]


def test_use_n_chunks_count_requests(standin: Any, model_dir: Path) -> None:
    requests = [req(f"s{p}/{r}", f"prompt {p}", seed=r, repeat=r) for p in range(3) for r in range(4)]
    run(make(model_dir, use_n=True, chunk_size=5), requests)
    assert [[s["n"] for s in c["sampling"]] for c in events(standin, "chat")] == [[4], [4], [4]]


# --- identity -------------------------------------------------------------------------------


def test_fingerprint_contents_and_location(model_dir: Path, tmp_path: Path) -> None:
    drafter = tmp_path / "drafter"
    drafter.mkdir()
    (drafter / "model.safetensors").write_bytes(b"drafter")
    print_ = make(model_dir, max_soft_tokens=280, draft_model=str(drafter), draft_tokens=2).fingerprint()
    assert print_["backend"] == "vllm" and print_["vllm"] == "0.33.0"
    assert print_["model"] == "tiny-model" and print_["weights"]["files"] == ["model.safetensors"]
    assert len(print_["weights"]["quick_sha256"]) == 64 and len(print_["chat_template_sha256"]) == 64
    assert print_["speculative"]["method"] == "mtp" and print_["speculative"]["num_speculative_tokens"] == 2
    assert print_["speculative"]["weights"]["files"] == ["model.safetensors"]
    assert print_["location"]["model"] == str(model_dir.resolve())
    json.dumps(print_)
    base = model_hash(make(model_dir))
    assert (
        model_hash(make(model_dir, tensor_parallel_size=4, data_parallel_size=2, chunk_size=7, use_n=True))
        == base
    )
    assert model_hash(make(model_dir, max_soft_tokens=70)) != base
    assert model_hash(make(model_dir, dtype="float32")) != base
    (model_dir / "chat_template.jinja").write_text("{{ other }}")
    assert model_hash(make(model_dir)) != base


# --- data parallel (worker processes) -------------------------------------------------------


def test_device_groups_and_sharding_are_deterministic() -> None:
    assert device_groups(2, 1, "4,5") == [["4"], ["5"]]
    assert device_groups(2, 2, None) == [["0", "1"], ["2", "3"]]
    with pytest.raises(ValueError, match="needs 4 GPUs but CUDA_VISIBLE_DEVICES lists 3"):
        device_groups(2, 2, "0,1,2")
    units = group_repeats(
        [req(f"p{p}/{r}", f"prompt {p}", seed=r) for p in range(5) for r in range(2)], use_n=False
    )
    shards = shard_units(units, 2)
    assert [[u.first.key for u in shard] for shard in shards] == [
        ["p0/0", "p0/1", "p2/0", "p2/1", "p4/0", "p4/1"],
        ["p1/0", "p1/1", "p3/0", "p3/1"],
    ]


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging: a data-parallel test gets 90 seconds."""

    def timeout(*_: Any) -> None:
        raise TimeoutError("data-parallel run hung")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(90)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.slow
def test_data_parallel_workers_get_their_own_gpus_and_all_results(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, alarm: None
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    backend = make(model_dir, data_parallel_size=2, chunk_size=2, use_n=True)
    try:
        requests = [req(f"p{p}/{r}", f"prompt {p}", seed=r, repeat=r) for p in range(5) for r in range(2)]
        out = run(backend, requests)
        assert all(c.error is None for c in out.values())
        assert out["p3/1"].text == "echo:prompt 3|seed=1|i=1"
        inits = logged("init")
        assert sorted(e["cuda"] for e in inits) == ["4", "5"] and len({e["pid"] for e in inits}) == 2
        assert os.getpid() not in {e["pid"] for e in inits}
        by_gpu: dict[str, list[str]] = {}
        for call in logged("chat"):
            by_gpu.setdefault(call["cuda"], []).extend(c[-1]["content"] for c in call["conversations"])
        assert by_gpu == {"4": ["prompt 0", "prompt 2", "prompt 4"], "5": ["prompt 1", "prompt 3"]}
        processes = [w.process for w in backend._pool._workers.values()]
        run(backend, [req("again/0", "again")])  # workers stay up: no new engine load
        assert len(logged("init")) == 2
    finally:
        backend.close()
    assert not any(p.is_alive() for p in processes)


@pytest.mark.slow
def test_a_dead_worker_gives_error_completions_and_the_others_go_on(model_dir: Path, alarm: None) -> None:
    backend = make(model_dir, data_parallel_size=2, tensor_parallel_size=2, chunk_size=1)
    try:
        # prompts deal round-robin: worker 1 gets p1, p3 (crashes), p5 (never run)
        requests = [req(f"p{p}/0", "[[crash]]" if p == 3 else f"prompt {p}") for p in range(6)]
        started = time.monotonic()
        out = run(backend, requests)
        assert time.monotonic() - started < 60
        assert [k for k, c in out.items() if c.error is None] == sorted(
            ["p0/0", "p2/0", "p4/0", "p1/0"], key=list(out).index
        )
        for key in ("p3/0", "p5/0"):
            assert out[key].finish_reason == "error"
            assert (
                out[key].error
                == "data-parallel worker 1 (CUDA_VISIBLE_DEVICES=2,3) exited with code 3 before finishing"
            )
        assert sorted(e["cuda"] for e in logged("init")) == ["0,1", "2,3"]
        out = run(backend, [req(f"q{p}/0", f"retry {p}") for p in range(2)])  # the dead worker is restarted
        assert all(c.error is None for c in out.values())
    finally:
        backend.close()


@pytest.mark.slow
def test_workers_that_cannot_load_give_error_completions(tmp_path: Path, alarm: None) -> None:
    model = tmp_path / "model[[load-fails]]"
    model.mkdir()
    backend = make(model, data_parallel_size=2)
    try:
        out = run(backend, [req(f"p{p}/0", f"prompt {p}") for p in range(3)])
    finally:
        backend.close()
    assert {c.error for c in out.values()} == {
        "data-parallel worker 0 (CUDA_VISIBLE_DEVICES=0) engine failed to load: RuntimeError: stand-in engine: cannot load this model",
        "data-parallel worker 1 (CUDA_VISIBLE_DEVICES=1) engine failed to load: RuntimeError: stand-in engine: cannot load this model",
    }


@pytest.mark.slow
def test_workers_that_cannot_load_a_large_shard_give_error_completions(tmp_path: Path, alarm: None) -> None:
    model = tmp_path / "model[[load-fails]]"
    model.mkdir()
    backend = make(model, data_parallel_size=2)
    big = "x" * 200_000  # each shard is far larger than a pipe's buffer: the send meets a closed pipe
    try:
        out = run(backend, [req(f"p{p}/0", f"{big} {p}") for p in range(4)])
    finally:
        backend.close()
    assert all(c.finish_reason == "error" and "engine failed to load" in c.error for c in out.values())


def test_worker_and_backend_do_not_import_each_other() -> None:
    """The engine, its options and the chunk step live in runners.vllm_engine; the worker imports
    that, never the backend module (which imports the worker)."""
    import ast

    def imported(module: str) -> set[str]:
        tree = ast.parse((HERE.parent / "runners" / f"{module}.py").read_text())
        names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        return names | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    assert "runners.vllm" not in imported("vllm_worker") | imported("vllm_engine")
    assert "runners.vllm_worker" not in imported("vllm_engine")
