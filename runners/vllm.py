"""vLLM backend (`VLLMBackend`, backend name "vllm"): offline `vllm.LLM` with continuous batching.

Chat requests go to `LLM.chat` as OpenAI-style conversations (built by `runners.chat_wire`: text,
`image_url` data URIs, `input_audio` base64 clips, in the order the task gave them) with
`chat_template_kwargs={"enable_thinking": ...}`; raw `prompt` requests go to `LLM.generate`. Every
request gets its own `SamplingParams` (its seed, `skip_special_tokens=False` so that Gemma 4's
thought channel survives decoding and `runners.outputs.split_output` splits it as for HF).

The request set is processed in chunks of `chunk_size` requests: each chunk is one engine call
(continuous batching inside it) and its completions are yielded before the next chunk starts, so
the runner commits them to the cache as they come and a crash loses at most one chunk. With
`use_n`, repeats of one prompt whose seeds run consecutively (s, s+1, ...) become one engine request
with `SamplingParams(n=k, seed=s)`; vLLM gives its k-th child the seed s+k (vllm/v1/engine/
parallel_sampling.py), so each output is what the lone request with that seed would produce.
A request whose inputs cannot be built, or that makes an engine call fail, gets an error
Completion (a failed call is retried request by request to find the culprit).

`data_parallel_size` > 1 runs K worker processes (`runners.vllm_worker`), each with its own GPU
group and engine; `tensor_parallel_size` is passed to each engine. vLLM itself is imported only
inside functions, so the harness imports this module without it. This module does not cache,
score, or draw a progress bar of its own (`progress` only switches vLLM's per-chunk bar).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.schema import Completion, FinishReason, Request
from runners.chat_wire import wire_message
from runners.hf_fingerprint import quick_digest, text_sha256, weight_files
from runners.outputs import split_output

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


def vllm_version() -> str:
    """The installed vLLM version, read from package metadata (falls back to `vllm.__version__`)."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return str(import_vllm().__version__)


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


def locate_model(model: str) -> tuple[str, bool]:
    """(what vLLM loads, whether it is a local path): an existing directory or file becomes an
    absolute path; a hub id (`org/name`) is kept; a path that does not exist is an error."""
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve()), True
    if model.startswith(("/", ".", "~")) or model.count("/") != 1:
        raise ValueError(
            f"model path {model!r} does not exist; pass a model directory or a hub id 'org/name'"
        )
    return model, False


@dataclass(frozen=True)
class VLLMOptions:
    """Validated engine settings; picklable, so data-parallel workers build the same engine."""

    model: str
    local: bool = False
    revision: str | None = None
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    dtype: str = "auto"
    max_soft_tokens: int | None = None
    limit_mm_per_prompt: dict[str, int] | None = None
    draft_model: str | None = None
    draft_tokens: int | None = None
    seed: int = 0
    enforce_eager: bool = False
    engine_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _positive_int("tensor_parallel_size", self.tensor_parallel_size)
        _positive_int("data_parallel_size", self.data_parallel_size)
        _positive_int("max_model_len", self.max_model_len, optional=True)
        _positive_int("max_soft_tokens", self.max_soft_tokens, optional=True)
        _positive_int("draft_tokens", self.draft_tokens, optional=True)
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose one of: {', '.join(DTYPES)}")
        memory = self.gpu_memory_utilization
        if memory is not None and (isinstance(memory, bool) or not 0 < memory <= 1):
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {memory!r}")
        if self.draft_tokens is not None and self.draft_model is None:
            raise ValueError("draft_tokens needs draft_model (the MTP drafter checkpoint)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        clash = sorted(set(self.engine_args) & set(OWN_ENGINE_KEYS))
        if clash:
            raise ValueError(
                f"engine_args sets '{clash[0]}', which is a backend option; pass it as {clash[0]}=... instead"
            )

    @property
    def speculative_config(self) -> dict[str, Any] | None:
        if self.draft_model is None:
            return None
        return {
            "method": MTP_METHOD,
            "model": self.draft_model,
            "num_speculative_tokens": self.draft_tokens or 1,
        }

    def llm_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `vllm.LLM(...)`: set options only, so vLLM's defaults hold."""
        kwargs: dict[str, Any] = {
            "model": self.model,
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
        kwargs.update(self.engine_args)
        return kwargs


# --- requests to engine calls -------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """Requests sent to the engine as one prompt: a single request, or (with `use_n`) repeats of
    one prompt with consecutive seeds, sent once with n = their count (outputs in seed order)."""

    requests: tuple[Request, ...]

    @property
    def first(self) -> Request:
        return self.requests[0]

    @property
    def n(self) -> int:
        return len(self.requests)


def group_units(requests: Sequence[Request], use_n: bool) -> list[Unit]:
    """One Unit per request, or with `use_n` one per run of consecutive seeds among requests that
    differ only in seed (same messages or prompt, same other sampling settings)."""
    if not use_n:
        return [Unit((request,)) for request in requests]
    groups: dict[Any, list[Request]] = {}
    for request in requests:
        key = (request.messages, request.prompt, dataclasses.replace(request.sampling, seed=0))
        groups.setdefault(key, []).append(request)
    units: list[Unit] = []
    for members in groups.values():
        members.sort(key=lambda r: r.sampling.seed)
        run = [members[0]]
        for request in members[1:]:
            if request.sampling.seed == run[-1].sampling.seed + 1:
                run.append(request)
            else:
                units.append(Unit(tuple(run)))
                run = [request]
        units.append(Unit(tuple(run)))
    return units


def chunk_units(units: Sequence[Unit], size: int) -> list[list[Unit]]:
    """Consecutive chunks of at most `size` requests (a unit larger than `size` is a chunk alone)."""
    chunks: list[list[Unit]] = []
    current: list[Unit] = []
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


def sampling_kwargs(unit: Unit) -> dict[str, Any]:
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


def error_message(exc: BaseException) -> str:
    """`Type: first line of the message` (or just the type)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def error_completions(unit: Unit, reason: str, prompt_tokens: int = 0) -> list[Completion]:
    return [
        Completion(key=r.key, text="", finish_reason="error", prompt_tokens=prompt_tokens, error=reason)
        for r in unit.requests
    ]


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


def unit_completions(unit: Unit, output: Any, seconds: float) -> list[Completion]:
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

    def __init__(self, options: VLLMOptions, progress: bool = True):
        self.vllm = import_vllm()
        self.llm = self.vllm.LLM(**options.llm_kwargs())
        self.progress = progress

    def run_chunk(self, units: Sequence[Unit]) -> list[Completion]:
        """Completions for every request of `units`: one engine call per call key (usually one)."""
        completions: list[Completion] = []
        calls: dict[tuple[str, bool], list[tuple[Unit, Any]]] = {}
        for unit in units:
            try:
                calls.setdefault(call_key(unit.first), []).append((unit, engine_input(unit.first)))
            except Exception as exc:
                completions.extend(error_completions(unit, error_message(exc)))
        for batch in calls.values():
            completions.extend(self._call(batch))
        return completions

    def _call(self, batch: list[tuple[Unit, Any]]) -> list[Completion]:
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

    def _submit(self, batch: list[tuple[Unit, Any]]) -> list[Any]:
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


# --- identity -----------------------------------------------------------------------------


def local_directory(model: str, local: bool, revision: str | None) -> Path | None:
    """The model's directory: the path itself, or the hub cache's snapshot (no download)."""
    if local:
        path = Path(model)
        return path if path.is_dir() else path.parent
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, revision=revision, local_files_only=True))
    except Exception:
        return None


def weights_identity(directory: Path | None) -> dict[str, Any] | None:
    if directory is None:
        return None
    paths = weight_files(directory)
    return {"files": [p.name for p in paths], "quick_sha256": quick_digest(paths)} if paths else None


def chat_template_text(directory: Path | None, override: Any = None) -> str | None:
    """The chat template vLLM will use: an explicit `chat_template` (path or text), else the
    model's `chat_template.jinja`, `chat_template.json` or `tokenizer_config.json` entry."""
    if override is not None:
        path = Path(str(override))
        return path.read_text() if path.is_file() else str(override)
    if directory is None:
        return None
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = directory / name
        if path.is_file():
            template = json.loads(path.read_text()).get("chat_template")
            if template is not None:
                return template if isinstance(template, str) else json.dumps(template, sort_keys=True)
    return None


# --- the backend --------------------------------------------------------------------------


class VLLMBackend:
    """Run a model with vLLM's offline engine (see the module docstring)."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        dtype: str = "auto",
        max_soft_tokens: int | None = None,
        limit_mm_per_prompt: dict[str, int] | str | None = None,
        draft_model: str | None = None,
        draft_tokens: int | None = None,
        use_n: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        seed: int = 0,
        enforce_eager: bool = False,
        revision: str | None = None,
        progress: bool = True,
        engine_args: dict[str, Any] | str | None = None,
    ):
        import_vllm()  # a clear error before anything else when vLLM is missing
        path, local = locate_model(model)
        drafter = locate_model(draft_model)[0] if draft_model is not None else None
        self.options = VLLMOptions(
            model=path,
            local=local,
            revision=revision,
            tensor_parallel_size=tensor_parallel_size,
            data_parallel_size=data_parallel_size,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            max_soft_tokens=max_soft_tokens,
            limit_mm_per_prompt=_mm_limits(limit_mm_per_prompt),
            draft_model=drafter,
            draft_tokens=draft_tokens,
            seed=seed,
            enforce_eager=bool(enforce_eager),
            engine_args=_mapping("engine_args", engine_args, '{"quantization": "fp8"}'),
        )
        self.chunk_size = _positive_int("chunk_size", chunk_size)
        self.use_n = bool(use_n)
        self.progress = bool(progress)
        self._engine: Engine | None = None
        self._pool: Any = None  # runners.vllm_worker.WorkerPool when data_parallel_size > 1
        self._fingerprint: dict[str, Any] | None = None

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield one Completion per request, chunk by chunk (or worker chunk by worker chunk)."""
        units = group_units(requests, self.use_n)
        if not units:
            return
        if self.options.data_parallel_size > 1:
            if self._pool is None:
                from runners.vllm_worker import WorkerPool

                self._pool = WorkerPool(self.options, self.chunk_size, self.progress)
            yield from self._pool.run(units)
            return
        if self._engine is None:
            self._engine = Engine(self.options, self.progress)
        for chunk in chunk_units(units, self.chunk_size):
            yield from self._engine.run_chunk(chunk)

    def fingerprint(self) -> dict[str, Any]:
        """vLLM version, model and revision, weights identity, dtype, image budget, context
        length, speculative settings, chat template hash and extra engine arguments; parallelism,
        paths and scheduling settings go under "location" (they do not change the outputs)."""
        if self._fingerprint is None:
            opts = self.options
            directory = local_directory(opts.model, opts.local, opts.revision)
            drafter = None
            if opts.draft_model is not None:
                spec_path, spec_local = locate_model(opts.draft_model)
                drafter = {
                    "method": MTP_METHOD,
                    "model": Path(spec_path).name if spec_local else spec_path,
                    "weights": weights_identity(local_directory(spec_path, spec_local, None)),
                    "num_speculative_tokens": opts.draft_tokens or 1,
                }
            self._fingerprint = {
                "backend": self.name,
                "vllm": vllm_version(),
                "model": Path(opts.model).name if opts.local else opts.model,
                "revision": opts.revision,
                "weights": weights_identity(directory),
                "dtype": opts.dtype,
                "max_soft_tokens": opts.max_soft_tokens,
                "max_model_len": opts.max_model_len,
                "speculative": drafter,
                "chat_template_sha256": text_sha256(
                    chat_template_text(directory, opts.engine_args.get("chat_template"))
                ),
                "engine_args": opts.engine_args,
                "location": {
                    "model": opts.model,
                    "draft_model": opts.draft_model,
                    "tensor_parallel_size": opts.tensor_parallel_size,
                    "data_parallel_size": opts.data_parallel_size,
                    "gpu_memory_utilization": opts.gpu_memory_utilization,
                    "limit_mm_per_prompt": opts.limit_mm_per_prompt,
                    "enforce_eager": opts.enforce_eager,
                    "seed": opts.seed,
                    "chunk_size": self.chunk_size,
                    "use_n": self.use_n,
                },
            }
        return self._fingerprint

    def close(self) -> None:
        """Stop data-parallel workers (bounded waits) and drop the in-process engine."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._engine = None
