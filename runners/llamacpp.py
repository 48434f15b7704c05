"""llama.cpp backend (`LlamaCppBackend`, backend name "llamacpp"): a GGUF model served by a private
llama-server, driven through the OpenAI-compatible client.

On construction it reads the GGUF header once (`runners.gguf_meta`: scalars and tensor types, no
vocabulary arrays, no tensors) and starts `llama-server` (`runners.llama_server`) on a free
loopback port with one slot per concurrent request (`parallel`), each slot with its own KV cache of
`ctx_size` tokens (the server gets `ctx_size * parallel`; the default `ctx_size` is the model's
trained context length: lower it for long-context models, whose KV cache grows with it), the
multimodal projector (`mmproj`: a path, or by default the one `mmproj*.gguf` beside the model
file, as GGUF releases ship it) for image and audio parts, an image token budget matching the HF
backend's `max_soft_tokens` (`--image-min-tokens` = `--image-max-tokens` = budget: images are
scaled to fill it, as the Gemma 4 processor does), and optionally an MTP drafter (`draft_model`:
`--spec-type draft-mtp -md`). Generation is `runners.openai.OpenAIBackend` against that server, so
retries, concurrency and the wire format are shared with the "openai" backend; a request sent
after the server died fails at once with the server's last log line instead of being retried.

Determinism: with a KV cache per slot, greedy outputs are the same from run to run.
`unified_kv=True` (`--kv-unified`: all slots share one pool of `ctx_size` tokens) needs less
memory and is faster with many slots, but is NOT deterministic: with parallel > 1, SmolLM2's greedy
outputs differed between two identical runs for most of 64 prompts. It is off by default and
recorded in the fingerprint, so cached completions of the two modes never mix.

Server flags chosen so that results line up with the HF backend: `--skip-chat-parsing --special
--reasoning-format none` return the generated text verbatim, special tokens included (Gemma 4's
`<|channel>thought ... <channel|>` and the closing `<turn|>`), and `runners.outputs.split_output`
splits thought from answer exactly as for HF; `--top-k 0 --min-p 0` turn off llama.cpp's default
truncation samplers, so a request's own temperature / top_p / top_k (0 = off) are the only
sampling settings, as in HF.

For cross-backend parity checks: `render(request)` gives the prompt token ids the server uses for a
text request (its own /apply-template then /tokenize), and `greedy_ids(ids, n)` the greedy
continuation of given prompt ids (/completion, temperature 0), stopping before any
end-of-generation token.

Model, `mmproj` and `draft_model` are file paths: `pkg:` and `builtin:` specs are resolved by the
harness before the backend is built. It does not convert or quantize models
(`runners.gguf_convert`), build llama.cpp (`scripts/build_llama_cpp.sh`), or cache completions.
"""

from __future__ import annotations

import dataclasses
import functools
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from evals.schema import AudioPart, BackendOptions, ImagePart, Request, build_options, iter_parts, option
from runners import chat_wire
from runners.fingerprint import quick_digest, text_sha256
from runners.gguf_meta import GGUFFormatError, quantization, read_header
from runners.http_retry import RequestFailed, Transient
from runners.llama_server import LlamaServer, find_llama_server, last_log_line
from runners.openai import OpenAIBackend, OpenAIOptions

DEFAULT_CTX_SIZE = 4096  # when the GGUF does not say how long a context the model was trained for
# Verbatim output (special tokens kept, no server-side reasoning parser) and HF-like sampling.
FIXED_ARGS = (
    "--skip-chat-parsing",
    "--special",
    "--reasoning-format",
    "none",
    "--top-k",
    "0",
    "--min-p",
    "0",
)
_FIX = "pass a .gguf file (convert a Hugging Face directory with runners.gguf_convert)"


class UnsupportedInput(ValueError):
    """A request this method cannot handle (e.g. `render` of a media request)."""


# --- the GGUF file ------------------------------------------------------------------------


@dataclass(frozen=True)
class GGUFInfo:
    """What the harness reads from a GGUF's metadata (no tensors are loaded)."""

    architecture: str | None
    context_length: int | None
    chat_template: str | None
    quantization: dict[str, Any]
    bos_id: int | None  # the BOS the tokenizer adds to a prompt (None when it adds none)

    @staticmethod
    def read(path: Path) -> GGUFInfo:
        """One pass over the header (`runners.gguf_meta.read_header`)."""
        try:
            header = read_header(path)
        except GGUFFormatError as exc:
            raise ValueError(f"{exc}; {_FIX}") from exc
        values = header.values
        architecture = values.get("general.architecture")
        context = values.get(f"{architecture}.context_length") if architecture else None
        quant = quantization(header)
        file_type = quant.get("file_type") or ""
        short = file_type.removeprefix("MOSTLY_").removeprefix("ALL_") or None
        bos, adds_bos = values.get("tokenizer.ggml.bos_token_id"), values.get("tokenizer.ggml.add_bos_token")
        template = values.get("tokenizer.chat_template")
        return GGUFInfo(
            bos_id=int(bos) if bos is not None and adds_bos else None,
            architecture=str(architecture) if architecture is not None else None,
            context_length=int(context) if context else None,
            chat_template=template if isinstance(template, str) else None,
            quantization={"format": "gguf", "type": short, **quant},
        )


def gguf_path(spec: str | Path, what: str) -> Path:
    """A GGUF file from its path; a one-line ValueError otherwise."""
    spec = str(spec)
    if spec.startswith(("pkg:", "builtin:")):
        raise ValueError(
            f"{what} {spec!r} is a model spec, not a file: the harness resolves specs (evals run); "
            "here pass the .gguf file's path"
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        raise ValueError(f"{what} {spec!r} is a directory, not a GGUF file; {_FIX}")
    if not path.is_file():
        raise ValueError(f"{what} file {spec!r} does not exist; {_FIX}")
    if path.suffix != ".gguf":
        raise ValueError(f"{what} file {spec!r} is not a .gguf file; {_FIX}")
    return path.resolve()


def find_mmproj(model: Path, mmproj: str | None) -> Path | None:
    """The projector to load: an explicit path; with "auto", the one `mmproj*.gguf` file beside the
    model (as GGUF releases ship it), if there is exactly one; None or "none" for text only."""
    if mmproj is None or mmproj == "none":
        return None
    if mmproj != "auto":
        return gguf_path(mmproj, "mmproj")
    beside = sorted(p for p in model.parent.glob("*.gguf") if p.name.startswith("mmproj") and p != model)
    if len(beside) > 1:
        names = ", ".join(p.name for p in beside)
        raise ValueError(f"several projectors beside {model.name} ({names}); pick one with mmproj=PATH")
    return beside[0].resolve() if beside else None


def file_identity(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else {"file": path.name, "quick_sha256": quick_digest([path])}


def _arg_identity(arg: str) -> Any:
    """A server argument as it identifies outputs: a file by name and quick digest, not its path."""
    path = Path(arg).expanduser()
    return file_identity(path) if path.is_file() else arg


@functools.cache
def supports_flag(binary: str, flag: str) -> bool:
    """Whether `binary --help` lists `flag` (e.g. --kv-unified, absent from older builds)."""
    try:
        result = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in result.stdout + result.stderr


# --- the backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class LlamaCppOptions(BackendOptions):
    """The "llamacpp" backend's options (`--backend-opt KEY=VALUE`). `mmproj` and `draft_model`
    are file paths (the harness resolves `pkg:`/`builtin:` specs before the backend is built)."""

    mmproj: str | None = option(
        "auto", "multimodal projector .gguf; 'auto': the one mmproj*.gguf beside the model; 'none': text only"
    )
    server_binary: str | None = option(
        None, "llama-server binary (default: $EVALS_LLAMA_SERVER, PATH, build)"
    )
    parallel: int = option(4, "server slots, i.e. requests generated at once")
    ctx_size: int | None = option(None, "context per request, prompt + output (default: the model's)")
    threads: int | None = option(None, "CPU threads (default: llama-server's choice)")
    max_soft_tokens: int | None = option(None, "image token budget (--image-min/max-tokens)")
    draft_model: str | None = option(None, "MTP drafter .gguf for speculative decoding")
    draft_tokens: int | None = option(None, "tokens drafted per step (needs draft_model)")
    unified_kv: bool = option(
        False, "one KV pool shared by all slots (--kv-unified): faster, but greedy outputs vary run to run"
    )
    startup_timeout: float = option(120.0, "seconds to wait for the server to load the model")
    extra_args: tuple[str, ...] | str = option(
        (),
        "more llama-server arguments (one shell-quoted string on the command line); part of the fingerprint",
    )
    timeout: float = option(600.0, "seconds one request may take")
    max_retries: int = option(2, "retries of a request that failed transiently")
    use_n: bool = option(False, "send the repeats of one prompt as one request with n choices")


class LlamaCppBackend(OpenAIBackend):
    """A GGUF model on a private llama-server (see the module docstring)."""

    name = "llamacpp"
    options_type: type[BackendOptions] = LlamaCppOptions
    takes_image_budget = True

    def __init__(self, model: str, options: LlamaCppOptions | None = None, **overrides: Any) -> None:
        build_options(LlamaCppOptions, overrides, owner=f"backend '{self.name}'")  # names and types
        opts = dataclasses.replace(options or LlamaCppOptions(), **overrides)
        extra = opts.extra_args
        opts = dataclasses.replace(
            opts, extra_args=tuple(shlex.split(extra)) if isinstance(extra, str) else tuple(map(str, extra))
        )
        for name in ("parallel", "ctx_size", "threads", "max_soft_tokens", "draft_tokens"):
            value = getattr(opts, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if opts.draft_tokens is not None and opts.draft_model is None:
            raise ValueError("draft_tokens needs draft_model; pass the MTP drafter's .gguf as draft_model")
        self.model_path = gguf_path(model, "model")
        self.mmproj_path = find_mmproj(self.model_path, opts.mmproj)
        self.draft_path = gguf_path(opts.draft_model, "draft_model") if opts.draft_model is not None else None
        binary = find_llama_server(opts.server_binary)
        if opts.unified_kv and not supports_flag(str(binary), "--kv-unified"):
            raise ValueError(f"{binary} has no --kv-unified flag; drop unified_kv or build a newer llama.cpp")
        self.info = GGUFInfo.read(self.model_path)
        self.bos_id = self.info.bos_id  # for evals.parity's one-BOS check
        self.max_soft_tokens = opts.max_soft_tokens
        self.draft_tokens = opts.draft_tokens
        self.unified_kv = opts.unified_kv
        per_sequence = opts.ctx_size or self.info.context_length or DEFAULT_CTX_SIZE
        self.ctx_per_sequence = per_sequence  # a request's prompt + output must fit in it
        self.extra_args = tuple(opts.extra_args)
        self.server = LlamaServer(
            self.model_path,
            mmproj=self.mmproj_path,
            parallel=opts.parallel,
            # Split caches give each slot 1/parallel of the total; a unified pool lets any one
            # sequence use all of it. Either way one request may use `per_sequence` tokens.
            ctx_size=per_sequence if opts.unified_kv else per_sequence * opts.parallel,
            threads=opts.threads,
            extra_args=(*self._server_args(), *self.extra_args),
            binary=binary,
            startup_timeout=opts.startup_timeout,
        ).start()
        try:
            client = OpenAIOptions(
                base_url=f"{self.server.base_url}/v1",
                concurrency=opts.parallel,
                timeout=opts.timeout,
                max_retries=opts.max_retries,
                use_n=opts.use_n,
                progress=opts.progress,
            )
            super().__init__(self.model_path.name, client)
        except Exception:
            self.server.stop()
            raise
        self.options = opts  # the client's settings stay in their attributes (base_url, timeout, ...)

    def _server_args(self) -> list[str]:
        args = list(FIXED_ARGS) + (["--kv-unified"] if self.unified_kv else [])
        if self.max_soft_tokens is not None:
            budget = str(self.max_soft_tokens)
            args += ["--image-min-tokens", budget, "--image-max-tokens", budget]
        if self.draft_path is not None:
            args += ["--spec-type", "draft-mtp", "-md", str(self.draft_path)]
            if self.draft_tokens is not None:
                args += ["--spec-draft-n-max", str(self.draft_tokens)]
        return args

    # --- generation: fail fast once the server is gone ---

    async def attempt(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_server()
        try:
            return await super().attempt(client, path, body)
        except Transient:
            self._check_server()
            raise

    def _check_server(self) -> None:
        process = self.server.process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            log = last_log_line(self.server.log_path) if self.server.log_path else "(no log)"
            raise RequestFailed(f"llama-server is not running (exit code {code}): {log}")

    # --- parity helpers ---

    def render(self, request: Request) -> list[int]:
        """The prompt token ids the server feeds the model for a text request: the chat template
        applied by the server (/apply-template), tokenized with BOS and special tokens parsed
        (/tokenize), exactly as /v1/chat/completions does; raw prompts are tokenized the same way."""
        if any(isinstance(part, ImagePart | AudioPart) for part in iter_parts(request.messages)):
            raise UnsupportedInput(
                f"request {request.key}: render() takes text requests only; "
                "the server inserts image and audio soft tokens itself"
            )
        prompt = request.prompt
        if prompt is None:
            body = chat_wire.chat_payload(request, self.model)
            applied = self._post(
                "/apply-template", {k: body[k] for k in ("messages", "chat_template_kwargs")}
            )
            prompt = applied["prompt"]
        return list(
            self._post("/tokenize", {"content": prompt, "add_special": True, "parse_special": True})["tokens"]
        )

    def greedy_ids(self, prompt_ids: Sequence[int], max_tokens: int) -> list[int]:
        """Greedy (temperature 0) continuation of exactly `prompt_ids` (no BOS added), at most
        `max_tokens` ids, ending before the first end-of-generation token (which is not returned)."""
        if max_tokens < 1:
            return []
        if not prompt_ids:
            raise ValueError("greedy_ids needs at least one prompt token id")
        body = {
            "prompt": [int(i) for i in prompt_ids],
            "n_predict": max_tokens,
            "temperature": 0.0,
            "return_tokens": True,
            "cache_prompt": False,
        }
        result = self._post("/completion", body)
        tokens = list(result["tokens"])
        if result.get("stop_type") == "eos" and tokens:
            tokens = tokens[:-1]  # the end-of-generation token that stopped it
        return tokens

    def prompt_bos(self) -> int | None:
        """The BOS the GGUF's tokenizer adds to every prompt (None when it adds none)."""
        return self.info.bos_id

    def placeholder_ids(self) -> tuple[int, ...]:
        """None: llama.cpp feeds media embeddings beside the token ids, with no placeholder tokens."""
        return ()

    def peak_memory(self) -> dict[str, int]:
        """The server process's peak resident memory (Linux VmHWM), while it runs (schema.ResourceReporter)."""
        process = self.server.process
        if process is None or process.poll() is not None:
            return {}
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            return {}
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return {"rss": int(line.split()[1]) * 1024}
        return {}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_server()
        with httpx.Client(base_url=self.server.base_url, timeout=self.timeout, trust_env=False) as client:
            response = client.post(path, json=body)
        if response.status_code != 200:
            raise RuntimeError(
                f"llama-server {path} answered HTTP {response.status_code}: {' '.join(response.text.split())[:200]}"
            )
        return response.json()

    # --- identity and lifetime ---

    def _server_identity(self) -> dict[str, Any]:
        """llama-server's version and what it reports about the loaded model (the path-free part)."""
        served = self.served_models()
        meta = dict(served[0].get("meta", {})) if len(served) == 1 else {}
        meta.pop("n_ctx", None)  # the context size in force, not the model's (it is under "location")
        return {"llama_server": self.server.version, "meta": meta}

    def fingerprint(self) -> dict[str, Any]:
        """Server version, weights identity (file name + quick digest), quantization (GGUF file
        type), chat template hash, projector and drafter identity, image budget, context per
        sequence (a smaller one cuts outputs short), whether the KV cache is unified (it changes
        outputs) and `extra_args` (files among them by name and digest); paths and the URL go
        under "location"."""
        fingerprint = super().fingerprint()  # computed once; extended here the first time
        if "weights" not in fingerprint:
            fingerprint.update(
                {
                    "weights": file_identity(self.model_path),
                    "architecture": self.info.architecture,
                    "quantization": self.info.quantization,
                    "chat_template_sha256": text_sha256(self.info.chat_template),
                    "mmproj": file_identity(self.mmproj_path),
                    "max_soft_tokens": self.max_soft_tokens,
                    "draft_model": file_identity(self.draft_path),
                    "draft_tokens": self.draft_tokens,
                    "server_args": list(FIXED_ARGS),
                    "ctx_size": self.ctx_per_sequence,
                    "unified_kv": self.unified_kv,  # on, greedy outputs vary from run to run
                }
            )
            if self.extra_args:  # e.g. --repeat-penalty, --chat-template-file: they change outputs
                fingerprint["extra_args"] = [_arg_identity(arg) for arg in self.extra_args]
            fingerprint["location"].update(
                {
                    "model": str(self.model_path),
                    "mmproj": str(self.mmproj_path) if self.mmproj_path else None,
                    "draft_model": str(self.draft_path) if self.draft_path else None,
                    "server_binary": str(self.server.binary),
                    "ctx_size": self.server.ctx_size,
                    "parallel": self.server.parallel,
                    **({"extra_args": list(self.extra_args)} if self.extra_args else {}),
                }
            )
        return fingerprint

    def close(self) -> None:
        """Stop the server (idempotent)."""
        super().close()
        self.server.stop()
