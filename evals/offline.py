"""What a card needs from the Hugging Face hub, the prefetch folder's manifest, and `evals run --offline`.

`row_needs` says which hub repositories (and which of their files, at which revision) a card row
needs: its task's dataset files, read from each task module's pinned `HUB_*` constants and the
task's own variant (AIME's year, LiveCodeBench's shards, MMMU-Pro's settings, CoVoST's pairs), and
its model when that is a hub id. `evals prefetch` (evals/prefetch.py) downloads them into one
folder with `manifest.json`; `offline_options` turns run options into ones that read only from that
folder: hub access switched off for the process (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE,
TRANSFORMERS_OFFLINE), each hub-backed row's data mapped to its prefetched files as `--data
TASK=PATH` would, and each hub model id to its prefetched snapshot. Anything missing is one line
naming it and the `evals prefetch` command that fetches it. This module downloads nothing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evals import registry
from evals.cards import Card
from evals.planning import RunOptions, card_for

MANIFEST = "manifest.json"
FORMAT = "evals-prefetch"
FORMAT_VERSION = "1.0"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# Files of a model repo a backend does not load: other formats of the same weights.
MODEL_IGNORED = (
    "*.gguf",
    "*.pt",
    "*.pth",
    "*.ckpt",
    "*.msgpack",
    "*.h5",
    "*.onnx",
    "*.onnx_data",
    "original/*",
)
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
NO_MODEL_BACKENDS = ("openai",)  # the server has the model


class OfflineError(ValueError):
    """The prefetch folder is unusable or lacks an item; the message names it and the fix."""


@dataclass(frozen=True)
class HubNeed:
    """Files of one hub repository at one revision, and what `--data` (or `--model`) then gets."""

    kind: str  # "dataset" or "model"
    repo: str
    revision: str  # as requested: a pinned commit, or a branch for an unpinned source
    patterns: tuple[str, ...]  # fnmatch patterns of repo paths ("*": all, less `ignored`)
    data_path: str = ""  # relative to the repo's folder; "" is the folder itself, ".." the one holding it
    ignored: tuple[str, ...] = ()
    used_by: tuple[str, ...] = ()  # task names or model specs, for messages

    @property
    def folder(self) -> str:
        """Where the repo lives in the prefetch folder."""
        return f"{self.kind}s/{self.repo}"

    @property
    def pinned(self) -> bool:
        return re.fullmatch(r"[0-9a-f]{40}", self.revision) is not None

    def describe(self) -> str:
        files = ", ".join(self.patterns)
        return f"{self.kind} {self.repo}@{self.revision[:12]} ({files})"


# --- what a card needs ----------------------------------------------------------------------------


def data_needs(task_name: str, task: Any) -> list[HubNeed]:
    """The hub files a task reads when no local data is given (empty for a task without a hub source)."""
    if task_name == "mmlu_pro":
        from tasks import mmlu_pro

        patterns = ("data/test-*", "data/validation-*")
        return [
            HubNeed("dataset", mmlu_pro.HUB_DATASET, mmlu_pro.HUB_REVISION, patterns, used_by=(task_name,))
        ]
    if task_name == "gpqa_diamond":
        from tasks import gpqa_diamond as gpqa

        name = f"{gpqa.HUB_CONFIG}.csv"
        return [HubNeed("dataset", gpqa.HUB_DATASET, gpqa.HUB_REVISION, (name,), name, used_by=(task_name,))]
    if task_name == "aime":
        from tasks import aime

        repos = aime.HUB_DATASETS[task.year]
        revision = aime.HUB_REVISIONS[task.year] or "main"
        beside = ".." if len(repos) > 1 else ""  # a split year reads its datasets' folders side by side
        return [
            HubNeed("dataset", repo, revision, ("*.parquet",), beside, used_by=(task_name,)) for repo in repos
        ]
    if task_name == "livecodebench":
        from tasks import livecodebench as lcb

        files = tuple(lcb.SHARD_FILES[shard] for shard in task.shards)
        return [HubNeed("dataset", lcb.HUB_DATASET, lcb.HUB_REVISION, files, used_by=(task_name,))]
    if task_name == "mmmu_pro":
        from tasks import mmmu_pro

        folders = tuple(f"{mmmu_pro.HUB_CONFIGS[s]}/{mmmu_pro.HUB_SPLIT}-*" for s in task.settings)
        return [
            HubNeed("dataset", mmmu_pro.HUB_DATASET, mmmu_pro.HUB_REVISION, folders, used_by=(task_name,))
        ]
    if task_name == "covost2":
        from tasks import covost2

        files = tuple(covost2.HUB_TEST_FILES.format(pair=pair) for pair in task.pairs)
        return [HubNeed("dataset", covost2.HUB_DATASET, covost2.HUB_REVISION, files, used_by=(task_name,))]
    return []


def is_hub_model(spec: str) -> bool:
    """A model spec that names a hub repository (org/name) rather than a local path or a built-in."""
    if spec.startswith(("builtin:", "pkg:")) or Path(spec).expanduser().exists():
        return False
    return HUB_ID.fullmatch(spec) is not None


def model_need(spec: str, backend: str) -> HubNeed | None:
    """The hub snapshot a (backend, model) pair loads; None for a local path, a package file, a
    built-in model or a backend that has the model itself."""
    if backend in NO_MODEL_BACKENDS or not is_hub_model(spec):
        return None
    if backend == "llamacpp":
        raise OfflineError(
            f"the llama.cpp backend loads a local .gguf file, not the hub id '{spec}'; pass --model FILE.gguf"
        )
    return HubNeed("model", spec, "main", ("*",), ignored=MODEL_IGNORED, used_by=(spec,))


@dataclass(frozen=True)
class RowPlan:
    """One card row's effective task, variant, data source, backend and model spec."""

    label: str
    task: str
    variant: str | None
    local_data: str | None  # the --data or card data that replaces the hub, if any
    backend: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)


def row_plans(card: Card, options: RunOptions) -> list[RowPlan]:
    """The card's rows as a run with `options` would plan them (rows without a task are left out)."""
    plans = []
    for row in card.rows:
        if row.task not in registry.TASKS:
            continue
        accepted = registry.task_options(row.task)
        cli_options = {k: v for k, v in options.task_options.items() if k in accepted}
        plans.append(
            RowPlan(
                label=row.label,
                task=row.task,
                variant=options.variant or row.variant,
                local_data=options.data.get(row.task) or options.data.get("*") or row.data,
                backend=options.backend or row.backend or card.backend,
                model=options.model or row.model or card.model,
                options={**row.options, **cli_options},
            )
        )
    return plans


def card_needs(
    card: Card, options: RunOptions
) -> tuple[list[tuple[RowPlan, HubNeed]], list[tuple[RowPlan, HubNeed]]]:
    """(dataset needs, model needs) of every row that would read from the hub, with their rows."""
    datasets: list[tuple[RowPlan, HubNeed]] = []
    models: list[tuple[RowPlan, HubNeed]] = []
    for plan in row_plans(card, options):
        if plan.local_data is None:
            task = registry.make_task(plan.task, plan.variant, plan.options)
            datasets.extend((plan, need) for need in data_needs(plan.task, task))
        need = model_need(plan.model, plan.backend)
        if need is not None:
            models.append((plan, need))
    return datasets, models


# --- the manifest ---------------------------------------------------------------------------------


@dataclass
class Manifest:
    """manifest.json of a prefetch folder: every item with where it came from and its files."""

    folder: Path
    items: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""

    def find(self, need: HubNeed) -> dict[str, Any] | None:
        """The item that holds `need`: same kind, repo and requested revision, and every pattern."""
        for item in self.items:
            same = (item.get("kind"), item.get("repo"), item.get("revision")) == (
                need.kind,
                need.repo,
                need.revision,
            )
            if same and set(need.patterns) <= set(item.get("patterns", ())):
                return item
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": self.created,
            "requests": self.requests,
            "items": self.items,
        }


def read_manifest(folder: Path, *, flag: str = "--offline") -> Manifest:
    """The folder's manifest; a folder that is not a prefetch folder is one line naming the fix."""
    fix = f"make it with `evals prefetch --card NAME --to {folder}`"
    if not folder.is_dir():
        raise OfflineError(f"{flag} {folder}: no such directory; {fix}")
    path = folder / MANIFEST
    if not path.is_file():
        raise OfflineError(f"{flag} {folder}: no {MANIFEST} (not a prefetch folder); {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OfflineError(f"{flag} {folder}: {MANIFEST} is unreadable ({exc}); {fix} again") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("items"), list):
        raise OfflineError(f"{flag} {folder}: {MANIFEST} is not an evals prefetch manifest; {fix}")
    major = str(data.get("format_version", "")).split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise OfflineError(
            f"{flag} {folder}: manifest format {data.get('format_version')} is not {FORMAT_VERSION}; {fix} again"
        )
    return Manifest(folder, data["items"], list(data.get("requests", [])), str(data.get("created", "")))


def check_files(folder: Path, item: dict[str, Any]) -> str | None:
    """Why an item's files are not all in place at their recorded sizes, or None when they are."""
    base = folder / item["path"]
    for entry in item.get("files", []):
        path = base / entry["path"]
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != entry["size"]:
            return f"{path} has {path.stat().st_size} bytes, the manifest says {entry['size']}"
    return None


# --- evals run --offline --------------------------------------------------------------------------


def prefetch_command(options: RunOptions, folder: Path) -> str:
    """The `evals prefetch` command that fetches what a run with `options` needs into `folder`."""
    words = ["evals", "prefetch"]
    if options.card is not None:
        words += ["--card", options.card]
    if options.tasks:
        words += ["--tasks", ",".join(options.tasks)]
    if options.variant is not None:
        words += ["--variant", options.variant]
    if options.backend is not None:
        words += ["--backend", options.backend]
    if options.model is not None:
        words += ["--model", options.model]
    words += ["--to", str(folder)]
    return shlex.join(words)


def set_offline_environment() -> None:
    """Switch hub access off for this process and its children (set before or after the hub
    client was imported: its already-read constants are set too)."""
    for name in OFFLINE_VARIABLES:
        os.environ[name] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True  # type: ignore[attr-defined]
        datasets_config.HF_DATASETS_OFFLINE = True  # type: ignore[attr-defined]


def offline_options(options: RunOptions, folder: Path) -> RunOptions:
    """`options` reading only from the prefetch `folder`: every hub-backed row's data and every hub
    model mapped to the folder's copies (data given with --data is kept), hub access switched off."""
    folder = folder.expanduser().resolve()
    manifest = read_manifest(folder)
    card = card_for(options)
    datasets, models = card_needs(card, options)
    fetch = prefetch_command(options, folder)
    data = dict(options.data)
    for plan, need in datasets:
        path = os.path.normpath(_located(manifest, need, f"row '{plan.label}'", fetch) / need.data_path)
        if data.get(plan.task, path) != path:
            raise OfflineError(
                f"rows of task '{plan.task}' need different data ({data[plan.task]} and {path}); "
                f"run them one at a time with --tasks"
            )
        data[plan.task] = path
    model_paths = dict(options.model_paths)
    for plan, need in models:
        model_paths[plan.model] = str(_located(manifest, need, f"row '{plan.label}'", fetch))
    for item in manifest.items:  # local models copied with --copy-local
        if item.get("kind") == "local-model" and item.get("model"):
            problem = check_files(folder, item)
            if problem is None:
                model_paths.setdefault(item["spec"], str(folder / item["model"]))
    set_offline_environment()
    model = model_paths.get(options.model, options.model) if options.model else None
    return replace(options, data=data, model=model, model_paths=model_paths)


def _located(manifest: Manifest, need: HubNeed, where: str, fetch: str) -> Path:
    item = manifest.find(need)
    if item is None:
        raise OfflineError(
            f"--offline {manifest.folder} lacks the {need.describe()} that {where} needs; fetch it with: {fetch}"
        )
    problem = check_files(manifest.folder, item)
    if problem is not None:
        raise OfflineError(
            f"--offline {manifest.folder}: {need.kind} {need.repo} is incomplete ({problem}); fetch it again with: {fetch}"
        )
    return manifest.folder / str(item["path"])
