"""Multi-token-prediction (MTP) drafters for the transformers backend: load a Gemma 4 assistant
checkpoint from a local directory, check that it fits the target model, and describe its identity.

Transformers runs the drafter through `generate(..., assistant_model=...)`: the target shares its
KV cache and last hidden state with the drafter, which proposes `num_assistant_tokens` tokens per
round; the target verifies them in one forward pass. Greedy output is the target's own greedy
output (the drafter only changes speed). Assisted generation is batch-1 only.

Only `runners.hf` imports this module. It does not generate, batch or render prompts; it does not
download drafters (a local directory only, as no machine of this project reaches the hub).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM

from runners.fingerprint import quick_digest, weight_files

DRAFT_MODEL_TYPES = ("gemma4_unified_assistant", "gemma4_assistant")
TARGET_CLASS_PREFIXES = ("Gemma4", "Gemma3n")  # targets that share their KV states with a drafter
DEFAULT_NUM_ASSISTANT_TOKENS = 4  # when neither the caller nor the drafter's generation config says


@dataclass
class Drafter:
    """A loaded drafter and the settings it runs with."""

    path: Path
    model: Any
    num_assistant_tokens: int

    def identity(self) -> dict[str, Any]:
        """Name, class, weights digest and draft length (JSON-serialisable, for the fingerprint;
        where the files live is not part of it)."""
        files = weight_files(self.path)
        weights = {"files": [p.name for p in files], "quick_sha256": quick_digest(files)} if files else None
        return {
            "model": self.path.name,
            "model_type": self.model.config.model_type,
            "model_class": type(self.model).__name__,
            "weights": weights,
            "num_assistant_tokens": self.num_assistant_tokens,
        }


def _fail(path: str, why: str) -> ValueError:
    return ValueError(
        f"draft model {path!r} {why}; pass a local directory holding a Gemma 4 MTP assistant checkpoint "
        f"(config.json with model_type {' or '.join(DRAFT_MODEL_TYPES)})"
    )


def check_target(target: Any) -> None:
    """Raise a one-line ValueError when the target cannot share its KV states with a drafter."""
    name = type(target).__name__
    if not name.startswith(TARGET_CLASS_PREFIXES):
        raise ValueError(
            f"an MTP draft model needs a Gemma 4 target (class Gemma4*), but the target is {name}; "
            "drop draft_model or use a Gemma 4 model"
        )


def load_drafter(
    path: str, target: Any, *, dtype: torch.dtype, device: str, num_assistant_tokens: int | None
) -> Drafter:
    """Load and check the drafter at `path` for `target`; every failure is a one-line ValueError."""
    if num_assistant_tokens is not None and num_assistant_tokens < 1:
        raise ValueError(f"draft_tokens must be >= 1, got {num_assistant_tokens}")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise _fail(path, "is not a directory" if directory.exists() else "does not exist")
    if not (directory / "config.json").is_file():
        raise _fail(path, "has no config.json")
    check_target(target)
    try:
        config = AutoConfig.from_pretrained(directory)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(path, f"has a config that does not load ({first})") from exc
    if config.model_type not in DRAFT_MODEL_TYPES:
        raise _fail(path, f"is a {config.model_type!r} model, not an MTP assistant")
    _check_fit(path, config, target.config)
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, device_map={"": device}).eval()
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(path, f"does not load ({first})") from exc
    tokens = (
        num_assistant_tokens or model.generation_config.num_assistant_tokens or DEFAULT_NUM_ASSISTANT_TOKENS
    )
    model.generation_config.num_assistant_tokens = int(tokens)
    return Drafter(directory, model, int(tokens))


def _check_fit(path: str, draft_config: Any, target_config: Any) -> None:
    """The drafter reads the target's hidden state and vocabulary: sizes must agree."""
    target_text, draft_text = target_config.get_text_config(), draft_config.get_text_config()
    pairs = {
        "backbone_hidden_size vs target hidden_size": (
            getattr(draft_config, "backbone_hidden_size", None),
            target_text.hidden_size,
        ),
        "vocab_size": (draft_text.vocab_size, target_text.vocab_size),
    }
    for what, (draft, target) in pairs.items():
        if draft != target:
            raise _fail(path, f"does not fit the target ({what}: {draft} != {target})")
