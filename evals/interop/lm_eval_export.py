"""Write a run directory in lm-evaluation-harness's output layout (`evals export RUN --to lm-eval`).

`export_lm_eval(run, out_dir)` writes, per model of the run, what lm-eval's `EvaluationTracker`
writes for `--output_path out_dir --log_samples`: `out_dir/<model name sanitized>/results_<date>.json`
("results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples",
"config", "task_hashes", "model_source", "model_name", "model_name_sanitized", "date",
"total_evaluation_time_seconds", ...) and one `samples_<task>_<date>.jsonl` per row (doc_id, doc,
target, arguments as {"gen_args_0": {"arg_0": prompt, "arg_1": gen_kwargs}}, resps, filtered_resps,
filter, metrics, doc/prompt/target hashes and the metric), so lm-eval's own helpers
(`lm_eval.utils.get_results_filenames`, `get_sample_results_filenames`, `get_file_task_name`,
`make_table`) and `datasets.load_dataset("json", ...)` read it. A row is one lm-eval task named
after its label (`\\W` -> `_`), with its categories as subtasks (a group, as lm-eval's mmlu_pro).
Metric keys are "<metric>,none" (e.g. "accuracy,none"); the extracted answer is the filtered
response ("[invalid]" where none was read, as lm-eval's regex filter). A chat prompt is stored as
its messages in JSON (the rendered template is not in the run directory). Question text of rows
that must stay private (GPQA: `public_text` false) is replaced by a placeholder; its hash stays.
It imports nothing of lm-eval and does not rescore anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from evals.records import MetricValue, RowResult, SampleRecord
from evals.run_dir import RunDir

REDACTED = "[question text withheld: this benchmark's authors ask that it stay unpublished]"
INVALID = "[invalid]"


def sanitize_model_name(name: str) -> str:
    """lm-eval's folder name for a model (`lm_eval.utils.sanitize_model_name`)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def task_name(label: str) -> str:
    """lm-eval's task-name form of a row label (`lm_eval.utils.sanitize_task_name`)."""
    return re.sub(r"\W", "_", label)


def hash_string(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def export_lm_eval(run: RunDir, out_dir: Path) -> list[Path]:
    """Write the run's rows in lm-eval's results and samples layout; return the files written."""
    rows = run.results.scored
    if not rows:
        raise ValueError(f"{run.path}: no scored rows to export")
    by_model: dict[str, list[RowResult]] = defaultdict(list)
    for row in rows:
        by_model[row.cost.model if row.cost is not None else run.results.header.model].append(row)
    date_id = _date_id(run.run.finished or run.run.started)
    written: list[Path] = []
    for model, model_rows in by_model.items():
        folder = out_dir / sanitize_model_name(model or "unknown")
        folder.mkdir(parents=True, exist_ok=True)
        hashes: dict[str, str] = {}
        for row in model_rows:
            lines = _sample_lines(row, run)
            name = task_name(row.label)
            path = folder / f"samples_{name}_{date_id}.jsonl"
            _write(path, "".join(json.dumps(line, ensure_ascii=False, default=str) + "\n" for line in lines))
            hashes[name] = hash_string(
                "".join(line["doc_hash"] + line["prompt_hash"] + line["target_hash"] for line in lines)
            )
            written.append(path)
        results = _results(run, model, model_rows, hashes)
        path = folder / f"results_{date_id}.json"
        _write(path, json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
        written.append(path)
    return written


# --- results_<date>.json ---------------------------------------------------------------------------


def _metric_entry(name: str, alias: str, metric: str, value: MetricValue) -> dict[str, Any]:
    return {
        "name": name,
        "alias": alias,
        "sample_len": value.n_samples,
        f"{metric},none": value.value,
        f"{metric}_stderr,none": value.stderr,
    }


def _results(run: RunDir, model: str, rows: list[RowResult], hashes: dict[str, str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    groups: dict[str, Any] = {}
    group_subtasks: dict[str, list[str]] = {}
    configs: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    n_shot: dict[str, int] = {}
    higher: dict[str, Any] = {}
    n_samples: dict[str, Any] = {}
    for row in rows:
        name = task_name(row.label)
        shots = int(row.protocol.config.get("n_shots") or 0)
        entry = _metric_entry(name, row.label, row.metric, row.summary)
        results[name] = entry
        subtasks = []
        for category, value in sorted(row.per_category.items()):
            sub = f"{name}_{task_name(category)}"
            results[sub] = _metric_entry(sub, category, row.metric, value)  # make_table indents it
            subtasks.append(sub)
            configs[sub] = _config(row, sub, category)
            versions[sub] = row.task_version
            n_shot[sub] = shots
            higher[sub] = {row.metric: True}
            n_samples[sub] = {"original": value.n_samples, "effective": value.n_samples}
        group_subtasks[name] = subtasks
        if subtasks:
            groups[name] = entry
        configs[name] = _config(row, name, None)
        versions[name] = row.task_version
        n_shot[name] = shots
        higher[name] = {row.metric: True}
        n_samples[name] = {"original": row.summary.n_samples, "effective": row.summary.n_samples}
    record = next((m for m in run.run.models if m.spec == model), None)
    fingerprint = record.fingerprint if record is not None else {}
    output: dict[str, Any] = {"results": results}
    if groups:
        output["groups"] = groups
    output.update(
        {
            "group_subtasks": group_subtasks,
            "configs": configs,
            "versions": versions,
            "n-shot": n_shot,
            "higher_is_better": higher,
            "n-samples": n_samples,
            "config": {
                "model": "evals",
                "model_args": {"backend": record.backend if record else "", "model": model},
                "batch_size": None,
                "batch_sizes": [],
                "device": None,
                "use_cache": None,
                "limit": run.run.options.get("limit"),
                "bootstrap_iters": 0,
                "gen_kwargs": None,
                "evals_fingerprint": {k: v for k, v in fingerprint.items() if k != "location"},
                "evals_run": str(run.path),
            },
            "git_hash": (run.run.environment.get("git") or {}).get("commit"),
            "date": _timestamp(run.run.started),
            "task_hashes": hashes,
            "model_source": "evals",
            "model_name": model,
            "model_name_sanitized": sanitize_model_name(model),
            "system_instruction": None,
            "system_instruction_sha": None,
            "fewshot_as_multiturn": None,
            "chat_template": None,
            "chat_template_sha": fingerprint.get("chat_template_sha256"),
            "total_evaluation_time_seconds": str(run.run.wall_seconds),
        }
    )
    return output


def _gen_kwargs(row: RowResult) -> dict[str, Any]:
    sampling = row.protocol.sampling
    temperature = float(sampling.get("temperature", 0.0))
    kwargs: dict[str, Any] = {
        "until": list(sampling.get("stop") or []),
        "max_gen_toks": sampling.get("max_tokens"),
        "do_sample": temperature > 0,
        "temperature": temperature,
    }
    if temperature > 0:
        kwargs.update(top_p=sampling.get("top_p"), top_k=sampling.get("top_k"), seed=sampling.get("seed"))
    if sampling.get("thinking"):
        kwargs["thinking"] = True
    return kwargs


def _config(row: RowResult, name: str, category: str | None) -> dict[str, Any]:
    return {
        "task": name,
        "task_alias": category or row.label,
        "dataset_path": str((row.protocol.config.get("data") or {}).get("dataset") or row.task),
        "test_split": "test",
        "output_type": "generate_until",
        "num_fewshot": int(row.protocol.config.get("n_shots") or 0),
        "repeats": row.protocol.repeats,
        "generation_kwargs": _gen_kwargs(row),
        "metric_list": [{"metric": row.metric, "aggregation": "mean", "higher_is_better": True}],
        "metadata": {
            "version": row.task_version,
            "evals_task": row.task,
            "evals_variant": row.variant,
            "evals_protocol": row.protocol.config,
            "evals_data_fingerprint": row.protocol.data_fingerprint,
        },
    }


# --- samples_<task>_<date>.jsonl -------------------------------------------------------------------


def _sample_lines(row: RowResult, run: RunDir) -> list[dict[str, Any]]:
    by_id: dict[str, list[SampleRecord]] = defaultdict(list)
    for sample in run.samples:
        if sample.row == row.label:
            by_id[sample.id].append(sample)
    gen_kwargs = _gen_kwargs(row)
    lines = []
    for doc_id, (sample_id, repeats) in enumerate(by_id.items()):
        repeats.sort(key=lambda s: s.repeat)
        first = repeats[0]
        prompt = _prompt_text(run.prompts.get(first.prompt_id))
        shown = prompt if row.public_text else REDACTED
        letters = [s.extracted if s.extracted is not None else INVALID for s in repeats]
        doc = {"id": sample_id, "category": first.category, "answer": first.target}
        value = sum(s.value for s in repeats) / len(repeats)
        lines.append(
            {
                "doc_id": doc_id,
                "doc": doc,
                "target": str(first.target),
                "arguments": {"gen_args_0": {"arg_0": shown, "arg_1": gen_kwargs}},
                "resps": [[s.output for s in repeats]],
                "filtered_resps": letters if len(letters) == 1 else [letters],
                "filter": "none",
                "metrics": [row.metric],
                "doc_hash": hash_string(json.dumps(doc, indent=2, ensure_ascii=False, default=str)),
                "prompt_hash": hash_string(prompt),
                "target_hash": hash_string(str(first.target)),
                row.metric: value,
                "evals_outcomes": [s.outcome for s in repeats],
                "evals_flags": sorted({flag for s in repeats for flag in s.flags}),
            }
        )
    return lines


def _prompt_text(prompt: Any) -> str:
    if prompt is None:
        return ""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)


# --- helpers ---------------------------------------------------------------------------------------


def _date_id(stamp: str) -> str:
    """lm-eval's file date form (ISO time with ':' as '-'); the run's own time, so re-exports match."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        moment = datetime.now()
    return moment.isoformat().replace(":", "-")


def _timestamp(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
