"""Log-likelihoods for lm-eval's `loglikelihood` and `loglikelihood_rolling` requests, computed
with the transformers backend's own model and tokenizer (one sequence per forward pass).

Tokenization follows lm-eval's conventions for causal models: trailing whitespace of the context
moves to the continuation; the continuation's tokens are those of context + continuation after the
context's; an empty context is conditioned on the prefix token (BOS, or EOS where the model has no
BOS). Prompts start with exactly one BOS where the tokenizer adds one. Rolling log-likelihoods use
lm-eval's own disjoint rolling windows over the model's context length. It does not batch, cache
or truncate contexts other than from the left to fit the model.
"""

from __future__ import annotations

from typing import Any

import torch

DEFAULT_MAX_LENGTH = 2048


class Scorer:
    """Scores text with an `hf` backend's loaded model (`backend.model`, `backend.tokenizer`)."""

    def __init__(self, backend: Any) -> None:
        self.model = backend.model
        self.tokenizer = backend.tokenizer
        self.bos_id: int | None = backend.bos_id if backend.adds_bos else None
        eos = self.tokenizer.eos_token_id
        self.prefix_id: int = int(backend.bos_id if backend.bos_id is not None else eos)
        config = getattr(self.model, "config", None)
        text_config = (
            config.get_text_config() if config is not None and hasattr(config, "get_text_config") else config
        )
        self.max_length = int(getattr(text_config, "max_position_embeddings", 0) or DEFAULT_MAX_LENGTH)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with one leading BOS where the tokenizer adds one."""
        ids = list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        if self.bos_id is not None:
            while len(ids) > 1 and ids[0] == self.bos_id and ids[1] == self.bos_id:
                ids = ids[1:]
            if not ids or ids[0] != self.bos_id:
                ids = [self.bos_id, *ids]
        return ids

    def pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """(context ids, continuation ids) as lm-eval splits them."""
        if not context:
            cont = list(self.tokenizer(continuation, add_special_tokens=False)["input_ids"])
            if cont and cont[0] == self.prefix_id:
                return cont[:1], cont[1:]
            return [self.prefix_id], cont
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        context_ids = self.encode(context)
        return context_ids, whole[len(context_ids) :]

    def token_logprobs(self, context_ids: list[int], target_ids: list[int]) -> tuple[list[float], bool]:
        """Log-probability of each of `target_ids` after `context_ids`, and whether greedy decoding
        would produce all of them."""
        if not target_ids:
            return [], True
        ids = (context_ids + target_ids)[-(self.max_length + 1) :]
        inputs = torch.tensor([ids[:-1]], dtype=torch.long, device=self.model.device)
        with torch.inference_mode():
            logits = self.model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits[0]
        logprobs = torch.log_softmax(logits[-len(target_ids) :].float(), dim=-1)
        target = torch.tensor(target_ids, dtype=torch.long, device=logprobs.device)
        picked = logprobs.gather(1, target[:, None])[:, 0]
        greedy = bool((logprobs.argmax(dim=-1) == target).all())
        return [float(x) for x in picked.tolist()], greedy

    def loglikelihood(self, context: str, continuation: str) -> tuple[float, bool]:
        context_ids, cont_ids = self.pair(context, continuation)
        values, greedy = self.token_logprobs(context_ids, cont_ids)
        return float(sum(values)), greedy

    def rolling(self, text: str) -> float:
        """Log-likelihood of all of `text` conditioned on the prefix token, in disjoint windows."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        total = 0.0
        windows = get_rolling_token_windows(
            token_list=ids, prefix_token=self.prefix_id, max_seq_len=self.max_length, context_len=1
        )
        for window in map(make_disjoint_window, windows):
            context_ids, target_ids = list(window[0]), list(window[1])
            values, _ = self.token_logprobs(context_ids, target_ids)
            total += sum(values)
        return total
