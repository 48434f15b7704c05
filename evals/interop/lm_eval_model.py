"""lm-evaluation-harness model "evals": lm-eval tasks run through this project's backends.

`lm_eval --model evals --model_args backend=llamacpp,model=PATH.gguf[,cache=FILE,thinking=true,...]`
(after `python -m evals.interop.lm_eval_install install`; `evals.interop.lm_eval_hook` says why).
Model arguments: `backend` (hf, llamacpp, openai, vllm), `model` (a path, hub id, `pkg:` or
`builtin:` spec), `cache` (the completion cache file; default `$EVALS_CACHE` or
~/.cache/evals/completions.sqlite), `thinking` (render chat templates with thinking on and
return the final answer only), `fresh` (regenerate and replace cached completions), `progress`,
`max_gen_toks` (the budget when a task names none); every other argument is a backend option
(`evals backends` lists them). lm-eval's own `--device`, `--batch_size` and `--max_batch_size`
are not the backend's: a backend option of one of those names is passed as `backend_device=cpu`,
`backend_batch_size=8`.

`generate_until` maps lm-eval's gen_kwargs (until, max_gen_toks, do_sample, temperature, top_p,
top_k, seed) onto `Sampling` and raw-prompt `Request`s, generated through `evals.generation`
(the SQLite completion cache keyed by the backend's fingerprint: a rerun generates nothing) and
returns each completion's final answer (Gemma 4's thought channel and `<think>` blocks are split
off by the backend), cut at the first `until` string. With thinking on the stop strings are applied
to the answer only (a "\\n\\n" inside the thought must not end generation), so they are not sent to
the backend. `apply_chat_template` renders with the backend's own template (hf: the tokenizer's;
llamacpp: the server's /apply-template). Log-likelihoods are computed on the `hf` backend's model
(`lm_eval_loglik`); other backends refuse them in one line naming the alternative. It does not
cache log-likelihoods (a deterministic forward pass) nor batch them.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval's own model table first: `get_model` loads it only into an empty registry)
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from evals.cache import CompletionCache, default_cache_path
from evals.generation import generate_all, model_hash
from evals.models import resolve_model
from evals.planning import backend_options
from evals.records import GenerationStats
from evals.schema import Backend, Request, Sampling

# Under lm-eval's logger so that its command line shows the line (it configures "lm_eval" only).
log = logging.getLogger("lm_eval.evals_adapter")

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's own default when a task names no max_gen_toks
LM_EVAL_OWN = ("device", "batch_size", "max_batch_size")  # passed by lm-eval's CLI to every model
SAMPLING_KEYS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p", "top_k", "seed")


class UnsupportedRequest(ValueError):
    """A request this backend cannot serve (log-likelihoods off transformers, chat templates...)."""


def sampling_from_gen_kwargs(
    gen_kwargs: Mapping[str, Any], *, default_max_tokens: int, thinking: bool
) -> tuple[Sampling, tuple[str, ...]]:
    """lm-eval's gen_kwargs as `Sampling` plus the stop strings to cut the answer at.

    Greedy unless do_sample is true or a temperature > 0 is given without do_sample=false
    (do_sample=true with no temperature samples at 1.0, as transformers does). With thinking on the
    stops are returned but not put in `Sampling` (the adapter applies them to the answer)."""
    unknown = sorted(set(gen_kwargs) - set(SAMPLING_KEYS))
    if unknown:
        raise UnsupportedRequest(
            f"gen_kwargs '{unknown[0]}' is not supported by the evals adapter; it takes: {', '.join(SAMPLING_KEYS)}"
        )
    until = gen_kwargs.get("until") or ()
    stops = (until,) if isinstance(until, str) else tuple(str(s) for s in until)
    do_sample = gen_kwargs.get("do_sample")
    temperature = float(gen_kwargs.get("temperature", 1.0 if do_sample else 0.0) or 0.0)
    if do_sample is False:
        temperature = 0.0
    sampling = Sampling(
        temperature=temperature,
        top_p=float(gen_kwargs.get("top_p", 1.0)) if temperature > 0 else 1.0,
        top_k=int(gen_kwargs.get("top_k", 0) or 0) if temperature > 0 else 0,
        max_tokens=int(gen_kwargs.get("max_gen_toks", default_max_tokens)),
        seed=int(gen_kwargs.get("seed", 0) or 0),
        thinking=thinking,
        stop=() if thinking else stops,
    )
    return sampling, stops


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string (lm-eval's `until`)."""
    cut = len(text)
    for stop in stops:
        if stop:
            at = text.find(stop)
            if 0 <= at < cut:
                cut = at
    return text[:cut]


@register_model("evals")
class EvalsLM(LM):  # type: ignore[misc]  # lm_eval ships no types
    """lm-eval's `LM` on an evals backend (see the module docstring)."""

    def __init__(
        self,
        backend: str = "llamacpp",
        model: str | None = None,
        cache: str | None = None,
        thinking: bool = False,
        fresh: bool = False,
        progress: bool = False,
        max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
        **extra: Any,
    ) -> None:
        super().__init__()
        if not model:
            raise ValueError("the evals model needs model=...: --model_args backend=llamacpp,model=PATH.gguf")
        given = {k: v for k, v in extra.items() if k not in LM_EVAL_OWN}
        given = {(k.removeprefix("backend_") if k.startswith("backend_") else k): v for k, v in given.items()}
        self.backend_name = backend
        self.model_spec = str(model)
        self.thinking = bool(thinking)
        self.fresh = bool(fresh)
        self.progress = bool(progress)
        self.max_gen_toks = int(max_gen_toks)
        backend_cls, options = backend_options(backend, given, [], show_progress=self.progress)
        self.backend: Backend = backend_cls(resolve_model(self.model_spec, backend), options)
        atexit.register(self.close)
        self.cache = CompletionCache(str(cache) if cache else default_cache_path())
        self.model_hash = model_hash(self.backend)
        self.last_stats = GenerationStats()  # of the latest generate_until call
        self.total_stats = GenerationStats()

    # --- generation ---

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        args = [tuple(instance.args) for instance in requests]
        built: list[Request] = []
        stops: list[tuple[str, ...]] = []
        for index, (context, gen_kwargs) in enumerate(args):
            sampling, until = sampling_from_gen_kwargs(
                dict(gen_kwargs or {}), default_max_tokens=self.max_gen_toks, thinking=self.thinking
            )
            key = f"lm-eval/{index}"
            built.append(Request(key=key, sample_id=key, repeat=0, sampling=sampling, prompt=str(context)))
            stops.append(until)
        completions, stats = generate_all(
            self.backend,
            built,
            self.cache,
            show_progress=self.progress and not disable_tqdm,
            label=f"lm-eval · {self.backend_name}",
            fresh=self.fresh,
        )
        self.last_stats = stats
        self.total_stats = self.total_stats.merged(stats)
        log.info(
            "evals: %d requests, %d from the cache, %d generated, %d shared",
            stats.requested,
            stats.cached,
            stats.generated,
            stats.shared,
        )
        failed = [completions[r.key] for r in built if completions[r.key].error is not None]
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(built)} generations failed (first: {failed[0].error}); "
                "rerun the same command to retry them (the others are cached)"
            )
        answers = []
        for request, until, pair in zip(built, stops, args, strict=True):
            answer = cut_at_stops(completions[request.key].text, until)
            self.cache_hook.add_partial("generate_until", pair, answer)
            answers.append(answer)
        return answers

    # --- log-likelihoods (transformers only) ---

    def _scorer(self) -> Any:
        if self.backend_name != "hf" or not hasattr(self.backend, "tokenizer"):
            raise UnsupportedRequest(
                f"backend {self.backend_name} cannot score log-likelihoods; use --model_args "
                "backend=hf,model=... or a generative task (output_type: generate_until)"
            )
        from evals.interop.lm_eval_loglik import Scorer

        return Scorer(self.backend)

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        scorer = self._scorer()
        results = []
        for instance in requests:
            context, continuation = instance.args
            result = scorer.loglikelihood(str(context), str(continuation))
            self.cache_hook.add_partial("loglikelihood", instance.args, result)
            results.append(result)
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        scorer = self._scorer()
        results = []
        for instance in requests:
            (text,) = instance.args
            value = scorer.rolling(str(text))
            self.cache_hook.add_partial("loglikelihood_rolling", instance.args, value)
            results.append(value)
        return results

    # --- chat templates ---

    def apply_chat_template(
        self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """The conversation rendered by the backend's own chat template (thinking as set)."""
        tokenizer = getattr(self.backend, "tokenizer", None)
        if self.backend_name == "hf" and tokenizer is not None:
            return str(
                tokenizer.apply_chat_template(
                    chat_history,
                    add_generation_prompt=add_generation_prompt,
                    tokenize=False,
                    enable_thinking=self.thinking,
                )
            )
        post = getattr(self.backend, "_post", None)
        if self.backend_name == "llamacpp" and post is not None:
            body = {
                "messages": chat_history,
                "add_generation_prompt": add_generation_prompt,
                "chat_template_kwargs": {"enable_thinking": self.thinking},
            }
            return str(post("/apply-template", body)["prompt"])
        raise UnsupportedRequest(
            f"backend {self.backend_name} cannot render chat templates for --apply_chat_template; "
            "use backend=hf or backend=llamacpp, or drop --apply_chat_template"
        )

    @property
    def tokenizer_name(self) -> str:
        template = self.backend.fingerprint().get("chat_template_sha256") or "none"
        return f"evals-{self.backend_name}-{str(template)[:16]}"

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        tokenizer = getattr(self.backend, "tokenizer", None)
        if tokenizer is not None:
            return getattr(tokenizer, "chat_template", None)
        info = getattr(self.backend, "info", None)
        return getattr(info, "chat_template", None)

    # --- identity and lifetime ---

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval writes into its results' "config": the backend, model and fingerprint."""
        fingerprint = {k: v for k, v in self.backend.fingerprint().items() if k != "location"}
        return {
            "evals_backend": self.backend_name,
            "evals_model": self.model_spec,
            "evals_model_hash": self.model_hash,
            "evals_fingerprint": fingerprint,
            "evals_thinking": self.thinking,
            "evals_cache": str(self.cache.path),
        }

    def close(self) -> None:
        """Stop the backend (idempotent)."""
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
            self.backend = None  # type: ignore[assignment]
