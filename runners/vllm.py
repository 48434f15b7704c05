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

The options (`VLLMOptions`), the engine and the chunk step live in `runners.vllm_engine`, shared
with the data-parallel workers: `data_parallel_size` > 1 runs K worker processes
(`runners.vllm_worker`), each with its own GPU group and engine; `tensor_parallel_size` is passed
to each engine. vLLM itself is imported only inside functions, so the harness imports this module
without it. This module does not cache, score, or draw a progress bar of its own (`progress` only
switches vLLM's per-chunk bar).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evals.schema import BackendOptions, Completion, Request, build_options
from runners.fingerprint import quick_digest, text_sha256, weight_files
from runners.repeats import group_repeats
from runners.vllm_engine import MTP_METHOD, Engine, VLLMOptions, chunk_units, import_vllm
from runners.vllm_worker import WorkerPool


def vllm_version() -> str:
    """The installed vLLM version, read from package metadata (falls back to `vllm.__version__`)."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return str(import_vllm().__version__)


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

    options_type: type[BackendOptions] = VLLMOptions
    takes_image_budget = True

    def __init__(self, model: str, options: VLLMOptions | None = None, **overrides: Any) -> None:
        build_options(VLLMOptions, overrides, owner=f"backend '{self.name}'")  # names and types
        opts = dataclasses.replace(options or VLLMOptions(), **overrides)
        import_vllm()  # a clear error before anything else when vLLM is missing
        self.model, self.local = locate_model(model)
        if opts.draft_model is not None:
            opts = dataclasses.replace(opts, draft_model=locate_model(opts.draft_model)[0])
        self.options = opts
        self._engine: Engine | None = None
        self._pool: WorkerPool | None = None  # when data_parallel_size > 1
        self._fingerprint: dict[str, Any] | None = None

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield one Completion per request, chunk by chunk (or worker chunk by worker chunk)."""
        opts = self.options
        units = group_repeats(requests, use_n=opts.use_n)
        if not units:
            return
        if opts.data_parallel_size > 1:
            if self._pool is None:
                self._pool = WorkerPool(self.model, opts)
            yield from self._pool.run(units)
            return
        if self._engine is None:
            self._engine = Engine(self.model, opts, opts.progress)
        for chunk in chunk_units(units, opts.chunk_size):
            yield from self._engine.run_chunk(chunk)

    def fingerprint(self) -> dict[str, Any]:
        """vLLM version, model and revision, weights identity, dtype, image budget, context
        length, speculative settings, chat template hash and extra engine arguments; parallelism,
        paths and scheduling settings go under "location" (they do not change the outputs)."""
        if self._fingerprint is None:
            opts = self.options
            directory = local_directory(self.model, self.local, opts.revision)
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
                "model": Path(self.model).name if self.local else self.model,
                "revision": opts.revision,
                "weights": weights_identity(directory),
                "dtype": opts.dtype,
                "max_soft_tokens": opts.max_soft_tokens,
                "max_model_len": opts.max_model_len,
                "speculative": drafter,
                "chat_template_sha256": text_sha256(
                    chat_template_text(directory, opts.extra_engine_args.get("chat_template"))
                ),
                "engine_args": opts.extra_engine_args,
                "location": {
                    "model": self.model,
                    "draft_model": opts.draft_model,
                    "tensor_parallel_size": opts.tensor_parallel_size,
                    "data_parallel_size": opts.data_parallel_size,
                    "gpu_memory_utilization": opts.gpu_memory_utilization,
                    "limit_mm_per_prompt": opts.limit_mm_per_prompt,
                    "enforce_eager": opts.enforce_eager,
                    "seed": opts.seed,
                    "chunk_size": opts.chunk_size,
                    "use_n": opts.use_n,
                },
            }
        return self._fingerprint

    def close(self) -> None:
        """Stop data-parallel workers (bounded waits) and drop the in-process engine."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._engine = None
