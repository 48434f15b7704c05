"""Run a card end to end: plan, generate (with cache and resume), score, write the run directory.

The CLI parses arguments into `RunOptions` (evals.planning) and calls `run`; tests call it the same
way. Inputs are checked before anything slow; each backend loads once and generates its rows one
after the other, so every row records its own wall time, tokens and cache counts. Scoring existing
generations is evals.rescore; the run directory's files are evals.run_dir.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evals import environment, sharding
from evals.cache import CompletionCache, default_cache_path
from evals.cards import Card
from evals.cards import Row as CardRow
from evals.generation import generate_all
from evals.models import resolve_model
from evals.planning import PlannedRow, RunOptions, backend_options, card_for, check_inputs, plan_row
from evals.prompt_store import PromptStore
from evals.records import (
    GenerationStats,
    ModelRecord,
    ReportHeader,
    Results,
    Row,
    RowCost,
    RunInfo,
    SampleRecord,
    ShardInfo,
    TaskInfo,
    UnavailableRow,
)
from evals.run_dir import write_run
from evals.schema import Completion, FollowupTask, Request, ResourceReporter, Sampling
from evals.scoring import TaskResult, sample_records, score_all

__all__ = ["Generated", "RunOptions", "RunOutcome", "finish", "run"]


@dataclass
class RunOutcome:
    out_dir: Path
    results: Results
    run_info: RunInfo
    report: str  # the Markdown report (also in out_dir/report.md)
    task_results: list[TaskResult]


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Keep the run's long-lived objects out of the cyclic garbage collector's full passes.

    A run holds every loaded sample, request, completion and record until it ends, and Python makes
    a full pass over all of them each time they have grown by a quarter: with 12,032 questions that
    is ~0.6 s of a 4 s run spent finding no garbage. Entering, and each `gc.freeze()` at a stage
    boundary inside, moves every object alive then into the collector's permanent generation;
    reference counting still frees them when dropped, objects made later (a backend, its batches)
    are collected as usual, and leaving gives everything back to the collector (`gc.unfreeze`).
    Nesting is harmless: the inner exit hands back early, and the collector merely works more. It
    decorates `run` and `finish` (each call enters it afresh)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@long_lived_objects()
def run(options: RunOptions, *, cache: CompletionCache | None = None) -> RunOutcome:
    """Generate what is missing, score, and write the run directory. With `options.shard` only that
    shard's requests are generated and a shard directory is written instead (evals.sharding);
    `cache` replaces the one `options.cache` names (the Ray executor's shard tasks pass theirs)."""
    started_clock = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    card = card_for(options)
    check_inputs(card, options)
    plans = [plan_row(row, options) for row in card.rows]
    if options.shard is not None:
        plans = [sharding.restrict(plan, options.shard) for plan in plans]
    gc.freeze()  # the planned samples and requests live until the run ends (see long_lived_objects)
    groups: dict[tuple[str, str], list[PlannedRow]] = {}  # rows may name their own model
    for plan in plans:
        backend_name = options.backend or plan.row.backend or card.backend
        spec = options.model or plan.row.model or card.model
        groups.setdefault((backend_name, spec), []).append(plan)
    cache = cache or CompletionCache(options.cache or default_cache_path())
    generated = Generated()
    try:
        for (backend_name, spec), members in groups.items():
            if any(p.requests for p in members):
                _generate(backend_name, spec, members, options, cache, generated)
    finally:
        cache.close()
    if options.shard is not None:
        return _write_shard(card, options, plans, generated, started, time.perf_counter() - started_clock)
    return finish(card, options, plans, generated, started, started_clock)


@long_lived_objects()  # the completions (generated here or merged) live until the end
def finish(
    card: Card,
    options: RunOptions,
    plans: list[PlannedRow],
    generated: Generated,
    started: str,
    started_clock: float,
) -> RunOutcome:
    """Score every planned row with the completions generated (here, or by the shards that
    evals.merge combines) and write the run directory."""
    task_results = [
        _score_row(p, generated.completions, generated.followups) for p in plans if p.task is not None
    ]
    prompts = PromptStore()
    samples: list[SampleRecord] = [s for r in task_results for s in sample_records(r, prompts)]
    rows = _result_rows(plans, task_results, generated.costs)
    run_info = _run_info("run", card, options, plans, generated, started, time.perf_counter() - started_clock)
    header = ReportHeader(
        title=f"{card.title}: reproduction report",
        model=", ".join(str(m.resolved) for m in generated.models) or card.model,
        backend=", ".join(sorted({m.backend for m in generated.models})) or card.backend,
        card=card.name,
        started=started,
        harness=(run_info.environment.get("git", {}).get("commit") or "unknown")[:12],
    )
    results = Results(header, rows)
    out_dir = options.output or Path("runs") / f"{card.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    report = write_run(out_dir, run_info, results, samples, prompts, redact=options.redact)
    return RunOutcome(out_dir, results, run_info, report, task_results)


def _run_info(
    kind: str,
    card: Card,
    options: RunOptions,
    plans: list[PlannedRow],
    generated: Generated,
    started: str,
    wall: float,
    shard: ShardInfo | None = None,
) -> RunInfo:
    """run.json's record of a whole run or of one shard."""
    return RunInfo(
        kind=kind,
        started=started,
        finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
        environment=environment.describe(),
        card={"name": card.name, "path": card.path, "sha256": card.sha256},
        models=generated.models,
        options=_recorded_options(options),
        tasks=[_task_info(p) for p in plans],
        generation=generated.stats,
        wall_seconds=wall,
        shard=shard,
    )


def _write_shard(
    card: Card, options: RunOptions, plans: list[PlannedRow], generated: Generated, started: str, wall: float
) -> RunOutcome:
    """A shard's partial records (evals.sharding), not scored: evals.merge scores the whole set."""
    assert options.shard is not None
    index, count = options.shard
    shard = sharding.shard_info(plans, options.shard, generated.costs)
    run_info = _run_info("shard", card, options, plans, generated, started, wall, shard)
    default = Path("runs") / f"{card.name}-{time.strftime('%Y%m%d-%H%M%S')}-shard-{index}-of-{count}"
    out_dir = options.output or default
    sharding.write_shard(out_dir, run_info, plans, generated.completions, generated.followups)
    header = ReportHeader(title=f"{card.title}: shard {index}/{count}", card=card.name, started=started)
    return RunOutcome(out_dir, Results(header, []), run_info, "", [])


class Generated:
    """What generation produced across backends: completions, follow-up turns, costs, models."""

    def __init__(self) -> None:
        self.completions: dict[str, Completion] = {}
        self.followups: dict[str, Completion] = {}  # by the first turn's request key
        self.costs: dict[str, RowCost] = {}  # by row label
        self.models: list[ModelRecord] = []
        self.stats = GenerationStats()


def _generate(
    backend_name: str,
    spec: str,
    plans: list[PlannedRow],
    options: RunOptions,
    cache: CompletionCache,
    out: Generated,
) -> None:
    """Load one backend and generate every request of `plans`, row by row (then follow-up turns)."""
    resolved = resolve_model(spec, backend_name)
    backend_cls, backend_opts = backend_options(
        backend_name, options.backend_options, [p.row for p in plans], show_progress=options.show_progress
    )
    loading = time.perf_counter()
    backend = backend_cls(resolved, backend_opts)
    load_seconds = time.perf_counter() - loading
    try:
        for plan in plans:
            label = f"{plan.row.label} · {backend_name}:{Path(spec).name or spec}"
            completions, stats = generate_all(
                backend,
                plan.requests,
                cache,
                show_progress=options.show_progress,
                label=label,
                fresh=options.fresh,
            )
            out.completions |= completions
            turns = _followup_requests(plan, completions)
            if turns:
                second, second_stats = generate_all(
                    backend,
                    list(turns.values()),
                    cache,
                    show_progress=options.show_progress,
                    label=f"{plan.row.label} · follow-up turns",
                    fresh=options.fresh,
                )
                out.followups |= {first: second[r.key] for first, r in turns.items()}
                stats = stats.merged(second_stats)
            out.stats = out.stats.merged(stats)
            out.costs[plan.row.label] = RowCost(model=spec, generation=stats)
        fingerprint = backend.fingerprint()
        memory = backend.peak_memory() if isinstance(backend, ResourceReporter) else {}
        out.models.append(
            ModelRecord(
                spec=spec,
                resolved=resolved,
                backend=backend_name,
                rows=[p.row.label for p in plans],
                fingerprint=_jsonable(fingerprint),
                quantization=_jsonable(fingerprint.get("quantization")),
                size_bytes=weights_size(resolved),
                load_seconds=load_seconds,
                peak_rss_bytes=_own_peak_rss(),
                server_peak_rss_bytes=memory.get("rss"),
                peak_gpu_bytes=memory.get("gpu") or _torch_peak_gpu(),
            )
        )
    finally:
        backend.close()


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def weights_size(resolved: str) -> int | None:
    """Bytes of model weights on disk (a file, or the weight files of a directory); None for a hub
    id or a server's model name."""
    path = Path(resolved).expanduser()
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
        return sum(p.stat().st_size for p in files) or None
    return None


def _own_peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _torch_peak_gpu() -> int | None:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return int(torch.cuda.max_memory_allocated())


def _followup_requests(plan: PlannedRow, completions: dict[str, Completion]) -> dict[str, Request]:
    """Follow-up turns the row's task asks for after the first round, by the first request's key."""
    if not isinstance(plan.task, FollowupTask):
        return {}
    samples = {s.id: s for s in plan.samples}
    wanted: dict[str, Request] = {}
    for request in plan.requests:
        turn = plan.task.followup(samples[request.sample_id], request, completions[request.key])
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


def _settings_as_run(row: CardRow, sampling: Sampling, repeats: int) -> dict[str, dict[str, Any]]:
    """Each setting as it ran, with the card's evidence, or where it came from if not the card."""
    as_run: dict[str, dict[str, Any]] = {name: asdict(s) for name, s in row.settings.items()}
    for name, value in {**asdict(sampling), "repeats": repeats}.items():
        card = row.settings.get(name)
        if card is None:
            as_run[name] = {"value": value, "evidence": "task default", "note": ""}
        elif card.value != value and not (name == "stop" and tuple(card.value) == value):
            as_run[name] = {"value": value, "evidence": "overridden", "note": f"card: {card.value}"}
    return as_run


def _result_rows(plans: list[PlannedRow], results: list[TaskResult], costs: dict[str, RowCost]) -> list[Row]:
    by_label = {r.label: r for r in results}
    rows: list[Row] = []
    for plan in plans:
        if plan.task is None or plan.sampling is None:
            reason = plan.unavailable or "not available"
            rows.append(UnavailableRow(plan.row.label, plan.row.task, plan.row.published, reason))
            continue
        result = by_label[plan.row.label]
        protocol = result.protocol(plan.sampling, plan.repeats)
        rows.append(result.to_row(protocol=protocol, cost=costs.get(plan.row.label)))
    return rows


def _task_info(plan: PlannedRow) -> TaskInfo:
    if plan.task is None:
        return TaskInfo(label=plan.row.label, task=plan.row.task, unavailable=plan.unavailable)
    return TaskInfo(
        label=plan.row.label,
        task=plan.task.name,
        version=plan.task.version,
        config=_jsonable(plan.task.describe()),
        samples=len(plan.samples),
        requests=len(plan.requests),
        sampling=asdict(plan.sampling) if plan.sampling else None,
    )


def _recorded_options(options: RunOptions) -> dict[str, Any]:
    """The run options for run.json, with credentials among the backend options replaced."""
    recorded: dict[str, Any] = _jsonable(asdict(options))
    recorded["backend_options"] = {
        name: "<redacted>" if environment.is_secret(name) else value
        for name, value in recorded["backend_options"].items()
    }
    return recorded


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))
