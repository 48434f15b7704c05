"""A stand-in for the `vllm` package (0.33.0 API), used only by the vLLM backend's tests.

It loads no model. It records exactly what reaches the engine (LLM keyword arguments, chat
conversations, prompts, `chat_template_kwargs`, every SamplingParams) in `RECORDS` and, when
`VLLM_STANDIN_LOG` names a file, as JSON lines there (data-parallel workers are other processes);
it records which attributes of its outputs are read in `ACCESSED`. It is strict: a keyword that
vLLM 0.33.0 does not take raises TypeError. The accepted names come from the JSON file named by
`VLLM_STANDIN_API` (written by tests/test_vllm_api.py from the real 0.33.0 source), else from
`FALLBACK_API` below, which that test checks against the real source too.

Outputs are made up from the prompt so tests can follow them: the answer echoes the last user
text with the sample's seed (`seed + index`, as vLLM seeds its n children) and index. Directives in
the text script the engine: `[[think]]` (a Gemma 4 thought block before the answer), `[[open]]` (a
thought block cut by the token budget), `[[length]]`, `[[abort]]` (finish reasons), `[[raise]]`
(the engine call raises ValueError), `[[crash]]` (the process exits with code 3).
"""

from __future__ import annotations

import json
import os
from typing import Any

__version__ = "0.33.0"

RECORDS: list[dict[str, Any]] = []
ACCESSED: set[str] = set()

# A subset of the real 0.33.0 API: enough for the backend; checked by tests/test_vllm_api.py.
FALLBACK_API: dict[str, list[str]] = {
    "LLM": [
        "model",
        "tensor_parallel_size",
        "dtype",
        "quantization",
        "revision",
        "tokenizer_revision",
        "chat_template",
        "seed",
        "gpu_memory_utilization",
        "enforce_eager",
        "mm_processor_kwargs",
        "max_model_len",
        "limit_mm_per_prompt",
        "speculative_config",
        "data_parallel_size",
        "kv_cache_dtype",
        "max_num_seqs",
        "enable_prefix_caching",
    ],
    "LLM.chat": ["messages", "sampling_params", "use_tqdm", "chat_template_kwargs", "mm_processor_kwargs"],
    "LLM.generate": ["prompts", "sampling_params", "use_tqdm", "mm_processor_kwargs"],
    "SamplingParams": [
        "n",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "stop",
        "stop_token_ids",
        "max_tokens",
        "logprobs",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "include_stop_str_in_output",
    ],
    "SpeculativeConfig": ["method", "model", "num_speculative_tokens"],
    "speculative_methods": ["mtp", "draft_model", "ngram", "eagle", "eagle3"],
    "chat_part_types": ["text", "image_url", "input_audio", "image_pil", "audio_url", "video_url"],
    "CompletionOutput": [
        "index",
        "text",
        "token_ids",
        "cumulative_logprob",
        "logprobs",
        "finish_reason",
        "stop_reason",
    ],
    "RequestOutput": ["request_id", "prompt", "prompt_token_ids", "outputs", "finished"],
}


def api() -> dict[str, set[str]]:
    path = os.environ.get("VLLM_STANDIN_API")
    table = FALLBACK_API
    if path:
        with open(path) as handle:
            table = json.load(handle)
    return {name: set(values) for name, values in table.items() if isinstance(values, list)}


def _record(event: str, **data: Any) -> None:
    entry = {"event": event, "pid": os.getpid(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), **data}
    RECORDS.append(entry)
    path = os.environ.get("VLLM_STANDIN_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")


def _check_names(where: str, given: dict[str, Any]) -> None:
    allowed = api()[where]
    for name in given:
        if name not in allowed:
            raise TypeError(f"{where}() got an unexpected keyword argument '{name}' (not in vLLM 0.33.0)")


class _Recorded:
    """Records every public attribute read (class.attribute) in ACCESSED."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            ACCESSED.add(f"{type(self).__name__}.{name}")
        return object.__getattribute__(self, name)


class CompletionOutput(_Recorded):
    def __init__(self, index: int, text: str, token_ids: list[int], finish_reason: str | None):
        self.index = index
        self.text = text
        self.token_ids = token_ids
        self.cumulative_logprob = None
        self.logprobs = None
        self.finish_reason = finish_reason
        self.stop_reason = None


class RequestOutput(_Recorded):
    def __init__(self, request_id: str, prompt: str | None, prompt_token_ids: list[int], outputs: list[Any]):
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.outputs = outputs
        self.finished = True


class SamplingParams:
    def __init__(self, **kwargs: Any):
        _check_names("SamplingParams", kwargs)
        self.kwargs = kwargs
        self.n = kwargs.get("n", 1)
        self.seed = kwargs.get("seed")
        top_k = kwargs.get("top_k", 0)
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}.")
        if not isinstance(top_k, int) or top_k < -1:
            raise ValueError(f"top_k must be 0 (disable), or at least 1, got {top_k}.")
        if kwargs.get("temperature", 1.0) < 0:
            raise ValueError("temperature must be non-negative")
        max_tokens = kwargs.get("max_tokens", 16)
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")


def _text_of(conversation: Any) -> str:
    if isinstance(conversation, str):
        return conversation
    content = conversation[-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(part["text"] for part in content if part["type"] == "text")


def _check_conversation(conversation: Any) -> None:
    if not isinstance(conversation, list) or not conversation:
        raise ValueError("a conversation must be a non-empty list of messages")
    types = api()["chat_part_types"]
    for message in conversation:
        if set(message) != {"role", "content"} or message["role"] not in ("system", "user", "assistant"):
            raise ValueError(f"bad chat message {message!r}")
        if isinstance(message["content"], str):
            continue
        for part in message["content"]:
            if part.get("type") not in types or part["type"] not in part:
                raise ValueError(f"bad content part {part!r}")
            if part["type"] == "image_url" and not part["image_url"]["url"].startswith("data:image/"):
                raise ValueError("image_url must be a data URI here")
            if part["type"] == "input_audio" and set(part["input_audio"]) != {"data", "format"}:
                raise ValueError("input_audio needs exactly data and format")


def _outputs(prompts: list[Any], params: list[SamplingParams]) -> list[RequestOutput]:
    results = []
    for i, (prompt, sp) in enumerate(zip(prompts, params, strict=True)):
        text = _text_of(prompt)
        if "[[raise]]" in text:
            raise ValueError("stand-in engine: this prompt makes the call fail")
        if "[[crash]]" in text:
            os._exit(3)
        outs = []
        for index in range(sp.n):
            seed = None if sp.seed is None else sp.seed + index
            answer = f"echo:{text}|seed={seed}|i={index}"
            reason = "stop"
            if "[[think]]" in text:
                answer = f"<|channel>thought\nreasoning {seed}<channel|>{answer}"
            if "[[open]]" in text:
                answer, reason = f"<|channel>thought\nstill thinking {seed}", "length"
            if "[[length]]" in text:
                reason = "length"
            if "[[abort]]" in text:
                reason = "abort"
            outs.append(CompletionOutput(index, answer, list(range(len(answer) // 4 + 1)), reason))
        prompt_ids = list(range(len(json.dumps(prompt)) // 10 + 1))
        results.append(RequestOutput(str(i), prompt if isinstance(prompt, str) else None, prompt_ids, outs))
    return results


def _param_list(sampling_params: Any, count: int) -> list[SamplingParams]:
    if isinstance(sampling_params, SamplingParams):
        return [sampling_params] * count
    params = list(sampling_params)
    if len(params) != count:
        raise ValueError("The lengths of prompts and sampling_params must be the same.")
    return params


class LLM:
    def __init__(self, model: str, **kwargs: Any):
        _check_names("LLM", {"model": model, **kwargs})
        if int(kwargs.get("data_parallel_size", 1)) > 1:
            raise ValueError("LLM(data_parallel_size>1) is not supported for single-process usage")
        spec = kwargs.get("speculative_config")
        if spec is not None:
            allowed = api()["SpeculativeConfig"]
            unknown = sorted(set(spec) - allowed)
            if unknown:
                raise TypeError(f"SpeculativeConfig has no field '{unknown[0]}' in vLLM 0.33.0")
            if spec.get("method") not in api()["speculative_methods"]:
                raise ValueError(f"unknown speculative method {spec.get('method')!r}")
        if "[[load-fails]]" in model:
            raise RuntimeError("stand-in engine: cannot load this model")
        self.model = model
        _record("init", kwargs={"model": model, **kwargs})

    def chat(self, messages: Any, sampling_params: Any = None, **kwargs: Any) -> list[RequestOutput]:
        _check_names("LLM.chat", {"messages": messages, "sampling_params": sampling_params, **kwargs})
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        for conversation in conversations:
            _check_conversation(conversation)
        params = _param_list(sampling_params, len(conversations))
        _record(
            "chat",
            conversations=conversations,
            sampling=[p.kwargs for p in params],
            kwargs={k: v for k, v in kwargs.items()},
        )
        return _outputs(conversations, params)

    def generate(self, prompts: Any, sampling_params: Any = None, **kwargs: Any) -> list[RequestOutput]:
        _check_names("LLM.generate", {"prompts": prompts, "sampling_params": sampling_params, **kwargs})
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        params = _param_list(sampling_params, len(prompts))
        _record("generate", prompts=prompts, sampling=[p.kwargs for p in params], kwargs=dict(kwargs))
        return _outputs(prompts, params)
