"""The two end-to-end flows: run a card (generate, score, report) and score existing generations.

The CLI parses arguments into the small option objects below and calls `run` or `score`; tests
call them the same way. Generation goes through the runner and cache; scoring through the task.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from evals import environment, registry
from evals.cache import CompletionCache, default_cache_path
from evals.cards import Card, Row, load_card
from evals.scoring import TaskResult, score_all
from evals.models import resolve_model
from evals.records import write_run
from evals.generation import GenerationStats, generate_all
from evals.schema import Completion, Request, Sample, Sampling, Task
from reports.markdown import render_report
from runners.outputs import split_output
from tasks.data import read_file


@dataclass
class RunOptions:
    card: str | None = "smoke"
    tasks: list[str] = field(default_factory=list)  # instead of a card
    variant: str | None = None
    model: str | None = None
    backend: str | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)
    task_options: dict[str, Any] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)  # task name (or "*") -> local source
    limit: int | None = None
    repeats: int | None = None
    sampling: dict[str, Any] = field(default_factory=dict)  # CLI overrides of sampling fields
    output: Path | None = None
    cache: Path | None = None
    fresh: bool = False  # regenerate every completion, ignoring the cache, and store the new ones
    show_progress: bool = True
    redact: bool | None = None  # question text in report.html: None = as each task asks


@dataclass
class PlannedRow:
    row: Row
    task: Task | None
    samples: list[Sample]
    requests: list[Request]
    sampling: Sampling | None
    unavailable: str | None = None
    repeats: int = 1


def run(options: RunOptions) -> tuple[Path, list[TaskResult], str]:
    """Generate what is missing, score, and write the run directory. Returns (dir, results, report)."""
    card = card_for(options)
    _check_task_options(card, options.task_options)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    plans = [plan_row(row, options) for row in card.rows]
    groups: dict[tuple[str, str], list[PlannedRow]] = {}  # rows may name their own model
    for plan in plans:
        backend_name = options.backend or plan.row.backend or card.backend
        spec = options.model or plan.row.model or card.model
        groups.setdefault((backend_name, spec), []).append(plan)
    cache = CompletionCache(options.cache or default_cache_path())
    completions: dict[str, Completion] = {}
    followups: dict[str, Completion] = {}
    stats = GenerationStats()
    models = []
    try:
        for (backend_name, spec), members in groups.items():
            if not any(p.requests for p in members):
                continue
            generated = _generate(backend_name, spec, members, options, cache)
            completions |= generated.completions
            followups |= generated.followups
            stats = stats.merged(generated.stats)
            models.append(generated.model_info)
    finally:
        cache.close()
    results = [_score_row(p, completions, followups) for p in plans if p.task is not None]
    out_dir = options.output or Path("runs") / f"{card.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    first = models[0] if models else {"spec": card.model, "resolved": None, "backend": card.backend}
    run_info = {
        "kind": "run",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "card": {"name": card.name, "path": card.path, "sha256": card.sha256},
        "model": {k: first[k] for k in ("spec", "resolved", "backend")},
        "model_fingerprint": first.get("fingerprint"),
        "models": models,
        "options": _jsonable(asdict(options)),
        "tasks": [_task_info(p) for p in plans],
        "generation": asdict(stats) | {"tokens_per_second": stats.tokens_per_second},
        "environment": environment.describe(),
    }
    header = {
        "title": f"{card.title}: reproduction report",
        "model": ", ".join(str(m["resolved"]) for m in models) or card.model,
        "backend": ", ".join(sorted({m["backend"] for m in models})) or card.backend,
        "card": card.name,
        "started": started,
        "harness": (run_info["environment"]["git"].get("commit") or "unknown")[:12],
    }
    report = write_run(
        out_dir, run_info, header, results, _report_rows(plans, results), redact=options.redact
    )
    return out_dir, results, report


@dataclass
class Generated:
    completions: dict[str, Completion]
    followups: dict[str, Completion]  # by the first turn's request key
    stats: GenerationStats
    model_info: dict[str, Any]


def _generate(
    backend_name: str, spec: str, plans: list[PlannedRow], options: RunOptions, cache: CompletionCache
) -> Generated:
    """Load one backend and generate every request of `plans` (then their follow-up turns)."""
    model = resolve_model(spec, backend_name)
    backend_cls = registry.backend_class(backend_name)
    backend_options = _backend_options([p.row for p in plans], backend_cls, options.backend_options)
    if not options.show_progress and "progress" in inspect.signature(backend_cls).parameters:
        backend_options.setdefault("progress", False)
    backend = backend_cls(model, **backend_options)
    try:
        requests = [r for p in plans for r in p.requests]
        completions, stats = generate_all(backend, requests, cache, show_progress=options.show_progress)
        wanted = _followup_requests(plans, completions)
        followups: dict[str, Completion] = {}
        if wanted:
            second, second_stats = generate_all(
                backend,
                list(wanted.values()),
                cache,
                show_progress=options.show_progress,
                label="follow-up turns",
            )
            followups = {first: second[r.key] for first, r in wanted.items()}
            stats = stats.merged(second_stats)
        info = {
            "spec": spec,
            "resolved": model,
            "backend": backend_name,
            "rows": [p.row.label for p in plans],
            "fingerprint": backend.fingerprint(),
        }
    finally:
        backend.close()
    return Generated(completions, followups, stats, info)


def _backend_options(rows: list[Row], backend_cls: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The CLI's backend options plus the rows' image token budget (`image_tokens`), which the
    backend applies as `max_soft_tokens` unless the CLI set one."""
    check_backend_options(backend_cls, given)
    budgets = {r.settings["image_tokens"].value for r in rows if "image_tokens" in r.settings}
    accepts = "max_soft_tokens" in inspect.signature(backend_cls).parameters
    if len(budgets) > 1:
        raise ValueError(
            f"rows ask for different image budgets {sorted(budgets)}; give those rows different models"
        )
    if budgets and accepts and "max_soft_tokens" not in given:
        return {**given, "max_soft_tokens": budgets.pop()}
    return dict(given)


def check_backend_options(backend_cls: Any, given: dict[str, Any]) -> None:
    """An option the backend does not take is a one-line error naming the ones it does."""
    parameters = inspect.signature(backend_cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    valid = sorted(name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
    for name in given:
        if name not in parameters:
            backend = getattr(backend_cls, "name", backend_cls.__name__)
            raise ValueError(f"backend '{backend}' has no option '{name}'; its options: {', '.join(valid)}")


def _check_task_options(card: Card, task_options: dict[str, Any]) -> None:
    """Every CLI task option must be taken by at least one of the card's available tasks."""
    tasks = [row.task for row in card.rows if row.task in registry.TASKS]
    accepted = set().union(*(registry.task_options(t) for t in tasks)) if tasks else set()
    for name in task_options:
        if name not in accepted:
            raise ValueError(f"no task of this run takes the option '{name}' (tasks: {', '.join(tasks)})")


def card_for(options: RunOptions) -> Card:
    if not options.tasks:
        return load_card(options.card or "smoke")
    if not options.model:
        raise ValueError("--tasks needs --model (the model to run); or use --card NAME")
    rows = tuple(
        Row(label=name, task=name, variant=options.variant, published=None, metric="accuracy", settings={})
        for name in options.tasks
    )
    return Card(
        name="+".join(options.tasks),
        title=", ".join(options.tasks),
        model=options.model,
        backend=options.backend or "hf",
        rows=rows,
    )


def plan_row(row: Row, options: RunOptions) -> PlannedRow:
    if row.task not in registry.TASKS:
        return PlannedRow(row, None, [], [], None, unavailable=f"task '{row.task}' is not implemented yet")
    # CLI task options go to the tasks that take them (e.g. --extractor to mmlu_pro only)
    accepted = registry.task_options(row.task)
    cli_options = {k: v for k, v in options.task_options.items() if k in accepted}
    if "image_tokens" in row.settings and "max_soft_tokens" in accepted:  # recorded by the task
        cli_options.setdefault("max_soft_tokens", row.settings["image_tokens"].value)
    task = registry.make_task(row.task, options.variant or row.variant, {**row.options, **cli_options})
    source = options.data.get(row.task) or options.data.get("*") or row.data
    samples = task.load(source)
    if options.limit is not None:
        samples = samples[: options.limit]
    sampling = replace(row.sampling(task.default_sampling), **options.sampling)
    repeats = options.repeats or row.repeats
    requests = [r for s in samples for r in task.requests(s, sampling, repeats)]
    return PlannedRow(row, task, samples, requests, sampling, repeats=repeats)


def _followup_requests(plans: list[PlannedRow], completions: dict[str, Completion]) -> dict[str, Request]:
    """Follow-up turns that tasks ask for after the first round, keyed by the first request's key."""
    wanted: dict[str, Request] = {}
    for plan in plans:
        followup = getattr(plan.task, "followup", None)
        if followup is None:
            continue
        samples = {s.id: s for s in plan.samples}
        for request in plan.requests:
            turn = followup(samples[request.sample_id], request, completions[request.key])
            if turn is not None:
                wanted[request.key] = turn
    return wanted


def _score_row(
    plan: PlannedRow, completions: dict[str, Completion], followups: dict[str, Completion]
) -> TaskResult:
    assert plan.task is not None and plan.sampling is not None
    return score_all(
        plan.task,
        plan.samples,
        plan.requests,
        completions,
        label=plan.row.label,
        published=plan.row.published,
        metric=plan.row.metric,
        settings=_settings_as_run(plan.row, plan.sampling, plan.repeats),
        followups=followups,
    )


def _settings_as_run(row: Row, sampling: Sampling, repeats: int) -> dict[str, Any]:
    """Each setting as it ran, with the card's evidence, or where it came from if not the card."""
    as_run: dict[str, Any] = {name: asdict(s) for name, s in row.settings.items()}
    for name, value in {**asdict(sampling), "repeats": repeats}.items():
        card = row.settings.get(name)
        if card is None:
            as_run[name] = {"value": value, "evidence": "task default", "note": ""}
        elif card.value != value and not (name == "stop" and tuple(card.value) == value):
            as_run[name] = {"value": value, "evidence": "overridden", "note": f"card: {card.value}"}
    return as_run


def _report_rows(plans: list[PlannedRow], results: list[TaskResult]) -> list[dict[str, Any]]:
    by_label = {r.label: r for r in results}
    rows = []
    for plan in plans:
        if plan.task is None:
            rows.append(
                {
                    "label": plan.row.label,
                    "task": plan.row.task,
                    "published": plan.row.published,
                    "unavailable": plan.unavailable,
                }
            )
        else:
            rows.append(by_label[plan.row.label].to_json())
    return rows


def _task_info(plan: PlannedRow) -> dict[str, Any]:
    if plan.task is None:
        return {"label": plan.row.label, "task": plan.row.task, "unavailable": plan.unavailable}
    return {
        "label": plan.row.label,
        "task": plan.task.name,
        "version": plan.task.version,
        "config": plan.task.describe(),
        "samples": len(plan.samples),
        "requests": len(plan.requests),
        "sampling": asdict(plan.sampling) if plan.sampling else None,
    }


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


# --- scoring existing generations -------------------------------------------------------------


@dataclass
class ScoreOptions:
    task: str
    predictions: Path
    variant: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    output: Path | None = None
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
        predictions.append(
            Prediction(str(item["id"]), int(item.get("repeat", 0)), response, item.get("answer"))
        )
    if not predictions:
        raise ValueError(f"{path}: no predictions found")
    return predictions


@dataclass
class ScoreOutcome:
    result: TaskResult
    out_dir: Path | None
    report: str
    gold_mismatches: list[tuple[str, Any, Any]]  # (id, answer in predictions, answer in dataset)
    missing_samples: int


def score(options: ScoreOptions) -> ScoreOutcome:
    task = registry.make_task(options.task, options.variant, options.task_options)
    predictions = read_predictions(options.predictions)
    samples = {s.id: s for s in task.load(options.data)}
    unknown = sorted({p.sample_id for p in predictions} - samples.keys())
    if unknown:
        raise ValueError(
            f"{len(unknown)} prediction ids are not in the loaded dataset (first: {', '.join(unknown[:5])}); "
            "check --task/--data"
        )
    seen: set[tuple[str, int]] = set()
    requests: list[Request] = []
    completions: dict[str, Completion] = {}
    mismatches = []
    for pred in predictions:
        if (pred.sample_id, pred.repeat) in seen:
            raise ValueError(f"prediction for id {pred.sample_id} repeat {pred.repeat} appears twice")
        seen.add((pred.sample_id, pred.repeat))
        sample = samples[pred.sample_id]
        request = task.requests(sample, task.default_sampling, pred.repeat + 1)[pred.repeat]
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
    scored = sorted({p.sample_id for p in predictions})
    result = score_all(task, [samples[i] for i in scored], requests, completions, label=options.task)
    digest = hashlib.sha256(options.predictions.read_bytes()).hexdigest()
    header = {
        "title": f"Rescoring {options.predictions.name}",
        "model": f"predictions {options.predictions}",
        "backend": "none (existing generations)",
    }
    rows = [result.to_json()]
    report = render_report(header, rows)
    if options.output is not None:
        run_info = {
            "kind": "score",
            "predictions": {"path": str(options.predictions), "sha256": digest, "lines": len(predictions)},
            "task": {"name": task.name, "version": task.version, "config": task.describe()},
            "gold_mismatches": [{"id": i, "predictions": a, "dataset": b} for i, a, b in mismatches],
            "environment": environment.describe(),
        }
        write_run(options.output, run_info, header, [result], rows, redact=options.redact)
    return ScoreOutcome(result, options.output, report, mismatches, len(samples) - len(scored))
