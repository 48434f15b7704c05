"""Plain dict registries of tasks and backends, imported lazily so that heavy dependencies
(torch, vllm, llama_cpp) load only when that backend is used. Nothing else lives here."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

# task name -> "module:Class"; the class takes (variant: str | None = None, **options)
TASKS: dict[str, str] = {
    "mmlu_pro": "tasks.mmlu_pro:MMLUPro",
    "gpqa_diamond": "tasks.gpqa_diamond:GPQADiamond",
    "aime": "tasks.aime:AIME",
    "livecodebench": "tasks.livecodebench:LiveCodeBench",
    "mmmu_pro": "tasks.mmmu_pro:MMMUPro",
    "covost2": "tasks.covost2:CoVoST2",
}

# backend name -> "module:Class"; the class takes (model: str, **options)
BACKENDS: dict[str, str] = {
    "hf": "runners.hf:HFBackend",
    "llamacpp": "runners.llamacpp:LlamaCppBackend",
    "openai": "runners.openai:OpenAIBackend",
    "vllm": "runners.vllm:VLLMBackend",
}


class UnknownName(ValueError):
    pass


# backend name -> the extra that installs what it imports
EXTRAS = {"hf": "hf", "vllm": "vllm", "llamacpp": "llamacpp"}


class MissingDependency(ValueError):
    pass


def _load(table: dict[str, str], name: str, kind: str) -> Any:
    if name not in table:
        raise UnknownName(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(table))}")
    module_name, _, attr = table[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = EXTRAS.get(name)
        if (
            extra is None
            or not exc.name
            or exc.name.split(".")[0] in {"evals", "tasks", "runners", "reports"}
        ):
            raise
        raise MissingDependency(
            f"{kind} '{name}' needs the package '{exc.name}'; install it with: pip install -e '.[{extra}]'"
        ) from exc
    return getattr(module, attr)


def task_class(name: str) -> Any:
    return _load(TASKS, name, "task")


def task_options(name: str) -> set[str]:
    """Keyword options the task's constructor accepts (besides the variant)."""
    signature = inspect.signature(task_class(name))
    return {p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def make_task(name: str, variant: str | None, options: dict[str, Any]) -> Any:
    """Build a task; an option it does not take is a clear error naming the ones it does."""
    unknown = sorted(set(options) - task_options(name))
    if unknown:
        valid = ", ".join(sorted(task_options(name))) or "none"
        raise ValueError(f"task '{name}' has no option '{unknown[0]}'; its options: {valid}")
    return task_class(name)(variant, **options)


def backend_class(name: str) -> Any:
    return _load(BACKENDS, name, "backend")
