"""One vLLM engine for the vLLM backend: its settings (`VLLMOptions`, the backend's declared
options), the `vllm.LLM` built from them, and the step that turns a chunk of requests into engine
calls and the engine's outputs into Completions.

Shared by the in-process backend (`runners.vllm`) and the data-parallel worker processes
(`runners.vllm_worker`), so neither imports the other for it. vLLM itself is imported only inside
functions; this module imports without it. It does not locate models, fingerprint them, chunk a
whole run across workers or cache anything.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evals.schema import BackendOptions, Completion, FinishReason, Request, option
from runners.chat_wire import wire_message
from runners.outputs import error_completion, error_message, split_output
from runners.repeats import RepeatGroup

INSTALL_HINT = "backend 'vllm' needs the package 'vllm'; install it with: pip install -e '.[vllm]'"
DTYPES = ("auto", "bfloat16", "float16", "float32", "half", "float")
MTP_METHOD = "mtp"
DEFAULT_CHUNK_SIZE = 512
# LLM/EngineArgs keywords this backend sets from its own options; engine_args may not repeat them.
OWN_ENGINE_KEYS = (
    "model",
    "revision",
    "tensor_parallel_size",
    "data_parallel_size",
    "max_model_len",
    "gpu_memory_utilization",
    "dtype",
    "seed",
    "enforce_eager",
    "mm_processor_kwargs",
    "limit_mm_per_prompt",
    "speculative_config",
)
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def import_vllm() -> Any:
    """The `vllm` module, or a one-line ValueError saying how to install it."""
    if importlib.util.find_spec("vllm") is None:
        raise ValueError(INSTALL_HINT)
    import vllm

    return vllm


# --- options ------------------------------------------------------------------------------


def _positive_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _mapping(name: str, value: Any, example: str) -> dict[str, Any]:
    """A dict option given as a dict or (from the command line) as JSON text."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a mapping (or JSON object text), e.g. {example}")
    return dict(value)


def _mm_limits(value: Any) -> dict[str, int] | None:
    """`limit_mm_per_prompt` as a dict, from a dict, JSON text or `image=4,audio=2`."""
    if value is None:
        return None
    if isinstance(value, str) and "=" in value and not value.lstrip().startswith("{"):
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        value = {k.strip(): int(v) if v.strip().isdigit() else v for k, _, v in pairs}
    limits = _mapping("limit_mm_per_prompt", value, "image=4,audio=2")
    for kind, count in limits.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(
                f"limit_mm_per_prompt['{kind}'] must be a count >= 0, got {count!r}; e.g. image=4"
            )
    return limits


@dataclass(frozen=True)
class VLLMOptions(BackendOptions):
    """The "vllm" backend's options (`--backend-opt KEY=VALUE`), validated on construction; a
    dict given as text (the command line) is parsed here. Picklable, so that data-parallel workers
    build the same engine."""

    tensor_parallel_size: int = option(1, "GPUs per engine (tensor parallelism)")
    data_parallel_size: int = option(1, "engines, one worker process each (data parallelism)")
    max_model_len: int | None = option(None, "context length, prompt + output (default: the model's)")
    gpu_memory_utilization: float | None = option(None, "share of GPU memory vLLM may take, in (0, 1]")
    dtype: str = option("auto", f"weights dtype: {', '.join(DTYPES)}")
    max_soft_tokens: int | None = option(None, "image token budget (the processor's max_soft_tokens)")
    limit_mm_per_prompt: Mapping[str, int] | str | None = option(
        None, "most media items per prompt, e.g. image=4,audio=2"
    )
    draft_model: str | None = option(None, "MTP drafter checkpoint (speculative decoding)")
    draft_tokens: int | None = option(None, "tokens drafted per step (needs draft_model)")
    use_n: bool = option(False, "send the repeats of one prompt as one engine request with n outputs")
    chunk_size: int = option(DEFAULT_CHUNK_SIZE, "requests per engine call (a crash loses at most one)")
    seed: int = option(0, "engine seed (each request also carries its own)")
    enforce_eager: bool = option(False, "no CUDA graphs (slower, less memory, faster start)")
    revision: str | None = option(None, "hub revision of the model")
    engine_args: Mapping[str, Any] | str | None = option(
        None, 'more vllm.LLM keywords as a JSON object, e.g. {"quantization": "fp8"}'
    )

    def __post_init__(self) -> None:
        for name in ("tensor_parallel_size", "data_parallel_size", "chunk_size"):
            _positive_int(name, getattr(self, name))
        for name in ("max_model_len", "max_soft_tokens", "draft_tokens"):
            _positive_int(name, getattr(self, name), optional=True)
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose one of: {', '.join(DTYPES)}")
        memory = self.gpu_memory_utilization
        if memory is not None and (isinstance(memory, bool) or not 0 < memory <= 1):
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {memory!r}")
        if self.draft_tokens is not None and self.draft_model is None:
            raise ValueError("draft_tokens needs draft_model (the MTP drafter checkpoint)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        # canonical forms (frozen: set once, here)
        object.__setattr__(self, "limit_mm_per_prompt", _mm_limits(self.limit_mm_per_prompt))
        extra = _mapping("engine_args", self.engine_args, '{"quantization": "fp8"}')
        object.__setattr__(self, "engine_args", extra)
        clash = sorted(set(extra) & set(OWN_ENGINE_KEYS))
        if clash:
            raise ValueError(
                f"engine_args sets '{clash[0]}', which is a backend option; pass it as {clash[0]}=... instead"
            )

    @property
    def extra_engine_args(self) -> dict[str, Any]:
        """`engine_args` as a dict (empty when none were given)."""
        return dict(self.engine_args or {})  # type: ignore[arg-type]

    @property
    def speculative_config(self) -> dict[str, Any] | None:
        if self.draft_model is None:
            return None
        return {
            "method": MTP_METHOD,
            "model": self.draft_model,
            "num_speculative_tokens": self.draft_tokens or 1,
        }

    def llm_kwargs(self, model: str) -> dict[str, Any]:
        """The keyword arguments of `vllm.LLM(...)` for `model` (a path or hub id): set options
        only, so vLLM's defaults hold."""
        kwargs: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": self.tensor_parallel_size,
            "dtype": self.dtype,
            "seed": self.seed,
        }
        optional = {
            "revision": self.revision,
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "limit_mm_per_prompt": self.limit_mm_per_prompt,
            "speculative_config": self.speculative_config,
        }
        kwargs.update({name: value for name, value in optional.items() if value is not None})
        if self.enforce_eager:
            kwargs["enforce_eager"] = True
        if self.max_soft_tokens is not None:  # the image budget, as HF's processor gets it
            kwargs["mm_processor_kwargs"] = {"max_soft_tokens": self.max_soft_tokens}
        kwargs.update(self.extra_engine_args)
        return kwargs


def chunk_units(units: Sequence[RepeatGroup], size: int) -> list[list[RepeatGroup]]:
    """Consecutive chunks of at most `size` requests (a unit larger than `size` is a chunk alone)."""
    chunks: list[list[RepeatGroup]] = []
    current: list[RepeatGroup] = []
    count = 0
    for unit in units:
        if current and count + unit.n > size:
            chunks.append(current)
            current, count = [], 0
        current.append(unit)
        count += unit.n
    if current:
        chunks.append(current)
    return chunks


def sampling_kwargs(unit: RepeatGroup) -> dict[str, Any]:
    """The keyword arguments of `vllm.SamplingParams` for a unit (top_k 0 is vLLM's "off")."""
    sampling = unit.first.sampling
    return {
        "n": unit.n,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": max(sampling.top_k, 0),
        "max_tokens": sampling.max_tokens,
        "seed": sampling.seed,
        "stop": list(sampling.stop),
        "skip_special_tokens": False,  # keep <|channel>...<channel|> for split_output
        "spaces_between_special_tokens": False,  # decode like transformers' fast tokenizers
    }


def engine_input(request: Request) -> str | list[dict[str, Any]]:
    """A raw prompt string, or the OpenAI-style conversation `LLM.chat` takes (reads media files)."""
    if request.prompt is not None:
        return request.prompt
    return [wire_message(message) for message in request.messages]


def call_key(request: Request) -> tuple[str, bool]:
    """Requests with the same key can share one engine call: generate vs chat, and thinking (one
    `chat_template_kwargs` per call)."""
    if request.prompt is not None:
        return ("generate", False)
    return ("chat", request.sampling.thinking)


# --- engine outputs to Completions --------------------------------------------------------


def error_completions(unit: RepeatGroup, reason: str, prompt_tokens: int = 0) -> list[Completion]:
    return [error_completion(r, reason, prompt_tokens=prompt_tokens) for r in unit.requests]


def completion_from_output(key: str, output: Any, prompt_tokens: int, seconds: float) -> Completion:
    """One vLLM `CompletionOutput` (text decoded with special tokens kept) as a Completion."""
    raw = output.text or ""
    split = split_output(raw)
    reason = output.finish_reason
    finish = _FINISH.get(reason, "error")
    return Completion(
        key=key,
        text=split.answer,
        raw=raw,
        reasoning=split.reasoning,
        thought_open=split.thought_open,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(output.token_ids or ()),
        seconds=seconds,
        error=None if finish != "error" else f"vLLM finished the request with reason {reason!r}",
    )


def unit_completions(unit: RepeatGroup, output: Any, seconds: float) -> list[Completion]:
    """A `RequestOutput`'s n outputs (ordered by their `index`) matched to the unit's requests."""
    prompt_tokens = len(output.prompt_token_ids or ())
    outputs = sorted(output.outputs, key=lambda o: o.index)
    if len(outputs) != unit.n:
        reason = f"vLLM returned {len(outputs)} outputs for n={unit.n}"
        return error_completions(unit, reason, prompt_tokens)
    return [
        completion_from_output(request.key, out, prompt_tokens, seconds)
        for request, out in zip(unit.requests, outputs, strict=True)
    ]


# --- one engine -----------------------------------------------------------------------------


class Engine:
    """One `vllm.LLM` and the chunk step over it (used in-process and by data-parallel workers)."""

    def __init__(self, model: str, options: VLLMOptions, progress: bool = True):
        self.vllm = import_vllm()
        self.llm = self.vllm.LLM(**options.llm_kwargs(model))
        self.progress = progress

    def run_chunk(self, units: Sequence[RepeatGroup]) -> list[Completion]:
        """Completions for every request of `units`: one engine call per call key (usually one)."""
        completions: list[Completion] = []
        calls: dict[tuple[str, bool], list[tuple[RepeatGroup, Any]]] = {}
        for unit in units:
            try:
                calls.setdefault(call_key(unit.first), []).append((unit, engine_input(unit.first)))
            except Exception as exc:
                completions.extend(error_completions(unit, error_message(exc)))
        for batch in calls.values():
            completions.extend(self._call(batch))
        return completions

    def _call(self, batch: list[tuple[RepeatGroup, Any]]) -> list[Completion]:
        start = time.perf_counter()
        try:
            outputs = self._submit(batch)
            if len(outputs) != len(batch):
                raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(batch)} prompts")
        except Exception as exc:
            if len(batch) == 1:
                return error_completions(batch[0][0], error_message(exc))
            return [completion for item in batch for completion in self._call([item])]
        seconds = (time.perf_counter() - start) / sum(unit.n for unit, _ in batch)
        return [
            completion
            for (unit, _), output in zip(batch, outputs, strict=True)
            for completion in unit_completions(unit, output, seconds)
        ]

    def _submit(self, batch: list[tuple[RepeatGroup, Any]]) -> list[Any]:
        params = [self.vllm.SamplingParams(**sampling_kwargs(unit)) for unit, _ in batch]
        inputs = [item for _, item in batch]
        first = batch[0][0].first
        if first.prompt is not None:
            return self.llm.generate(inputs, params, use_tqdm=self.progress)
        return self.llm.chat(
            inputs,
            params,
            use_tqdm=self.progress,
            chat_template_kwargs={"enable_thinking": first.sampling.thinking},
        )
