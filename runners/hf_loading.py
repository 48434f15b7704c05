"""Where a transformers model comes from, and loading it (for `runners.hf`).

`resolve_source` checks a model argument (hub id, local directory, `.gguf` file) and names the fix
in one line; `load_model` loads config, tokenizer (and, for a multimodal model, its processor) and
weights on the chosen device and dtype through the Auto classes.

A local `.gguf` file is slow to load through transformers: it parses the file's metadata for the
config, again for the tokenizer and again for the weights (every parse builds views of the whole
vocabulary), then dequantizes every tensor. So `load_model` converts it once: it loads the GGUF on
the CPU with one shared parse, writes the dequantized weights (in the dtype they will run in),
config, generation config and tokenizer as a safetensors folder under `gguf_cache_root()`, keyed
by the file's quick digest, the dtype and the transformers version, and loads that folder, now and
on every later start. The weights are those the GGUF path gives, bit for bit; the model's identity
(file name, digest, quantization) stays the GGUF's. `gguf_cache=False` loads the GGUF directly.
With `progress=False` transformers' GGUF conversion bar is silenced along with its other bars.

It does not render prompts, generate, or compute fingerprints.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    AutoProcessor,
    AutoTokenizer,
)

from runners.fingerprint import quick_digest
from runners.outputs import error_message

FIX = "pass a model directory with config.json, a .gguf file, or a hub id such as 'org/name'"
MULTIMODAL_MODEL_TYPES = ("gemma4_unified",)
GGUF_CACHE_VERSION = "1"  # bump when the cached folder's layout or contents change
_DTYPES = {
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
}


# --- where the model comes from -----------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """What `from_pretrained` gets: a hub id or local directory, plus a GGUF file name inside it."""

    name: str
    gguf_file: str | None
    local: bool

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def resolve_source(model: str, gguf_file: str | None = None) -> ModelSource:
    """Check a model argument; raise a one-line ValueError naming the path and the fix."""
    path = Path(model).expanduser()
    if model.endswith(".gguf"):
        if not path.is_file():
            raise ValueError(f"GGUF file {model!r} does not exist; {FIX}")
        return ModelSource(str(path.parent), path.name, local=True)
    if path.is_dir():
        return ModelSource(str(path), _local_gguf(path, gguf_file), local=True)
    if path.exists():
        raise ValueError(f"model path {model!r} is a file but not a .gguf file; {FIX}")
    if _looks_like_path(model):
        raise ValueError(f"model path {model!r} does not exist; {FIX}")
    return ModelSource(model, gguf_file, local=False)


def _local_gguf(directory: Path, gguf_file: str | None) -> str | None:
    if gguf_file is not None:
        if not (directory / gguf_file).is_file():
            raise ValueError(f"GGUF file {gguf_file!r} not found in {str(directory)!r}; {FIX}")
        return gguf_file
    if (directory / "config.json").is_file():
        return None
    ggufs = sorted(p.name for p in directory.glob("*.gguf"))
    if len(ggufs) == 1:
        return ggufs[0]
    found = f"several .gguf files ({', '.join(ggufs)}); pick one with gguf_file=" if ggufs else FIX
    raise ValueError(f"model directory {str(directory)!r} has no config.json; {found}")


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") != 1


def resolve_device(device: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto or one of: {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def is_multimodal(config: Any) -> bool:
    return config.model_type in MULTIMODAL_MODEL_TYPES or any(
        getattr(config, name, None) is not None for name in ("vision_config", "audio_config")
    )


def model_class(config: Any) -> Any:
    """The Auto class that maps this config: image-text-to-text first for multimodal configs."""
    candidates = (AutoModelForImageTextToText, AutoModelForMultimodalLM) if is_multimodal(config) else ()
    for candidate in candidates:
        if type(config) in candidate._model_mapping:
            return candidate
    return AutoModelForCausalLM


# --- loading ------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """What `load_model` returns. `processor` is None for text-only models, for GGUF files, and
    when the processor failed to load (`processor_error` then says why, for media requests)."""

    config: Any
    tokenizer: Any
    processor: Any | None
    processor_error: str | None
    model: Any
    loaded_from: str  # the folder or hub id the weights were read from (a GGUF's cache folder)


def load_model(
    model_id: str,
    source: ModelSource,
    *,
    revision: str | None,
    dtype: torch.dtype,
    device: str,
    progress: bool,
    gguf_cache: bool,
) -> LoadedModel:
    """Config, tokenizer, processor and weights (eval mode); a one-line ValueError when the
    config cannot be read."""
    if source.gguf_file and source.local and gguf_cache:
        gguf_path = Path(source.name) / source.gguf_file
        try:
            folder = dequantized_gguf(gguf_path, model_id, dtype, progress)
        except OSError:  # an unwritable cache: load the GGUF directly
            folder = None
        if folder is not None:
            return _load(model_id, ModelSource(str(folder), None, local=True), None, dtype, device, progress)
    return _load(model_id, source, revision, dtype, device, progress)


def _load(
    model_id: str,
    source: ModelSource,
    revision: str | None,
    dtype: torch.dtype,
    device: str,
    progress: bool,
) -> LoadedModel:
    kwargs = dict(source.kwargs)
    if revision is not None:
        kwargs["revision"] = revision
    gguf = Path(source.name) / source.gguf_file if source.gguf_file and source.local else None
    with _gguf_loading(gguf, progress) if gguf is not None else contextlib.nullcontext():
        try:
            config = AutoConfig.from_pretrained(source.name, **kwargs)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fix = FIX if source.local else f"check the hub id and hub access (or its local cache); {FIX}"
            raise ValueError(f"cannot load model {model_id!r} ({first}); {fix}") from exc
        processor, processor_error, tokenizer = _load_tokenizer(source, config, kwargs)
        model = model_class(config).from_pretrained(
            source.name, config=config, dtype=dtype, device_map={"": device}, **kwargs
        )
    return LoadedModel(config, tokenizer, processor, processor_error, model.eval(), source.name)


def _load_tokenizer(source: ModelSource, config: Any, kwargs: dict[str, Any]) -> tuple[Any, str | None, Any]:
    """(processor or None, why the processor failed or None, tokenizer). The processor is kept for
    media; it may be missing (e.g. the gemma4_unified image processor needs torchvision), then
    text-only use continues and media requests get error Completions naming the reason."""
    error = None
    if is_multimodal(config) and not source.gguf_file:
        try:
            processor = AutoProcessor.from_pretrained(source.name, **kwargs)
        except Exception as exc:
            processor, error = None, error_message(exc)
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            if tokenizer.chat_template is None:  # the template may be saved with the processor only
                tokenizer.chat_template = getattr(processor, "chat_template", None)
            return processor, None, tokenizer
    return None, error, AutoTokenizer.from_pretrained(source.name, **kwargs)


# --- GGUF files: dequantized once, kept as safetensors -------------------------------------


def gguf_cache_root() -> Path:
    """`hf-gguf` in the evals cache folder: beside $EVALS_CACHE when set, else
    $XDG_CACHE_HOME/evals (default ~/.cache/evals)."""
    env = os.environ.get("EVALS_CACHE")
    if env:
        return Path(env).parent / "hf-gguf"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evals" / "hf-gguf"


def dequantized_gguf(path: Path, model_id: str, dtype: torch.dtype, progress: bool) -> Path | None:
    """The safetensors folder holding `path` dequantized to `dtype`, written on first use (aside,
    then renamed into place, so a concurrent run never sees half of it). None when transformers
    keeps this architecture's weights packed (its own GGUF kernels): that is loaded directly."""
    dtype_name = str(dtype).removeprefix("torch.")
    key = quick_digest([path])
    folder = gguf_cache_root() / (
        f"{path.stem}-{dtype_name}-{key[:16]}-t{transformers.__version__}-v{GGUF_CACHE_VERSION}"
    )
    if (folder / "model.safetensors").is_file():
        return folder
    staging = folder.with_name(f"{folder.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        loaded = _load(model_id, ModelSource(str(path.parent), path.name, True), None, dtype, "cpu", progress)
        if not _plain_weights(loaded.model):
            return None
        _save_dequantized(loaded, staging, {"gguf_file": path.name, "quick_sha256": key, "dtype": dtype_name})
        staging.rename(folder)
    except OSError:
        if not (folder / "model.safetensors").is_file():  # not "another run finished first"
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _plain_weights(model: Any) -> bool:
    """Whether `model` holds the weights of its plain architecture (names and shapes of a fresh
    model from its config), so that a safetensors copy loads back into it."""
    with torch.device("meta"):
        fresh = type(model)(model.config)
    expected = {name: tuple(t.shape) for name, t in fresh.state_dict().items()}
    return expected == {name: tuple(t.shape) for name, t in model.state_dict().items()}


def _save_dequantized(loaded: LoadedModel, folder: Path, source: dict[str, str]) -> None:
    """Weights (shared tensors once), config without its GGUF quantization entry, generation
    config and tokenizer; `gguf_source.json` says which file they came from."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True)
    config = copy.deepcopy(loaded.model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights here are plain tensors
    config.save_pretrained(folder)
    loaded.model.generation_config.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    save_model(loaded.model, str(folder / "model.safetensors"))
    (folder / "gguf_source.json").write_text(json.dumps(source, indent=2) + "\n")


@contextlib.contextmanager
def _gguf_loading(path: Path, progress: bool) -> Iterator[None]:
    """While transformers loads the GGUF file `path`: one `gguf.GGUFReader` for it, shared by the
    config, tokenizer and weight loaders (each builds its own otherwise), and, unless `progress`,
    no "Converting and de-quantizing GGUF tensors" bar (plain tqdm, which transformers' progress
    switch does not reach). Both are restored on exit."""
    import gguf
    from transformers import modeling_gguf_pytorch_utils as gguf_loader

    real_reader, real_bar = gguf.GGUFReader, gguf_loader.tqdm
    target, parsed = os.path.realpath(path), list[Any]()

    def shared_reader(file: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or os.path.realpath(file) != target:
            return real_reader(file, *args, **kwargs)
        if not parsed:
            parsed.append(real_reader(file))
        return parsed[0]

    setattr(gguf, "GGUFReader", shared_reader)  # noqa: B010 (a module attribute, restored below)
    if not progress:
        gguf_loader.tqdm = functools.partial(real_bar, disable=True)
    try:
        yield
    finally:
        setattr(gguf, "GGUFReader", real_reader)  # noqa: B010
        gguf_loader.tqdm = real_bar
