"""Turn run options into a plan: the card (or the rows of it asked for), each row's task, samples
and requests, and each backend's validated options.

Every input named on the command line (card, tasks, task and backend options, model paths, data
paths) is checked here, before any data or model is loaded, so a typo is one line at once rather
than an error after minutes of loading. This module loads data (through tasks) but no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evals import registry
from evals.cards import Card, Row, load_card
from evals.models import BUILTIN_MODELS, resolve_model
from evals.schema import BackendClass, BackendOptions, Request, Sample, Sampling, Task, build_options

SMOKE_CARD = "smoke"


@dataclass
class RunOptions:
    card: str | None = None  # None: the smoke card, unless `tasks` and `model` name an ad-hoc run
    tasks: list[str] = field(default_factory=list)  # with a card: its rows to run; without: ad-hoc rows
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
    fresh: bool = False  # regenerate everything; new completions replace cached ones
    show_progress: bool = True
    redact: bool | None = None  # question text in report.html: None = as each task asks
    model_paths: dict[str, str] = field(default_factory=dict)  # model spec -> local copy (run --offline)
    shard: tuple[int, int] | None = None  # (index from 1, count): only this shard's requests (evals.sharding)


@dataclass
class PlannedRow:
    row: Row
    task: Task | None
    samples: list[Sample]
    requests: list[Request]
    sampling: Sampling | None
    unavailable: str | None = None
    repeats: int = 1


def card_for(options: RunOptions) -> Card:
    """The card to run: a named card (only the rows of `options.tasks` when given), or an ad-hoc
    card of `options.tasks` on `options.model`."""
    if options.card is None and not options.tasks:
        return load_card(SMOKE_CARD)
    if options.card is not None:
        card = load_card(options.card)
        return local_models(select_rows(card, options.tasks) if options.tasks else card, options.model_paths)
    if not options.model:
        raise ValueError("--tasks without --card needs --model (the model to run); or use --card NAME")
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


def local_models(card: Card, paths: dict[str, str]) -> Card:
    """The card with each model spec that `paths` maps (a hub id) replaced by its local copy."""
    if not paths:
        return card
    rows = tuple(
        replace(row, model=paths.get(row.model, row.model)) if row.model else row for row in card.rows
    )
    return replace(card, model=paths.get(card.model, card.model), rows=rows)


def select_rows(card: Card, wanted: list[str]) -> Card:
    """The card with only the rows whose task or label is in `wanted`, in the card's order."""
    names = {row.task for row in card.rows} | {row.label for row in card.rows}
    unknown = [name for name in wanted if name not in names]
    if unknown:
        choices = ", ".join(dict.fromkeys(row.task for row in card.rows))
        raise ValueError(f"card '{card.name}' has no row for '{unknown[0]}'; its rows' tasks: {choices}")
    rows = tuple(row for row in card.rows if row.task in wanted or row.label in wanted)
    return replace(card, rows=rows)


def check_inputs(card: Card, options: RunOptions) -> None:
    """Every input named on the command line, checked before anything slow happens."""
    check_task_inputs(card, options)
    for row in card.rows:
        backend_name = options.backend or row.backend or card.backend
        backend_options(backend_name, options.backend_options, card.rows, show_progress=True, resolve=False)
        if backend_name != "openai":  # a server's model name is not a path
            check_model_spec(options.model or row.model or card.model)


def check_task_inputs(card: Card, options: RunOptions) -> None:
    """Task options, variant, data paths, cache and output of a run (no backend or model)."""
    check_task_options(card, options.task_options)
    if options.variant is not None:
        for row in card.rows:
            if row.task in registry.TASKS:
                registry.make_task(row.task, options.variant, {})  # an unknown variant: one line
    for task, source in options.data.items():
        if source != "builtin" and not _source_exists(source):
            where = "--data" if task == "*" else f"--data {task}="
            raise ValueError(f"{where}{source}: no such file, directory or glob; pass local data files")
    if options.cache is not None and options.cache.is_dir():
        raise ValueError(
            f"--cache {options.cache} is a directory; pass the SQLite file to use (e.g. {options.cache}/completions.sqlite)"
        )
    if options.output is not None and options.output.exists() and not options.output.is_dir():
        raise ValueError(f"--output {options.output} is a file; pass a directory for the run")


def check_model_spec(spec: str) -> None:
    """A model that names a local path must exist; a built-in must be known. Hub ids pass."""
    if spec.startswith("builtin:"):
        if spec.removeprefix("builtin:") not in BUILTIN_MODELS:
            raise ValueError(
                f"unknown built-in model '{spec}'; choose one of: {', '.join('builtin:' + b for b in BUILTIN_MODELS)}"
            )
        return
    if spec.startswith("pkg:"):
        resolve_model(spec)  # cheap: finds the file inside the installed package
        return
    looks_local = spec.startswith(("/", "./", "../", "~")) or spec.endswith(".gguf") or spec.count("/") > 1
    if looks_local and not Path(spec).expanduser().exists():
        raise ValueError(
            f"model '{spec}' is not a local file or directory; pass an existing path, a .gguf file, "
            "a hub id such as org/name, or pkg:PACKAGE/FILE"
        )


def _source_exists(source: str) -> bool:
    path = Path(source).expanduser()
    if path.exists():
        return True
    return any(Path().glob(source)) if not path.is_absolute() else any(Path("/").glob(source.lstrip("/")))


def check_task_options(card: Card, task_options: dict[str, Any]) -> None:
    """Every CLI task option must be taken by at least one of the card's available tasks."""
    tasks = [row.task for row in card.rows if row.task in registry.TASKS]
    accepted = set().union(*(registry.task_options(t) for t in tasks)) if tasks else set()
    for name in task_options:
        if name not in accepted:
            raise ValueError(f"no task of this run takes the option '{name}' (tasks: {', '.join(tasks)})")


def backend_options(
    backend_name: str,
    given: dict[str, Any],
    rows: tuple[Row, ...] | list[Row],
    *,
    show_progress: bool,
    resolve: bool = True,
) -> tuple[BackendClass, BackendOptions]:
    """The backend class and its validated options: the CLI's, the rows' image token budget (where
    the backend applies one), progress, and model specs inside options (pkg:, builtin:) resolved."""
    backend_cls: BackendClass = registry.backend_class(backend_name)
    values = dict(given)
    budgets = {r.settings["image_tokens"].value for r in rows if "image_tokens" in r.settings}
    if len(budgets) > 1:
        raise ValueError(
            f"rows ask for different image budgets {sorted(budgets)}; give those rows different models"
        )
    if budgets and backend_cls.takes_image_budget:
        values.setdefault("max_soft_tokens", budgets.pop())
    if not show_progress:
        values.setdefault("progress", False)
    options = build_options(backend_cls.options_type, values, owner=f"backend '{backend_name}'")
    if not resolve:
        return backend_cls, options
    resolved: dict[str, Any] = {
        name: resolve_model(value, backend_name)
        for name, value in vars(options).items()
        if isinstance(value, str) and value.startswith(("pkg:", "builtin:"))
    }
    return backend_cls, replace(options, **resolved) if resolved else options


def plan_row(row: Row, options: RunOptions) -> PlannedRow:
    if row.task not in registry.TASKS:
        return PlannedRow(row, None, [], [], None, unavailable=f"task '{row.task}' is not implemented yet")
    # CLI task options go to the tasks that take them (e.g. extractor to mmlu_pro only)
    accepted = registry.task_options(row.task)
    cli_options = {k: v for k, v in options.task_options.items() if k in accepted}
    if "image_tokens" in row.settings and "max_soft_tokens" in accepted:  # recorded by the task
        cli_options.setdefault("max_soft_tokens", row.settings["image_tokens"].value)
    task: Task = registry.make_task(row.task, options.variant or row.variant, {**row.options, **cli_options})
    source = options.data.get(row.task) or options.data.get("*") or row.data
    samples = task.load(source, limit=options.limit)
    if options.limit is not None:
        samples = samples[: options.limit]
    sampling = replace(row.sampling(task.default_sampling), **options.sampling)
    repeats = options.repeats or row.repeats
    requests = [r for s in samples for r in task.requests(s, sampling, repeats)]
    return PlannedRow(row, task, samples, requests, sampling, repeats=repeats)
