"""The real vLLM 0.33.0 API, read from its source with `ast` (never imported or installed).

`ensure_sources()` returns a folder holding the few vLLM source files the backend's calls touch,
extracted from the 0.33.0 wheel: from the cache (`$EVALS_VLLM_API_CACHE/0.33.0`, default
`~/.cache/evals/vllm-api/0.33.0`), else from a local wheel named by `$EVALS_VLLM_WHEEL`, else from
`pip download --no-deps vllm==0.33.0` (a 336 MB wheel, deleted after extraction). It raises
`SourcesUnavailable` with the reason when none of that works. `read_api()` parses those files into
the table of accepted names (the format `vllm.FALLBACK_API` and `$VLLM_STANDIN_API` use) plus a
few facts the backend relies on. Used only by tests.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

VERSION = "0.33.0"
FILES = (
    "vllm/_version.py",
    "vllm/entrypoints/llm.py",
    "vllm/engine/arg_utils.py",
    "vllm/sampling_params.py",
    "vllm/outputs.py",
    "vllm/config/speculative.py",
    "vllm/v1/engine/__init__.py",
    "vllm/v1/engine/parallel_sampling.py",
    "vllm/renderers/chat_utils/chat_message.py",
    "vllm/renderers/chat_utils/content_parser.py",
    "vllm/model_executor/models/gemma4_mm.py",
    "vllm/model_executor/models/gemma4_unified.py",
    "vllm/model_executor/models/registry.py",
)
DOWNLOAD_SECONDS = 900


class SourcesUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("EVALS_VLLM_API_CACHE") or Path.home() / ".cache" / "evals" / "vllm-api"
    return Path(base) / VERSION


def ensure_sources() -> Path:
    """The folder with the extracted source files (see the module docstring)."""
    folder = cache_dir()
    if all((folder / name).is_file() for name in FILES):
        return folder
    wheel = os.environ.get("EVALS_VLLM_WHEEL")
    if wheel:
        extract(Path(wheel), folder)
        return folder
    with tempfile.TemporaryDirectory(prefix="vllm-wheel-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            f"vllm=={VERSION}",
            "-d",
            tmp,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourcesUnavailable(f"pip download vllm=={VERSION} failed: {exc}") from exc
        wheels = sorted(Path(tmp).glob("vllm-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise SourcesUnavailable(f"pip download vllm=={VERSION} failed: {last}")
        extract(wheels[0], folder)
    return folder


def extract(wheel: Path, folder: Path) -> None:
    """Copy FILES out of the wheel into `folder` (through a temporary folder, then renamed)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            missing = [name for name in FILES if name not in names]
            if missing:
                raise SourcesUnavailable(f"{wheel.name} has no {missing[0]}")
            for name in FILES:
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- reading the source -------------------------------------------------------------------


def _module(folder: Path, name: str) -> ast.Module:
    return ast.parse((folder / name).read_text())


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise LookupError(f"class {name} not found")


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"method {cls.name}.{name} not found")


def parameters(function: ast.FunctionDef) -> list[str]:
    args = function.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg != "self"]


def fields(cls: ast.ClassDef) -> list[str]:
    """Annotated class-level names (dataclass / msgspec / pydantic fields), public ones only."""
    return [
        node.target.id
        for node in cls.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and not node.target.id.startswith("_")
    ]


def field_default(cls: ast.ClassDef, name: str) -> Any:
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return ast.literal_eval(node.value) if node.value is not None else None
    raise LookupError(f"{cls.name}.{name} not found")


def self_attributes(function: ast.FunctionDef) -> list[str]:
    names = []
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    names.append(target.attr)
    return names


def literal_strings(tree: ast.Module, alias: str) -> set[str]:
    """The strings of a module-level `Alias = Literal[...]`, following aliases it names."""
    assigned = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }
    found: set[str] = set()

    def walk(node: ast.AST, seen: frozenset[str]) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
        elif isinstance(node, ast.Name) and node.id in assigned and node.id not in seen:
            walk(assigned[node.id], seen | {node.id})
        else:
            for child in ast.iter_child_nodes(node):
                walk(child, seen)

    walk(assigned[alias], frozenset({alias}))
    return found - {"Literal"}


def dict_keys(tree: ast.Module, name: str) -> list[str]:
    for node in tree.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) else None)
        )
        if isinstance(target, ast.Name) and target.id == name and isinstance(node.value, ast.Dict):
            return [k.value for k in node.value.keys if isinstance(k, ast.Constant)]
    raise LookupError(f"dict {name} not found")


def get_call_keys(function: ast.FunctionDef) -> set[str]:
    """String arguments of `.get("...")` calls inside a function."""
    return {
        node.args[0].value
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def strings_in(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"function {name} not found")


def _children_seeded(tree: ast.Module) -> bool:
    """Whether some `<x>.seed = seed + index` assignment exists (vLLM's n children get seed + i)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Attribute)
            and node.targets[0].attr == "seed"
            and isinstance(node.value, ast.BinOp)
            and isinstance(node.value.op, ast.Add)
            and {getattr(node.value.left, "id", None), getattr(node.value.right, "id", None)}
            == {"seed", "index"}
        ):
            return True
    return False


def wheel_version(tree: ast.Module) -> str:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError("__version__ not found")


def read_api(folder: Path) -> dict[str, Any]:
    """Accepted names per call (lists) and facts (other values) of the vLLM source in `folder`."""
    llm = _class(_module(folder, "vllm/entrypoints/llm.py"), "LLM")
    init = _method(llm, "__init__")
    engine_args = _class(_module(folder, "vllm/engine/arg_utils.py"), "EngineArgs")
    sampling = _class(_module(folder, "vllm/sampling_params.py"), "SamplingParams")
    outputs = _module(folder, "vllm/outputs.py")
    speculative = _module(folder, "vllm/config/speculative.py")
    chat_message = _module(folder, "vllm/renderers/chat_utils/chat_message.py")
    content_parser = _module(folder, "vllm/renderers/chat_utils/content_parser.py")
    audio_keys: set[str] = set()
    for node in content_parser.body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(m, ast.FunctionDef) and m.name == "parse_input_audio" for m in node.body
        ):
            audio_keys |= get_call_keys(_method(node, "parse_input_audio"))
    passes_kwargs_to_engine_args = any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "EngineArgs"
        and any(k.arg is None for k in node.keywords)
        for node in ast.walk(init)
    )
    init_args = parameters(init)
    return {
        "version": wheel_version(_module(folder, "vllm/_version.py")),
        "LLM": sorted(set(init_args) | (set(fields(engine_args)) if passes_kwargs_to_engine_args else set())),
        "LLM.__init__": init_args,
        "EngineArgs": fields(engine_args),
        "LLM.chat": parameters(_method(llm, "chat")),
        "LLM.generate": parameters(_method(llm, "generate")),
        "SamplingParams": fields(sampling),
        "SpeculativeConfig": fields(_class(speculative, "SpeculativeConfig")),
        "speculative_methods": sorted(literal_strings(speculative, "SpeculativeMethod")),
        "chat_part_types": dict_keys(chat_message, "MM_PARSER_MAP"),
        "input_audio_keys": sorted(audio_keys),
        "CompletionOutput": fields(_class(outputs, "CompletionOutput")),
        "RequestOutput": self_attributes(_method(_class(outputs, "RequestOutput"), "__init__")),
        "facts": {
            "llm_kwargs_go_to_engine_args": passes_kwargs_to_engine_args,
            "sampling_top_k_default": field_default(sampling, "top_k"),
            "finish_reasons": sorted(
                literal_strings(_module(folder, "vllm/v1/engine/__init__.py"), "FINISH_REASON_STRINGS")
            ),
            "llm_refuses_data_parallel": "not supported for single-" in "".join(strings_in(init)),
            "n_children_seed_plus_index": _children_seeded(
                _module(folder, "vllm/v1/engine/parallel_sampling.py")
            ),
            "gemma4_image_budget_key": "max_soft_tokens"
            in strings_in(
                _function(_module(folder, "vllm/model_executor/models/gemma4_mm.py"), "_get_max_soft_tokens")
            ),
            "gemma4_unified_registered": "Gemma4UnifiedForConditionalGeneration"
            in strings_in(_module(folder, "vllm/model_executor/models/registry.py")),
            "gemma4_unified_reads_vision_num_soft_tokens": any(
                isinstance(n, ast.Attribute) and n.attr == "num_soft_tokens"
                for n in ast.walk(_module(folder, "vllm/model_executor/models/gemma4_unified.py"))
            ),
            "gemma4_assistant_rewritten_to_mtp": {"gemma4_unified_assistant", "gemma4_mtp"}
            <= strings_in(speculative),
        },
    }


def write_api_json(folder: Path) -> Path:
    """Write read_api(folder) next to the sources (for `$VLLM_STANDIN_API`); return its path."""
    path = folder / "api.json"
    path.write_text(json.dumps(read_api(folder), indent=1, sort_keys=True))
    return path


def cached_api_json() -> Path | None:
    """The API table of an earlier run, if the sources are cached (no download)."""
    folder = cache_dir()
    if not all((folder / name).is_file() for name in FILES):
        return None
    path = folder / "api.json"
    return path if path.is_file() else write_api_json(folder)
