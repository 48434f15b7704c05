"""Make `lm_eval --model evals` work from lm-eval's own command line.

lm-eval 0.4.13 has no plugin or entry-point discovery for models: its model registry is filled
from the table in `lm_eval.models` and by `@register_model` in modules something has imported
(open upstream: EleutherAI/lm-evaluation-harness issues 1457, 3282). So a one-line
`evals_lm_eval.pth` file in the environment's site-packages (`python -m
evals.interop.lm_eval_install install`; `uninstall` removes it) imports this module at
interpreter start and calls `activate()`, which adds a
small import hook to `sys.meta_path` that does nothing until `lm_eval.models` is imported; right
after that package runs, the hook registers the name "evals" as a lazy entry
("evals.interop.lm_eval_model:EvalsLM"), next to lm-eval's own names, so the adapter (and torch,
the backends...) load only when `--model evals` is asked for. Standard library only; it does not
touch lm-eval's files.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

MODEL_NAME = "evals"
TARGET = "evals.interop.lm_eval_model:EvalsLM"
WATCHED = "lm_eval.models"
PTH_NAME = "evals_lm_eval.pth"
PTH_LINE = "import evals.interop.lm_eval_hook as _h; _h.activate()\n"


def register(registry: Any) -> None:
    """Add "evals" to lm-eval's model registry as a lazy "module:Class" entry (idempotent)."""
    if MODEL_NAME not in registry:
        registry.register(MODEL_NAME, target=TARGET)


class _RegisterAfter:
    """A loader that runs the real loader of `lm_eval.models`, then registers "evals"."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self.inner.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        from lm_eval.api.registry import model_registry

        register(model_registry)


class _Finder:
    """A `sys.meta_path` finder that answers only for `lm_eval.models`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _RegisterAfter(spec.loader)  # type: ignore[assignment]
        return spec


def activate() -> None:
    """Install the finder (idempotent); if lm-eval's model table is already loaded, register now."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    if WATCHED in sys.modules:
        from lm_eval.api.registry import model_registry

        register(model_registry)
