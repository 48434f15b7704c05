"""`evals export --to model-index`: a run's scores as Hugging Face model-card eval results.

Writes `README.md` (YAML front matter holding a `model-index` block, then a short table) and
`model-index.yaml` (the same block alone, to paste into an existing card). The block follows the
hub's model-card metadata spec: per model `name` and `results`, each result with `task` (type,
name), `dataset` (type = hub id, name, config, split, revision), `metrics` (type, value, name,
verified: false: these are self-reported) and, where a URL is given, `source` (name and url: the
hub's parser refuses a source without a url). Values are in points (77.2, as model
cards show them). One entry per model the rows ran on. Rows that could not run are left out. The
dataset revision is written only when the run read the hub at a pinned commit; a run on local or
built-in data says so in the dataset name. The newer `.eval_results/` folder format of the hub is
not written. This module reads records and writes YAML; it computes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from evals.records import RowResult
from evals.run_dir import RunDir

# task -> hub task type (https://huggingface.co/tasks)
TASK_TYPES = {
    "mmlu_pro": "text-generation",
    "gpqa_diamond": "text-generation",
    "aime": "text-generation",
    "livecodebench": "text-generation",
    "mmmu_pro": "image-text-to-text",
    "covost2": "audio-text-to-text",
}
# task -> (hub dataset id, pretty name, split) for runs whose record names no hub dataset
DATASETS = {
    "mmlu_pro": ("TIGER-Lab/MMLU-Pro", "MMLU-Pro", "test"),
    "gpqa_diamond": ("Idavidrein/gpqa", "GPQA Diamond", "train"),
    "aime": ("MathArena/aime_{variant}", "AIME {variant}", "train"),
    "livecodebench": ("livecodebench/code_generation_lite", "LiveCodeBench {variant}", "test"),
    "mmmu_pro": ("MMMU/MMMU_Pro", "MMMU-Pro {variant}", "test"),
    "covost2": ("fixie-ai/covost2", "CoVoST 2 {variant}", "test"),
}
COMMIT = re.compile(r"[0-9a-f]{40}")
SOURCE_NAME = "evals (self-reported)"


def model_index(
    run: RunDir, *, model_name: str | None = None, source_url: str | None = None
) -> list[dict[str, Any]]:
    """The `model-index` value: one item per model, each with its rows' results."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in run.results.scored:
        name = model_name or (row.cost.model if row.cost and row.cost.model else run.results.header.model)
        by_model.setdefault(name or "model", []).append(_result(row, run, source_url))
    if not by_model:
        raise ValueError(f"{run.path} has no scored rows; nothing to export")
    return [{"name": name, "results": results} for name, results in by_model.items()]


def write_model_index(
    run: RunDir, out_dir: Path, *, model_name: str | None = None, source_url: str | None = None
) -> list[Path]:
    index = model_index(run, model_name=model_name, source_url=source_url)
    block = yaml.safe_dump({"model-index": index}, sort_keys=False, allow_unicode=True, width=100)
    readme = out_dir / "README.md"
    readme.write_text(f"---\n{block}---\n\n{_table(run)}")
    alone = out_dir / "model-index.yaml"
    alone.write_text(block)
    return [readme, alone]


def _result(row: RowResult, run: RunDir, source_url: str | None) -> dict[str, Any]:
    data = row.protocol.config.get("data") or {}
    hub_id, pretty, split = DATASETS.get(row.task, (row.task, row.task, "test"))
    dataset: dict[str, Any] = {
        "name": row.label,
        "type": hub_id.format(variant=row.variant),
    }
    from_hub = "source" not in data and "dataset" in data
    if from_hub and isinstance(data["dataset"], str):
        dataset["type"] = data["dataset"]
    configs = data.get("configs") or ([data["config"]] if data.get("config") else [])
    if len(configs) == 1:
        dataset["config"] = configs[0]
    dataset["split"] = data.get("split") or split
    if from_hub and pinned_revision(data.get("revision")):
        dataset["revision"] = data["revision"]
    if not from_hub:
        dataset["name"] = f"{row.label} ({data.get('source', 'local')} data, not the hub dataset)"
    summary = row.summary
    low, high = summary.ci95
    metric = {
        "type": row.metric,
        "value": _points(summary.value),
        "name": f"{row.label} {row.metric} (95% CI {_points(low)}-{_points(high)}, "
        f"{summary.n_samples} samples x {row.protocol.repeats})",
        "verified": False,
    }
    extras = [
        {"type": name, "value": _points(value.value), "name": f"{row.label} {name}", "verified": False}
        for name, value in row.extra_metrics.items()
    ]
    result: dict[str, Any] = {
        "task": {
            "type": TASK_TYPES.get(row.task, "text-generation"),
            "name": pretty.format(variant=row.variant),
        },
        "dataset": dataset,
        "metrics": [metric, *extras],
    }
    if source_url:
        started = run.run.started or run.results.header.started
        result["source"] = {"name": f"{SOURCE_NAME}, run of {started}", "url": source_url}
    return result


def pinned_revision(revision: object) -> bool:
    """A hub revision worth writing: a commit hash (not a branch such as "main (unpinned)")."""
    return isinstance(revision, str) and COMMIT.fullmatch(revision) is not None


def _points(fraction: float) -> float:
    return round(fraction * 100, 2)


def _table(run: RunDir) -> str:
    lines = ["| row | metric | ours | 95% CI | published |", "|---|---|---|---|---|"]
    for row in run.results.scored:
        low, high = row.summary.ci95
        published = "" if row.published is None else f"{row.published:g}"
        lines.append(
            f"| {row.label} | {row.metric} | {_points(row.summary.value)} | "
            f"{_points(low)}-{_points(high)} | {published} |"
        )
    return "\n".join(lines) + "\n"
