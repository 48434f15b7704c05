"""API conformance of the vLLM backend with vLLM 0.33.0's real source (read with `ast`, never imported).

The names checked are not a hand-written list: the backend is run with every option through the
stand-in `vllm` (tests/vllm_standin), which records every keyword that reaches `LLM(...)`,
`LLM.chat`, `LLM.generate`, `SamplingParams(...)` and the speculative config, every content-part
type and `input_audio` key of the conversations, and every attribute read from the outputs; each
of those must exist in 0.33.0. A few facts the backend's design rests on are checked as well.
The source comes from the 0.33.0 wheel (cached after the first download, see
tests/vllm_standin/vllm_api_source.py); the test skips, naming the reason, only when it cannot be had.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.schema import AudioPart, ImagePart, Message, Request, Sampling
from runners.vllm import VLLMBackend

HERE = Path(__file__).parent
STANDIN = HERE / "vllm_standin"
SMOKE = HERE.parent / "tasks" / "smoke_data"


def _api_source() -> Any:
    spec = importlib.util.spec_from_file_location("vllm_api_source", STANDIN / "vllm_api_source.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOURCE = _api_source()


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    try:
        folder = SOURCE.ensure_sources()
    except SOURCE.SourcesUnavailable as exc:
        pytest.skip(f"vLLM {SOURCE.VERSION} source not available, API conformance unchecked: {exc}")
    SOURCE.write_api_json(folder)
    return SOURCE.read_api(folder)


@pytest.fixture(scope="module")
def used(real: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[str]]]:
    """Every name the backend passes to or reads from vLLM, with every option in use."""
    saved_path, saved_module = list(sys.path), sys.modules.pop("vllm", None)
    saved_env = {k: os.environ.get(k) for k in ("VLLM_STANDIN_API", "VLLM_STANDIN_LOG")}
    sys.path.insert(0, str(STANDIN))
    os.environ["VLLM_STANDIN_API"] = str(SOURCE.cache_dir() / "api.json")  # strict: real names only
    os.environ.pop("VLLM_STANDIN_LOG", None)
    try:
        import vllm

        yield _exercise(vllm, tmp_path_factory.mktemp("vllm-api"))
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("vllm", None)
        if saved_module is not None:
            sys.modules["vllm"] = saved_module
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _exercise(vllm: Any, tmp: Path) -> dict[str, set[str]]:
    model, drafter = tmp / "model", tmp / "drafter"
    model.mkdir()
    drafter.mkdir()
    backend = VLLMBackend(
        str(model),
        tensor_parallel_size=1,
        max_model_len=4096,
        gpu_memory_utilization=0.5,
        dtype="bfloat16",
        max_soft_tokens=280,
        limit_mm_per_prompt={"image": 2, "audio": 1},
        draft_model=str(drafter),
        draft_tokens=2,
        use_n=True,
        chunk_size=4,
        seed=1,
        enforce_eager=True,
        revision="main",
        progress=False,
        engine_args={"max_num_seqs": 8},
    )
    image, audio = SMOKE / "mmmu_pro_images" / "math_1.png", SMOKE / "covost2_audio" / "builtin-fr-1.wav"
    sampling = Sampling(temperature=1.0, top_p=0.9, top_k=5, max_tokens=16, stop=("STOP",))
    media = (
        Message.system("sys"),
        Message.user(ImagePart(path=str(image)), "[[think]] look, listen", AudioPart(path=str(audio))),
    )
    requests = [
        Request(
            f"m/{r}", "m", r, Sampling(**{**sampling.__dict__, "seed": r, "thinking": True}), messages=media
        )
        for r in range(2)
    ]
    requests.append(Request("t/0", "t", 0, Sampling(max_tokens=8), messages=(Message.user("[[length]]"),)))
    requests.append(Request("p/0", "p", 0, sampling, prompt="raw prompt"))
    completions = list(backend.generate(requests))
    assert len(completions) == len(requests)
    errors = [c.error for c in completions if c.error]
    assert not errors, f"the backend's calls failed on the strict stand-in: {errors[0]}"
    backend.close()

    found: dict[str, set[str]] = {key: set() for key in ("LLM", "LLM.chat", "LLM.generate", "SamplingParams")}
    found |= {
        key: set()
        for key in ("SpeculativeConfig", "speculative_methods", "chat_part_types", "input_audio_keys")
    }
    for record in vllm.RECORDS:
        if record["event"] == "init":
            found["LLM"] |= set(record["kwargs"])
            found["SpeculativeConfig"] |= set(record["kwargs"]["speculative_config"])
            found["speculative_methods"].add(record["kwargs"]["speculative_config"]["method"])
            continue
        call = f"LLM.{record['event']}"
        found[call] |= {
            "prompts" if call == "LLM.generate" else "messages",
            "sampling_params",
            *record["kwargs"],
        }
        found["SamplingParams"] |= {name for params in record["sampling"] for name in params}
        for conversation in record.get("conversations", []):
            for message in conversation:
                for part in message["content"] if isinstance(message["content"], list) else []:
                    found["chat_part_types"].add(part["type"])
                    found["input_audio_keys"] |= set(part.get("input_audio", {}))
    for name in vllm.ACCESSED:
        cls, _, attribute = name.partition(".")
        found.setdefault(cls, set()).add(attribute)
    return found


def test_source_is_vllm_0_33_0(real: dict[str, Any]) -> None:
    assert real["version"] == "0.33.0"


def test_every_name_the_backend_uses_exists_in_vllm(real: dict[str, Any], used: dict[str, set[str]]) -> None:
    assert set(used) == {
        "LLM",
        "LLM.chat",
        "LLM.generate",
        "SamplingParams",
        "SpeculativeConfig",
        "speculative_methods",
        "chat_part_types",
        "input_audio_keys",
        "RequestOutput",
        "CompletionOutput",
    }
    missing = {
        group: sorted(names - set(real[group])) for group, names in used.items() if names - set(real[group])
    }
    assert not missing, f"names the backend uses that vLLM {real['version']} lacks: {missing}"
    total = sum(len(names) for names in used.values())
    assert total >= 40, f"only {total} names were exercised; the exercise lost coverage"
    print(
        f"\nvLLM API conformance: {total} names checked: {dict(sorted((k, sorted(v)) for k, v in used.items()))}"
    )


def test_the_standins_builtin_api_is_a_subset_of_the_real_one(real: dict[str, Any]) -> None:
    sys.path.insert(0, str(STANDIN))
    try:
        spec = importlib.util.spec_from_file_location("standin_vllm", STANDIN / "vllm" / "__init__.py")
        standin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(standin)
    finally:
        sys.path.remove(str(STANDIN))
    for group, names in standin.FALLBACK_API.items():
        assert set(names) <= set(real[group]), (
            f"stand-in {group} accepts {sorted(set(names) - set(real[group]))}"
        )


def test_facts_the_backend_relies_on(real: dict[str, Any]) -> None:
    facts = real["facts"]
    assert facts["llm_kwargs_go_to_engine_args"], (
        "LLM(**kwargs) no longer reaches EngineArgs: engine_args breaks"
    )
    assert facts["sampling_top_k_default"] == 0, "top_k 'off' is no longer 0"
    assert facts["n_children_seed_plus_index"], (
        "n>1 children are no longer seeded seed+i: use_n would change outputs"
    )
    assert {"stop", "length"} <= set(facts["finish_reasons"])
    assert facts["llm_refuses_data_parallel"], (
        "LLM accepts data_parallel_size now; own worker processes still work"
    )
    assert facts["gemma4_image_budget_key"], (
        "gemma4 processor no longer reads mm_processor_kwargs['max_soft_tokens']"
    )
    assert facts["gemma4_unified_registered"]
    assert facts["gemma4_unified_reads_vision_num_soft_tokens"], (
        "vLLM no longer reads vision_config.num_soft_tokens: tiny_gemma4 need not write it"
    )
    assert facts["gemma4_assistant_rewritten_to_mtp"]
    assert "mtp" in real["speculative_methods"]
