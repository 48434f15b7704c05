"""Score existing generations (from any harness) with a task, and write a run directory for them.

Predictions are one JSON object per line: {"id": <the benchmark's own id>, "response": "...",
"repeat": 0, "answer": ...}, `repeat` and `answer` optional. Each prediction becomes the completion
of its sample's request for that repeat (requests are built once per sample), so the records,
statistics and reports are those of a generated run. Nothing is generated here.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals import environment, registry
from evals.prompt_store import PromptStore
from evals.records import ReportHeader, Results, RunInfo, TaskInfo
from evals.run_dir import write_run
from evals.schema import Completion, Request, Task
from evals.scoring import TaskResult, sample_records, score_all
from runners.outputs import split_output
from tasks.data import read_file


@dataclass
class ScoreOptions:
    task: str
    predictions: Path
    variant: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    output: Path | None = None  # None: runs/score-<task>-<timestamp>, as `evals run` does
    redact: bool | None = None


@dataclass
class Prediction:
    sample_id: str
    repeat: int
    response: str
    answer: Any = None


def read_predictions(path: Path) -> list[Prediction]:
    """Read a JSONL (or JSON list) file of {"id", "response", optional "repeat", "answer"} objects."""
    if not path.is_file():
        raise FileNotFoundError(
            f'predictions file {path} does not exist; pass a JSONL file of {{"id", "response"}} lines'
        )
    predictions = []
    for number, item in enumerate(read_file(path), 1):
        if "id" not in item or "response" not in item:
            raise ValueError(f'{path}: record {number} needs "id" and "response"')
        response = "" if item["response"] is None else str(item["response"])
        repeat = item.get("repeat", 0)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 0:
            raise ValueError(f'{path}: record {number} has "repeat" {repeat!r}; use a whole number >= 0')
        predictions.append(Prediction(str(item["id"]), repeat, response, item.get("answer")))
    if not predictions:
        raise ValueError(f"{path}: no predictions found")
    return predictions


@dataclass
class ScoreOutcome:
    result: TaskResult
    results: Results
    out_dir: Path
    report: str
    gold_mismatches: list[tuple[str, Any, Any]]  # (id, answer in predictions, answer in dataset)
    missing_samples: int


def score(options: ScoreOptions) -> ScoreOutcome:
    started_clock = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    task: Task = registry.make_task(options.task, options.variant, options.task_options)
    predictions = read_predictions(options.predictions)
    samples = {s.id: s for s in task.load(options.data)}
    unknown = sorted({p.sample_id for p in predictions} - samples.keys())
    if unknown:
        example = next(iter(samples), None)
        raise ValueError(
            f"{len(unknown)} prediction ids are not in the loaded dataset (first: {', '.join(unknown[:5])}); "
            f"ids look like '{example}'; check --task/--data"
        )
    by_sample: dict[str, list[Prediction]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for pred in predictions:
        if (pred.sample_id, pred.repeat) in seen:
            raise ValueError(f"prediction for id {pred.sample_id} repeat {pred.repeat} appears twice")
        seen.add((pred.sample_id, pred.repeat))
        by_sample[pred.sample_id].append(pred)
    requests: list[Request] = []
    completions: dict[str, Completion] = {}
    mismatches = []
    for sample_id, preds in by_sample.items():  # one requests() call per sample, all its repeats
        sample = samples[sample_id]
        built = task.requests(sample, task.default_sampling, max(p.repeat for p in preds) + 1)
        for pred in preds:
            request = built[pred.repeat]
            requests.append(request)
            split = split_output(pred.response)
            completions[request.key] = Completion(
                key=request.key,
                text=split.answer,
                raw=pred.response,
                reasoning=split.reasoning,
                thought_open=split.thought_open,
            )
            if pred.answer is not None and str(pred.answer) != str(sample.target) and pred.repeat == 0:
                mismatches.append((pred.sample_id, pred.answer, sample.target))
    scored = sorted(by_sample)
    result = score_all(task, [samples[i] for i in scored], requests, completions, label=options.task)
    prompts = PromptStore()
    records = sample_records(result, prompts)
    repeats = max(p.repeat for p in predictions) + 1
    header = ReportHeader(
        title=f"Rescoring {options.predictions.name}",
        model=f"predictions {options.predictions}",
        backend="none (existing generations)",
        started=started,
    )
    results = Results(header, [result.to_row(protocol=result.protocol(task.default_sampling, repeats))])
    digest = hashlib.sha256(options.predictions.read_bytes()).hexdigest()
    run_info = RunInfo(
        kind="score",
        started=started,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
        environment=environment.describe(),
        tasks=[
            TaskInfo(
                label=options.task,
                task=task.name,
                version=task.version,
                config=task.describe(),
                samples=len(scored),
                requests=len(requests),
            )
        ],
        wall_seconds=time.perf_counter() - started_clock,
        predictions={"path": str(options.predictions), "sha256": digest, "lines": len(predictions)},
        gold_mismatches=[{"id": i, "predictions": a, "dataset": b} for i, a, b in mismatches],
    )
    out_dir = options.output or Path("runs") / f"score-{options.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    report = write_run(out_dir, run_info, results, records, prompts, redact=options.redact)
    return ScoreOutcome(result, results, out_dir, report, mismatches, len(samples) - len(scored))
