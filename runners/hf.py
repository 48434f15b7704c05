"""Hugging Face transformers backend (`HFBackend`, backend name "hf").

Loads a model from a hub id, a local directory or a `.gguf` file (`runners.hf_loading`; a GGUF
is dequantized once into a cached safetensors folder); its options are `HFOptions`. Renders
text-only chat requests with the tokenizer's chat template (exactly one BOS) and raw prompts with
the tokenizer's own special tokens; requests with image or audio parts go through the model's processor
(`runners.hf_media`, media decoded inside each batch step). Generates in left-padded batches
grouped by sampling settings and sorted by prompt length (a batch may mix image, audio and
text-only requests); `batch_size=auto` sizes each batch from the model's KV-cache bytes per token,
the prompt length, the token budget and the free memory (`runners.hf_generation.batch_for_budget`,
at most `max_batch_size`), and halves it on out-of-memory; a batch stops as soon as every row has
ended; with `refill_every=N` text-only rows run in refilled batches instead (`runners.hf_refill`:
finished rows replaced by waiting requests, each completion yielded as its row ends); `static_cache` switches to a preallocated KV cache (on CUDA, transformers then compiles the
decode step); samples each request with its own seed so results do not
depend on batch composition; decodes with special tokens kept and splits thought from answer.
With `draft_model` (a Gemma 4 MTP assistant directory, `runners.hf_draft`) it generates one request
at a time with the drafter (assisted generation is batch-1 only); greedy and seeded sampled outputs
are the same as without it. For parity checks against other backends it implements
`TokenLevelBackend` and `MarginBackend` (`render`, `greedy_ids`, `prompt_bos`, `placeholder_ids`,
`top2_margins`).

It does not cache completions or show generation progress: the pipeline owns both.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

from evals.schema import (
    BackendOptions,
    Completion,
    Request,
    Sampling,
    build_options,
    option,
)
from runners import hf_refill
from runners.fingerprint import text_sha256, tokenizer_identity
from runners.hf_batching import Prepared, group_by_sampling, left_pad
from runners.hf_draft import Drafter, load_drafter
from runners.hf_generation import (
    SAMPLER_VERSION,
    BatchSizer,
    KVFootprint,
    RowBudget,
    StopStrings,
    batch_for_budget,
    free_accelerator_memory,
    free_memory_bytes,
    generate_with_backoff,
    is_oom,
    kv_footprint,
    resolve_batch_sizer,
    sampling_processors,
    stop_criteria,
)
from runners.hf_identity import quantization, weight_paths, weights_identity
from runners.hf_loading import (
    load_model,
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from runners.hf_media import Encoded, MediaEncoder, collate, has_media, media_messages
from runners.hf_prompts import UnsupportedInput, chat_messages, cut_at_stop, one_bos
from runners.hf_refill import RefillTrigger, RowState, check_refill, rows_needed, run_refilled
from runners.outputs import SplitOutput, error_completion, split_output

END_OF_TURN_TOKENS = ("<turn|>", "<|im_end|>", "<end_of_turn>", "<|eot_id|>")


# --- prompt rendering ---------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """A decoded output: `raw` (special tokens kept, cut at a stop string) and its split."""

    raw: str
    split: SplitOutput
    stop_hit: bool


# --- the backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class HFOptions(BackendOptions):
    """The transformers backend's options (`--backend-opt KEY=VALUE`)."""

    dtype: str = option(
        "auto", "weights dtype: auto (bfloat16 on CUDA, float32 on CPU), bfloat16, float16, float32"
    )
    device: str = option("auto", "torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1, ...")
    batch_size: int | str = option(
        "auto",
        "rows per generate call, or auto (as many as the KV cache of prompt + max_tokens fits in free "
        "memory, at most max_batch_size; halved on OOM)",
    )
    max_batch_size: int = option(64, "the largest batch that batch_size=auto tries (256+ pays on a big GPU)")
    gguf_file: str | None = option(None, "the .gguf file to load from a model directory holding several")
    revision: str | None = option(None, "hub revision (branch, tag or commit) of a hub model")
    max_soft_tokens: int | None = option(
        None, "image budget: soft tokens per image (None: the processor's default)"
    )
    draft_model: str | None = option(None, "Gemma 4 MTP assistant directory: speculative decoding, batch 1")
    draft_tokens: int | None = option(None, "tokens the drafter proposes per step (None: its own default)")
    gguf_cache: bool = option(
        True, "load a local .gguf from a safetensors copy dequantized once (~/.cache/evals/hf-gguf)"
    )
    static_cache: bool = option(
        False,
        "preallocated KV cache (on CUDA transformers compiles the decode step; each new shape recompiles)",
    )
    refill_every: int = option(
        0,
        "refill batches: after N decode steps, once refill_share of a batch's rows have finished, waiting "
        "requests take their places and the rest are prefilled again (0: static batches; docs/performance.md)",
    )
    refill_share: float = option(
        0.9, "with refill_every: the share of a batch's rows that must have finished"
    )


class HFBackend:
    """Run a transformers model on batches of Requests (see the module docstring)."""

    name = "hf"
    options_type: type[BackendOptions] = HFOptions
    takes_image_budget = True  # max_soft_tokens sets the processor's image budget
    options: HFOptions

    def __init__(self, model: str, options: HFOptions | None = None, **overrides: Any) -> None:
        build_options(HFOptions, overrides, owner=f"backend '{self.name}'")  # names and types
        opts = self.options = dataclasses.replace(options or HFOptions(), **overrides)
        if not opts.progress:  # transformers' own bars (its GGUF conversion bar: `runners.hf_loading`)
            transformers.utils.logging.disable_progress_bar()
        self.model_id = model
        self.source = resolve_source(model, opts.gguf_file)
        self.revision = opts.revision
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        self.max_soft_tokens = opts.max_soft_tokens
        self._sizer = resolve_batch_sizer(opts.batch_size, opts.max_batch_size)
        if opts.draft_tokens is not None and opts.draft_model is None:
            raise ValueError("draft_tokens needs draft_model (an MTP assistant directory)")
        check_refill(
            opts.refill_every,
            opts.refill_share,
            static_cache=opts.static_cache,
            draft=opts.draft_model is not None,
        )
        self._fingerprint: dict[str, Any] | None = None
        # Opt-in diagnostic record: set to {} and each completion's generated token ids are kept
        # here under its request key (parity and GPU checks compare token ids, not text).
        self.generated_ids: dict[str, list[int]] | None = None
        self._token_callback: Callable[[int], None] | None = None  # see on_tokens
        loaded = load_model(
            model,
            self.source,
            revision=self.revision,
            dtype=self.dtype,
            device=self.device,
            progress=opts.progress,
            gguf_cache=opts.gguf_cache,
        )
        self.config, self.tokenizer, self.model = loaded.config, loaded.tokenizer, loaded.model
        self.processor = loaded.processor
        self._processor_error = loaded.processor_error  # why AutoProcessor failed, for media requests
        self.loaded_from = loaded.loaded_from  # a GGUF's dequantized cache folder, else the source
        self.footprint: KVFootprint = kv_footprint(self.config, self.model.dtype.itemsize)
        self.batch_sizes: list[int] = []  # rows of each generate call, in order (diagnostics, benchmarks)
        self.decode_steps: list[int] = []  # new positions of each generate call, in the same order
        self._setup_special_ids()
        self.draft: Drafter | None = None
        if opts.draft_model is not None:
            self.draft = load_drafter(
                opts.draft_model,
                self.model,
                dtype=self.dtype,
                device=self.device,
                num_assistant_tokens=opts.draft_tokens,
            )
            self._sizer = BatchSizer(1, adaptive=False)  # assisted generation is batch-1 only
        self.media = (
            MediaEncoder(self.processor, self.max_soft_tokens) if self.processor is not None else None
        )

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
        self.end_ids = frozenset(stop)
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

    def _media_sort_ids(self, request: Request) -> list[int]:
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
                    prepared.append(Prepared(request, self._media_sort_ids(request), media=True))
                else:
                    prepared.append(Prepared(request, self.render(request)))
            except Exception as exc:
                yield error_completion(request, exc)
        for group in group_by_sampling(prepared):
            budget = max(item.request.sampling.max_tokens for item in group)
            if self.options.refill_every > 0:  # text-only rows refill; media rows keep static batches
                text = [item for item in group if not item.media]
                group = [item for item in group if item.media]
                if text:
                    yield from self._generate_refilled(text, budget)
            while group:
                size = self._batch_size(group[0], budget)
                batch, group = group[:size], group[size:]
                yield from self._run_batch(batch)

    def set_batch_size(self, batch_size: int | str) -> None:
        """Change `batch_size` (as the option takes it) on the loaded model (benchmarks)."""
        self._sizer = resolve_batch_sizer(batch_size, self.options.max_batch_size)

    def _batch_size(self, longest: Prepared, budget: int) -> int:
        """Rows for the next batch, whose longest prompt is `longest`'s and largest token budget
        `budget`: the fixed size, or with batch_size=auto the most that fit in free memory (at most
        the sizer's current size)."""
        if not self._sizer.adaptive:
            return self._sizer.size
        free = free_memory_bytes(self.model.device)
        return batch_for_budget(self.footprint, free, len(longest.ids), budget, self._sizer.size)

    def _run_batch(self, batch: list[Prepared]) -> Iterator[Completion]:
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

    def _encode(self, item: Prepared) -> Encoded | Completion:
        """The item's encoding (media decoded and processed here, per batch), or its error Completion."""
        if not item.media:
            return Encoded(item.ids)
        try:
            return self.render_media(item.request)
        except Exception as exc:
            if is_oom(exc):
                raise
            return error_completion(item.request, exc)

    def _generate_batch(self, batch: Sequence[Prepared]) -> list[Completion]:
        """Completions in batch order: media that fail to decode or encode give error Completions,
        and the rest of the batch is generated together."""
        start = time.perf_counter()
        self.batch_sizes.append(len(batch))
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
    def _generate_rows(self, ready: Sequence[tuple[Prepared, Encoded]], start: float) -> list[Completion]:
        batch = [item for item, _ in ready]
        sampling = batch[0].request.sampling
        inputs = self._model_inputs([enc for _, enc in ready])
        prompt_len = inputs["input_ids"].shape[1]
        stopper = self._stopper(sampling, prompt_len, len(batch))
        budgets = [item.request.sampling.max_tokens for item in batch]
        criteria = self._criteria(stopper, prompt_len, budgets)
        if len(set(budgets)) > 1:  # rows of one batch may have different budgets: each stops at its own
            criteria.append(RowBudget(budgets, prompt_len))
        output = self.model.generate(
            **{key: value.to(self.model.device) for key, value in inputs.items()},
            max_new_tokens=max(budgets),
            do_sample=False,
            logits_processor=self._sampler(batch, prompt_len),
            stopping_criteria=criteria,
            **self._draft_kwargs(),
            **self._cache_kwargs(),
        )
        rows = output[:, prompt_len:].tolist()
        self.decode_steps.append(output.shape[1] - prompt_len)
        seconds = (time.perf_counter() - start) / len(batch)
        stopped = stopper.stopped_at if stopper else [None] * len(batch)
        return [
            self._completion(item, len(enc.ids), row, at, seconds)
            for (item, enc), row, at in zip(ready, rows, stopped, strict=True)
        ]

    def _sampler(
        self, batch: Sequence[Prepared], prompt_len: int, offsets: Sequence[int] | None = None
    ) -> LogitsProcessorList:
        seeds = [item.request.sampling.seed for item in batch]
        return sampling_processors(batch[0].request.sampling, seeds, self.model.device, prompt_len, offsets)

    def _stopper(
        self, sampling: Sampling, prompt_len: int, rows: int, starts: Sequence[int] | None = None
    ) -> StopStrings | None:
        return (
            StopStrings(sampling.stop, self._decode_tail, prompt_len, rows, starts) if sampling.stop else None
        )

    def _criteria(
        self,
        stopper: StopStrings | None,
        prompt_len: int,
        limits: list[int],
        offsets: list[int] | None = None,
    ) -> StoppingCriteriaList:
        return stop_criteria(stopper, self._token_callback, self.stop_ids, prompt_len, limits, offsets)

    def _generate_refilled(self, items: list[Prepared], budget: int) -> Iterator[Completion]:
        """Completions of text-only `items` (one sampling setting, longest prompt first) in refilled
        segments (`runners.hf_refill`), each as soon as its row finishes. The batch is sized as a
        static batch of the longest prompt would be; prefilling a refilled batch again runs in chunks
        of that prompt's length, so it needs no more memory than the first prefill."""
        size = self._batch_size(items[0], budget)
        chunk = max(len(items[0].ids), hf_refill.MIN_PREFILL_CHUNK)
        waiting = deque(RowState(item, item.ids, item.request.sampling.max_tokens) for item in items)

        def segment(rows: list[RowState[Prepared]], more_waiting: bool) -> None:
            self._run_segment(rows, more_waiting, chunk)

        for row in run_refilled(waiting, lambda: size, segment, self._sizer, free_accelerator_memory):
            if row.error is not None:
                yield error_completion(row.item.request, row.error, prompt_tokens=len(row.prompt))
            else:
                yield self._completion(row.item, len(row.prompt), row.generated, row.stopped_at, row.seconds)

    @torch.inference_mode()
    def _run_segment(self, rows: list[RowState[Prepared]], more_waiting: bool, chunk: int) -> None:
        """One segment of a refilled batch: prefill each row's prompt and generated tokens, decode
        until every row ends or (with requests waiting) the refill trigger fires; extend the rows."""
        start = time.perf_counter()
        self.batch_sizes.append(len(rows))
        input_ids, attention_mask = left_pad([row.ids for row in rows], self.pad_id)
        width = input_ids.shape[1]
        sampling = rows[0].item.request.sampling
        stopper = self._stopper(sampling, width, len(rows), [width - len(row.generated) for row in rows])
        budget = RowBudget([row.remaining for row in rows], width)
        criteria = self._criteria(
            stopper, width, [row.remaining for row in rows], [len(r.generated) for r in rows]
        )
        criteria.append(budget)
        if more_waiting:
            stops = (lambda: stopper.stopped_at) if stopper is not None else None
            need = rows_needed(len(rows), self.options.refill_share)
            criteria.append(
                RefillTrigger(self.options.refill_every, need, width, self.end_ids, budget, stops)
            )
        output = self.model.generate(
            input_ids=input_ids.to(self.model.device),
            attention_mask=attention_mask.to(self.model.device),
            max_new_tokens=max(row.remaining for row in rows),
            do_sample=False,
            logits_processor=self._sampler(
                [row.item for row in rows], width, [len(r.generated) for r in rows]
            ),
            stopping_criteria=criteria,
            prefill_chunk_size=chunk if width > chunk else None,
            **self._cache_kwargs(),
        )
        share = (time.perf_counter() - start) / len(rows)
        self.decode_steps.append(output.shape[1] - width)
        stopped = stopper.stopped_at if stopper else [None] * len(rows)
        for row, tokens, at in zip(rows, output[:, width:].tolist(), stopped, strict=True):
            row.extend(tokens, self.end_ids, at)
            row.seconds += share

    def _draft_kwargs(self) -> dict[str, Any]:
        return {"assistant_model": self.draft.model} if self.draft is not None else {}

    def _cache_kwargs(self) -> dict[str, Any]:
        use_static = self.options.static_cache and self.draft is None
        return {"cache_implementation": "static"} if use_static else {}

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

    def prompt_bos(self) -> int | None:
        """The BOS id every rendered prompt starts with exactly once, or None when the tokenizer
        adds none (e.g. SmolLM2's ChatML template starts the turn itself). A parity hook."""
        return self.bos_id if self.adds_bos else None

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
        self, item: Prepared, prompt_tokens: int, row: list[int], stopped_at: int | None, seconds: float
    ) -> Completion:
        end = next((i + 1 for i, token in enumerate(row) if token in self.stop_ids), len(row))
        end = min(end, item.request.sampling.max_tokens)  # in a batch of larger budgets: its own
        if stopped_at is not None and stopped_at <= end:  # not in the padding past the row's end
            end = stopped_at
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
            paths = weight_paths(self.source, self.revision, self.config)
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
                "weights": weights_identity(paths),
                "quantization": quantization(self.source, paths, self.config),
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

    def on_tokens(self, callback: Callable[[int], None] | None) -> None:
        """Report generated tokens to `callback` while batches run (schema.TokenProgress)."""
        self._token_callback = callback

    def close(self) -> None:
        """Free the model (and accelerator memory)."""
        self.model = None
        self.draft = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
