"""Hugging Face transformers backend (`HFBackend`, backend name "hf").

Loads a model from a hub id, a local directory or a `.gguf` file; renders text-only chat requests
with the tokenizer's chat template (exactly one BOS) and raw prompts with the tokenizer's own
special tokens; requests with image or audio parts go through the model's processor
(`runners.hf_media`, media decoded inside each batch step). Generates in left-padded batches
grouped by sampling settings (a batch may mix image, audio and text-only requests), with
batch-size back-off on out-of-memory; samples each request with its own seed so results do not
depend on batch composition; decodes with special tokens kept and splits thought from answer.
With `draft_model` (a Gemma 4 MTP assistant directory, `runners.hf_draft`) it generates one request
at a time with the drafter (assisted generation is batch-1 only); greedy and seeded sampled outputs
are the same as without it. `greedy_ids` continues raw prompt ids greedily, for parity checks
against other backends.

It does not handle caching or progress display: the runner owns both.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Iterator, Sequence
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
    GenerationConfig,
    LogitsProcessorList,
    StoppingCriteriaList,
)

from evals.schema import AudioPart, Completion, ImagePart, Message, Request, Sampling, TextPart
from runners.hf_draft import Drafter, load_drafter
from runners.hf_fingerprint import (
    gguf_quantization,
    quick_digest,
    text_sha256,
    tokenizer_identity,
    weight_files,
)
from runners.hf_generation import (
    SAMPLER_VERSION,
    BatchSizer,
    SeededSampler,
    StopStrings,
    generate_with_backoff,
    is_oom,
)
from runners.hf_media import Encoded, MediaEncoder, collate, has_media, media_messages
from runners.outputs import SplitOutput, split_output

END_OF_TURN_TOKENS = ("<turn|>", "<|im_end|>", "<end_of_turn>", "<|eot_id|>")
MULTIMODAL_MODEL_TYPES = ("gemma4_unified",)
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
_FIX = "pass a model directory with config.json, a .gguf file, or a hub id such as 'org/name'"


class UnsupportedInput(ValueError):
    """A request part this backend cannot handle (e.g. media without a processor)."""


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
            raise ValueError(f"GGUF file {model!r} does not exist; {_FIX}")
        return ModelSource(str(path.parent), path.name, local=True)
    if path.is_dir():
        return ModelSource(str(path), _local_gguf(path, gguf_file), local=True)
    if path.exists():
        raise ValueError(f"model path {model!r} is a file but not a .gguf file; {_FIX}")
    if _looks_like_path(model):
        raise ValueError(f"model path {model!r} does not exist; {_FIX}")
    return ModelSource(model, gguf_file, local=False)


def _local_gguf(directory: Path, gguf_file: str | None) -> str | None:
    if gguf_file is not None:
        if not (directory / gguf_file).is_file():
            raise ValueError(f"GGUF file {gguf_file!r} not found in {str(directory)!r}; {_FIX}")
        return gguf_file
    if (directory / "config.json").is_file():
        return None
    ggufs = sorted(p.name for p in directory.glob("*.gguf"))
    if len(ggufs) == 1:
        return ggufs[0]
    found = f"several .gguf files ({', '.join(ggufs)}); pick one with gguf_file=" if ggufs else _FIX
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


def resolve_batch_sizer(batch_size: int | str, max_batch_size: int) -> BatchSizer:
    if batch_size == "auto":
        return BatchSizer(max_batch_size, adaptive=True)
    if isinstance(batch_size, str) and not batch_size.isdigit():
        raise ValueError(f"batch_size must be 'auto' or a positive integer, got {batch_size!r}")
    return BatchSizer(int(batch_size), adaptive=False)


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


# --- prompt rendering ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """A request with its rendered prompt ids. For a media request (`media`), the ids hold one
    placeholder per image or clip (media are not decoded yet) and serve only to sort the batch."""

    request: Request
    ids: list[int]
    media: bool = False


def chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Text-only messages as chat-template dicts (text content as a plain string)."""
    out = []
    for message in messages:
        for part in message.content:
            if isinstance(part, ImagePart | AudioPart):
                raise UnsupportedInput(f"{part.type} part in a text-only prompt")
            if not isinstance(part, TextPart):
                raise UnsupportedInput(f"unknown message part {part!r}")
        out.append({"role": message.role, "content": message.text})
    return out


def one_bos(ids: Sequence[int], bos_id: int | None, adds_bos: bool) -> list[int]:
    """Collapse leading BOS tokens to one; prepend one if missing and the tokenizer normally adds it."""
    ids = list(ids)
    if bos_id is None:
        return ids
    leading = next((i for i, token in enumerate(ids) if token != bos_id), len(ids))
    if leading > 1:
        return ids[leading - 1 :]
    if leading == 0 and adds_bos:
        return [bos_id, *ids]
    return ids


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the first occurrence of any stop string; say whether one was found."""
    positions = [pos for pos in (text.find(s) for s in stops if s) if pos >= 0]
    return (text[: min(positions)], True) if positions else (text, False)


def group_by_sampling(items: Sequence[_Prepared]) -> list[list[_Prepared]]:
    """Group by sampling settings except the seed, each group sorted by prompt length (longest first)."""
    groups: dict[Sampling, list[_Prepared]] = {}
    for item in items:
        groups.setdefault(dataclasses.replace(item.request.sampling, seed=0), []).append(item)
    return [sorted(group, key=lambda item: -len(item.ids)) for group in groups.values()]


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and attention mask, padded on the left to the longest row."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def error_completion_message(exc: BaseException) -> str:
    """`Type: first line of the message` (or just the type)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def error_completion(request: Request, exc: BaseException, prompt_tokens: int = 0) -> Completion:
    return Completion(
        key=request.key,
        text="",
        finish_reason="error",
        prompt_tokens=prompt_tokens,
        error=error_completion_message(exc),
    )


@dataclass(frozen=True)
class Decoded:
    """A decoded output: `raw` (special tokens kept, cut at a stop string) and its split."""

    raw: str
    split: SplitOutput
    stop_hit: bool


# --- the backend --------------------------------------------------------------------------


class HFBackend:
    """Run a transformers model on batches of Requests (see the module docstring)."""

    name = "hf"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int | str = "auto",
        max_batch_size: int = 64,
        gguf_file: str | None = None,
        revision: str | None = None,
        max_soft_tokens: int | None = None,
        progress: bool = True,
        draft_model: str | None = None,
        draft_tokens: int | None = None,
    ):
        if not progress:  # transformers' own bars (weight loading; its GGUF conversion bar is plain tqdm)
            transformers.utils.logging.disable_progress_bar()
        self.model_id = model
        self.source = resolve_source(model, gguf_file)
        self.revision = revision
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_soft_tokens = max_soft_tokens
        self._sizer = resolve_batch_sizer(batch_size, max_batch_size)
        if draft_tokens is not None and draft_model is None:
            raise ValueError("draft_tokens needs draft_model (an MTP assistant directory)")
        self._fingerprint: dict[str, Any] | None = None
        self._processor_error: str | None = None  # why AutoProcessor failed, for media requests
        # Opt-in diagnostic record: set to {} and each completion's generated token ids are kept
        # here under its request key (parity and GPU checks compare token ids, not text).
        self.generated_ids: dict[str, list[int]] | None = None
        self._load()
        self.draft: Drafter | None = None
        if draft_model is not None:
            self.draft = load_drafter(
                draft_model,
                self.model,
                dtype=self.dtype,
                device=self.device,
                num_assistant_tokens=draft_tokens,
            )
            self._sizer = BatchSizer(1, adaptive=False)  # assisted generation is batch-1 only
        self.media = MediaEncoder(self.processor, max_soft_tokens) if self.processor is not None else None

    # --- loading ---

    def _pretrained_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.source.kwargs)
        if self.revision is not None:
            kwargs["revision"] = self.revision
        return kwargs

    def _load(self) -> None:
        kwargs = self._pretrained_kwargs()
        try:
            self.config = AutoConfig.from_pretrained(self.source.name, **kwargs)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fix = (
                _FIX if self.source.local else f"check the hub id and hub access (or its local cache); {_FIX}"
            )
            raise ValueError(f"cannot load model {self.model_id!r} ({first}); {fix}") from exc
        self.processor, self.tokenizer = self._load_tokenizer(kwargs)
        cls = model_class(self.config)
        self.model = cls.from_pretrained(
            self.source.name, config=self.config, dtype=self.dtype, device_map={"": self.device}, **kwargs
        ).eval()
        self._setup_special_ids()

    def _load_tokenizer(self, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """(processor or None, tokenizer). The processor is kept for media; it may be missing
        (e.g. the gemma4_unified image processor needs torchvision), then text-only use continues
        and media requests get error Completions naming the reason."""
        if is_multimodal(self.config) and not self.source.gguf_file:
            try:
                processor = AutoProcessor.from_pretrained(self.source.name, **kwargs)
            except Exception as exc:
                processor, self._processor_error = None, error_completion_message(exc)
            tokenizer = getattr(processor, "tokenizer", None)
            if tokenizer is not None:
                if tokenizer.chat_template is None:  # the template may be saved with the processor only
                    tokenizer.chat_template = getattr(processor, "chat_template", None)
                return processor, tokenizer
        return None, AutoTokenizer.from_pretrained(self.source.name, **kwargs)

    def _setup_special_ids(self) -> None:
        """Stop ids (generation config eos + tokenizer eos + end-of-turn tokens), pad, BOS; then
        replace the model's generation config so that only Sampling settings change the output."""
        tokenizer, original = self.tokenizer, self.model.generation_config
        stop: set[int] = set()
        for value in (original.eos_token_id, tokenizer.eos_token_id):
            stop.update([value] if isinstance(value, int) else (value or []))
        vocab = tokenizer.get_vocab()
        stop.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
        self.stop_ids = sorted(stop)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else original.pad_token_id
        self.pad_id = pad if pad is not None else (self.stop_ids[0] if self.stop_ids else 0)
        self.bos_id = tokenizer.bos_token_id
        encoded_empty = tokenizer("", add_special_tokens=True)["input_ids"]
        self.adds_bos = self.bos_id is not None and encoded_empty[:1] == [self.bos_id]
        self.model.generation_config = GenerationConfig(
            bos_token_id=self.bos_id, eos_token_id=self.stop_ids, pad_token_id=self.pad_id
        )

    # --- rendering and decoding ---

    def render(self, request: Request) -> list[int]:
        """Prompt token ids for a request, starting with exactly one BOS where the model uses one;
        for a media request the processor's ids, soft tokens included (decodes the media)."""
        if has_media(request):
            return self.render_media(request).ids
        if request.prompt is not None:
            ids = self.tokenizer(request.prompt, add_special_tokens=True)["input_ids"]
        else:
            text = self.tokenizer.apply_chat_template(
                chat_messages(request.messages),
                add_generation_prompt=True,
                tokenize=False,
                enable_thinking=request.sampling.thinking,
            )
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return one_bos(ids, self.bos_id, self.adds_bos)

    def render_media(self, request: Request) -> Encoded:
        """A media request's processor encoding: ids (soft tokens included) and tensors."""
        return self._media_encoder().encode(request)

    def _media_encoder(self) -> MediaEncoder:
        if self.media is None:
            reason = f" ({self._processor_error})" if self._processor_error else ""
            raise UnsupportedInput(
                f"image and audio parts need the model's processor, which did not load{reason}"
            )
        return self.media

    def _placeholder_ids(self, request: Request) -> list[int]:
        """A media request rendered with one placeholder per part, media not decoded (a sort key)."""
        self._media_encoder()  # no processor: fail before the batch step
        text = self.tokenizer.apply_chat_template(
            media_messages(request.messages),
            add_generation_prompt=True,
            tokenize=False,
            enable_thinking=request.sampling.thinking,
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, token_ids: Sequence[int], stop: Sequence[str] = ()) -> Decoded:
        """Decode generated ids with special tokens kept (pads dropped), cut at the first stop
        string, and split into reasoning and answer."""
        keep_pad = self.pad_id in self.stop_ids
        ids = [t for t in token_ids if keep_pad or t != self.pad_id]
        raw, stop_hit = cut_at_stop(self.tokenizer.decode(ids, skip_special_tokens=False), stop)
        return Decoded(raw=raw, split=split_output(raw), stop_hit=stop_hit)

    def _decode_tail(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    # --- generation ---

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield one Completion per request, batch by batch; failures become error Completions."""
        prepared = []
        for request in requests:
            try:
                if has_media(request):
                    prepared.append(_Prepared(request, self._placeholder_ids(request), media=True))
                else:
                    prepared.append(_Prepared(request, self.render(request)))
            except Exception as exc:
                yield error_completion(request, exc)
        for group in group_by_sampling(prepared):
            while group:
                batch, group = group[: self._sizer.size], group[self._sizer.size :]
                yield from self._run_batch(batch)

    def _run_batch(self, batch: list[_Prepared]) -> Iterator[Completion]:
        """Yield the batch's completions; on an error, error Completions for the rest of it
        (results come back in batch order, so the first `done` items are finished)."""
        done = 0
        try:
            for results in generate_with_backoff(batch, self._generate_batch, self._sizer):
                for completion in results:
                    done += 1
                    yield completion
        except Exception as exc:
            for item in batch[done:]:
                yield error_completion(item.request, exc, prompt_tokens=0 if item.media else len(item.ids))

    def _encode(self, item: _Prepared) -> Encoded | Completion:
        """The item's encoding (media decoded and processed here, per batch), or its error Completion."""
        if not item.media:
            return Encoded(item.ids)
        try:
            return self.render_media(item.request)
        except Exception as exc:
            if is_oom(exc):
                raise
            return error_completion(item.request, exc)

    def _generate_batch(self, batch: Sequence[_Prepared]) -> list[Completion]:
        """Completions in batch order: media that fail to decode or encode give error Completions,
        and the rest of the batch is generated together."""
        start = time.perf_counter()
        encoded = [self._encode(item) for item in batch]
        ready = [(item, enc) for item, enc in zip(batch, encoded, strict=True) if isinstance(enc, Encoded)]
        generated = iter(self._generate_rows(ready, start) if ready else [])
        return [enc if isinstance(enc, Completion) else next(generated) for enc in encoded]

    def _model_inputs(self, rows: Sequence[Encoded]) -> dict[str, torch.Tensor]:
        """Batch inputs: ids and mask only for text-only rows (the fast path), else the collated
        processor outputs (`mm_token_type_ids`, pixel values, audio features...)."""
        if all(not row.tensors for row in rows):
            input_ids, attention_mask = left_pad([row.ids for row in rows], self.pad_id)
            return {"input_ids": input_ids, "attention_mask": attention_mask}
        return collate(rows, self.pad_id)

    @torch.inference_mode()
    def _generate_rows(self, ready: Sequence[tuple[_Prepared, Encoded]], start: float) -> list[Completion]:
        batch = [item for item, _ in ready]
        sampling = batch[0].request.sampling
        inputs = self._model_inputs([enc for _, enc in ready])
        prompt_len = inputs["input_ids"].shape[1]
        processors = LogitsProcessorList()
        if sampling.temperature > 0:
            seeds = [item.request.sampling.seed for item in batch]
            processors.append(
                SeededSampler(
                    seeds, sampling.temperature, sampling.top_k, sampling.top_p, self.model.device, prompt_len
                )
            )
        stopper = (
            StopStrings(sampling.stop, self._decode_tail, prompt_len, len(batch)) if sampling.stop else None
        )
        output = self.model.generate(
            **{key: value.to(self.model.device) for key, value in inputs.items()},
            max_new_tokens=sampling.max_tokens,
            do_sample=False,
            logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([stopper] if stopper else []),
            **self._draft_kwargs(),
        )
        rows = output[:, prompt_len:].tolist()
        seconds = (time.perf_counter() - start) / len(batch)
        stopped = stopper.stopped_at if stopper else [None] * len(batch)
        return [
            self._completion(item, len(enc.ids), row, at, seconds)
            for (item, enc), row, at in zip(ready, rows, stopped, strict=True)
        ]

    def _draft_kwargs(self) -> dict[str, Any]:
        return {"assistant_model": self.draft.model} if self.draft is not None else {}

    @torch.inference_mode()
    def greedy_ids(self, prompt_ids: Sequence[int], max_tokens: int) -> list[int]:
        """Greedy continuation of `prompt_ids`, taken as they are (no chat template, no BOS added):
        the generated ids before the first end-of-generation token (not included), at most
        `max_tokens`. Text only; uses the drafter when one is set. A parity hook: other backends
        have the same method, and the same prompt ids must give the same continuation."""
        if max_tokens < 1:
            return []
        if not prompt_ids:
            raise ValueError("greedy_ids needs at least one prompt token id")
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.model.device)
        output = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            do_sample=False,
            **self._draft_kwargs(),
        )
        row = output[0, ids.shape[1] :].tolist()
        end = next((i for i, token in enumerate(row) if token in self.stop_ids), len(row))
        return row[:end]

    @property
    def placeholder_ids(self) -> tuple[int, ...]:
        """Media placeholder token ids (image, video, audio) of a multimodal model. The model swaps
        their embeddings for media features (or padding) wherever they occur, also when it
        generates one itself, which other runtimes may not do. A parity hook."""
        names = ("image_token_id", "video_token_id", "audio_token_id")
        return tuple(i for i in (getattr(self.config, n, None) for n in names) if isinstance(i, int))

    def top2_margins(self, prompt_ids: Sequence[int], continuation: Sequence[int]) -> list[float]:
        """For each step of a greedy `continuation` of `prompt_ids`, and one step past its end, the
        gap between the largest and second-largest next-token logit (one forward pass). A parity
        hook: where another backend's greedy path leaves this one at a step with a gap near float
        rounding, the two backends disagree about a tie, not about the computation."""
        if not prompt_ids:
            raise ValueError("top2_margins needs at least one prompt token id")
        ids = torch.tensor([[*prompt_ids, *continuation]], dtype=torch.long, device=self.model.device)
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
        steps = logits[len(prompt_ids) - 1 :].float()
        top = steps.topk(2, dim=-1).values
        return (top[:, 0] - top[:, 1]).tolist()

    def _completion(
        self, item: _Prepared, prompt_tokens: int, row: list[int], stopped_at: int | None, seconds: float
    ) -> Completion:
        end = next((i + 1 for i, token in enumerate(row) if token in self.stop_ids), len(row))
        if stopped_at is not None:
            end = min(end, stopped_at)
        ids = row[:end]
        if self.generated_ids is not None:
            self.generated_ids[item.request.key] = ids
        decoded = self.decode(ids, item.request.sampling.stop)
        ended = bool(ids) and ids[-1] in self.stop_ids
        return Completion(
            key=item.request.key,
            text=decoded.split.answer,
            raw=decoded.raw,
            reasoning=decoded.split.reasoning,
            thought_open=decoded.split.thought_open,
            finish_reason="stop" if ended or decoded.stop_hit or stopped_at is not None else "length",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(ids),
            seconds=seconds,
        )

    # --- identity and lifetime ---

    def fingerprint(self) -> dict[str, Any]:
        """Backend and library versions, model source and weights identity, quantization, dtype,
        device, chat template hash, tokenizer identity, and the MTP drafter when one is set
        (JSON-serialisable; computed once)."""
        if self._fingerprint is None:
            self._fingerprint = {
                "backend": self.name,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                # For local files the weights digest is the identity; where they live is not.
                "model": Path(self.model_id).name if self.source.local else self.model_id,
                "location": {"model": self.model_id, "source": self.source.name},
                "gguf_file": self.source.gguf_file,
                "revision": self.revision,
                "commit": getattr(self.config, "_commit_hash", None),
                "model_type": self.config.model_type,
                "model_class": type(self.model).__name__,
                "weights": self._weights_identity(),
                "quantization": self._quantization(),
                "dtype": str(self.dtype).removeprefix("torch."),
                "device": torch.device(self.device).type,
                "chat_template_sha256": text_sha256(self.tokenizer.chat_template),
                "tokenizer": tokenizer_identity(self.tokenizer),
                "stop_token_ids": self.stop_ids,
                # Seeded sampling draws per (seed, position) since v2; v1 cache entries must not mix in.
                "sampler": SAMPLER_VERSION,
                "max_soft_tokens": self.max_soft_tokens,
                # Loaded processor (media requests): classes, config hash, image budget in force.
                "processor": self.media.identity() if self.media is not None else None,
            }
            if self.draft is not None:  # only then, so that plain runs keep their cache keys
                self._fingerprint["draft"] = self.draft.identity()  # weights digest, draft length
                self._fingerprint["location"]["draft"] = str(self.draft.path)
        return self._fingerprint

    def _weight_paths(self) -> list[Path]:
        directory = self._local_directory()
        if directory is None:
            return []
        if self.source.gguf_file:
            return [directory / self.source.gguf_file]
        return weight_files(directory)

    def _local_directory(self) -> Path | None:
        if self.source.local:
            return Path(self.source.name)
        try:
            from huggingface_hub import snapshot_download

            revision = self.revision or getattr(self.config, "_commit_hash", None)
            return Path(snapshot_download(self.source.name, revision=revision, local_files_only=True))
        except Exception:
            return None

    def _weights_identity(self) -> dict[str, Any] | None:
        paths = self._weight_paths()
        if not paths:
            return None
        return {"files": [p.name for p in paths], "quick_sha256": quick_digest(paths)}

    def _quantization(self) -> dict[str, Any] | None:
        if self.source.gguf_file:
            paths = self._weight_paths()
            return {"format": "gguf", **gguf_quantization(paths[0])} if paths else {"format": "gguf"}
        config = getattr(self.config, "quantization_config", None)
        if config is None:
            return None
        return config.to_dict() if hasattr(config, "to_dict") else dict(config)

    def close(self) -> None:
        """Free the model (and accelerator memory)."""
        self.model = None
        self.draft = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
