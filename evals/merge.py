"""Combine the shards of one run (`evals run --shard I/N`) into one run directory.

The shards are checked first, each problem one line: every shard 1..N given once, of one split
(the same N), one card (file hash), one model per row (fingerprint, without where its files lie),
one protocol per row, and the same options that shape the request set. The run is then planned
again from the shards' recorded options (this loads the data, not the model), every planned request
must be owned by the shard its hash names, and the whole set is scored and written by the same code
as an unsharded run (evals.pipeline.finish). So results.json, samples.jsonl, prompts.jsonl and the
reports equal an unsharded run's except for what measures this run rather than the model: start
time, wall time, generation seconds (and the tokens/s made of them), per-completion seconds, peak
memory and load time, and the recorded output path. Generation counts are the shards' sums.
"""

from __future__ import annotations

import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from evals.cards import Card
from evals.pipeline import Generated, RunOutcome, finish
from evals.planning import PlannedRow, RunOptions, card_for, plan_row
from evals.records import GenerationStats, ModelRecord, RowCost
from evals.sharding import ShardDir, read_shard, shard_of

# recorded options that decide the request set and its protocol (paths, caches, progress, backend
# settings such as batch size or GPUs may differ between machines; the fingerprints cover the model)
SHAPING_OPTIONS = ("card", "tasks", "variant", "task_options", "limit", "repeats", "sampling", "backend")


def merge(
    shard_dirs: list[Path],
    out: Path | None = None,
    *,
    redact: bool | None = None,
    started_clock: float | None = None,
) -> RunOutcome:
    """Check the shards belong together, then score the whole set and write the run directory.
    The run's wall time counts from `started_clock` (a driver's start), else from the slowest
    shard's start (its wall time before this merge)."""
    merging = time.perf_counter()
    shards = check_complete([read_shard(path) for path in shard_dirs])
    check_consistent(shards)
    options = options_from_record(shards[0].run.options, out, redact)
    card = card_for(options)
    recorded_sha = (shards[0].run.card or {}).get("sha256")
    if recorded_sha != card.sha256:
        raise ValueError(
            f"card '{card.name}' has changed since the shards ran ({card.path}); "
            "merge with the card file the shards used, or run the shards again"
        )
    plans = [plan_row(row, options) for row in card.rows]
    check_ownership(plans, shards)
    generated = combine(card, plans, shards)
    started = min(s.run.started for s in shards)
    if started_clock is None:
        started_clock = merging - max(s.run.wall_seconds for s in shards)
    return finish(card, options, plans, generated, started, started_clock)


def check_complete(shards: list[ShardDir]) -> list[ShardDir]:
    """The shards of one split, each once, none missing; returned in shard order."""
    first = shards[0]
    by_index: dict[int, ShardDir] = {}
    for shard in shards:
        if shard.shard.count != first.shard.count:
            raise ValueError(
                f"shards of different splits: {first.path} is {first.shard.index}/{first.shard.count}, "
                f"{shard.path} is {shard.shard.index}/{shard.shard.count}; merge the shards of one split"
            )
        seen = by_index.get(shard.shard.index)
        if seen is not None:
            raise ValueError(
                f"shard {shard.shard.index}/{shard.shard.count} given twice ({seen.path} and {shard.path}); "
                "pass each shard once"
            )
        by_index[shard.shard.index] = shard
    count = first.shard.count
    missing = [i for i in range(1, count + 1) if i not in by_index]
    if missing:
        given = ", ".join(f"{i}/{count}" for i in sorted(by_index))
        absent = ", ".join(f"{i}/{count}" for i in missing)
        raise ValueError(f"shard {absent} missing (given: {given}); pass all {count} shards of the run")
    return [by_index[i] for i in range(1, count + 1)]


def check_consistent(shards: list[ShardDir]) -> None:
    """One card, one model per row, one protocol per row, the same request-shaping options."""
    first = shards[0]
    for shard in shards[1:]:
        mine, theirs = first.run.card or {}, shard.run.card or {}
        if mine.get("sha256") != theirs.get("sha256"):
            raise ValueError(
                f"shards of different cards: {first.path} ran '{mine.get('name')}' "
                f"(sha256 {str(mine.get('sha256'))[:12]}), {shard.path} ran '{theirs.get('name')}' "
                f"(sha256 {str(theirs.get('sha256'))[:12]}); merge the shards of one card"
            )
        for name in SHAPING_OPTIONS:
            a, b = first.run.options.get(name), shard.run.options.get(name)
            if a != b:
                raise ValueError(
                    f"shards run with different options: {name} is {a!r} in {first.path}, {b!r} in "
                    f"{shard.path}; merge the shards of one run"
                )
    _check_models(shards)
    _check_protocols(shards)


def _model_identity(model: ModelRecord) -> dict[str, Any]:
    return {k: v for k, v in model.fingerprint.items() if k != "location"}


def _check_models(shards: list[ShardDir]) -> None:
    by_row: dict[str, tuple[ShardDir, ModelRecord]] = {}
    for shard in shards:
        for model in shard.run.models:
            for label in model.rows:
                seen = by_row.setdefault(label, (shard, model))
                theirs = _model_identity(seen[1])
                mine = _model_identity(model)
                if mine != theirs:
                    key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
                    raise ValueError(
                        f"shards of different models for row '{label}': {key} is {theirs.get(key)!r} in "
                        f"{seen[0].path}, {mine.get(key)!r} in {shard.path}; merge the shards of one model"
                    )


def _check_protocols(shards: list[ShardDir]) -> None:
    first = shards[0]
    for shard in shards[1:]:
        labels = set(first.shard.protocols) | set(shard.shard.protocols)
        for label in sorted(labels):
            a, b = first.shard.protocols.get(label), shard.shard.protocols.get(label)
            if a is None or b is None:
                where = shard.path if b is None else first.path
                raise ValueError(f"row '{label}' is missing from {where}; merge the shards of one run")
            differences = a.differences(b)
            if differences:
                raise ValueError(
                    f"shards of different protocols for row '{label}': {differences[0]} "
                    f"({first.path} vs {shard.path}); merge the shards of one protocol"
                )


def check_ownership(plans: list[PlannedRow], shards: list[ShardDir]) -> None:
    """Every planned request is in the shard that owns it, and no shard holds anything else."""
    count = len(shards)
    owned = [set(s.shard.request_keys) for s in shards]
    planned = 0
    for plan in plans:
        for request in plan.requests:
            planned += 1
            index = shard_of(request, count)
            shard = shards[index - 1]
            if request.key not in owned[index - 1] or request.key not in shard.completions:
                raise ValueError(
                    f"shard {index}/{count} ({shard.path}) lacks request '{request.key}' of this run's plan; "
                    "run that shard again with the same data, or merge the shards of one run"
                )
    extra = sum(len(keys) for keys in owned) - planned
    if extra:
        raise ValueError(
            f"the shards hold {extra} request(s) that this run's plan lacks (different data?); "
            "merge with the data the shards used"
        )


def combine(card: Card, plans: list[PlannedRow], shards: list[ShardDir]) -> Generated:
    """The shards' completions, costs per row and models, summed or merged as one run's."""
    generated = Generated()
    for shard in shards:
        generated.completions |= shard.completions
        generated.followups |= shard.followups
        generated.stats = generated.stats.merged(shard.run.generation)
    row_order = {p.row.label: i for i, p in enumerate(plans)}
    models: dict[str, ModelRecord] = {}
    for shard in shards:
        for model in shard.run.models:
            seen = models.get(model.spec)
            models[model.spec] = model if seen is None else _merged_model(seen, model)
    generated.models = sorted(models.values(), key=lambda m: min(row_order.get(r, 0) for r in m.rows))
    by_row_model = {label: m.spec for m in generated.models for label in m.rows}
    for plan in plans:
        label = plan.row.label
        stats = GenerationStats()
        present = False
        for shard in shards:
            cost = shard.shard.costs.get(label)
            if cost is not None:
                stats, present = stats.merged(cost.generation), True
        if present:
            generated.costs[label] = RowCost(model=by_row_model.get(label, card.model), generation=stats)
    return generated


def _merged_model(a: ModelRecord, b: ModelRecord) -> ModelRecord:
    """One model as it ran on several shards: the largest footprint and load time of any."""

    def most(x: float | int | None, y: float | int | None) -> Any:
        return max((v for v in (x, y) if v is not None), default=None)

    return replace(
        a,
        load_seconds=most(a.load_seconds, b.load_seconds),
        peak_rss_bytes=most(a.peak_rss_bytes, b.peak_rss_bytes),
        server_peak_rss_bytes=most(a.server_peak_rss_bytes, b.server_peak_rss_bytes),
        peak_gpu_bytes=most(a.peak_gpu_bytes, b.peak_gpu_bytes),
    )


def options_from_record(recorded: dict[str, Any], out: Path | None, redact: bool | None) -> RunOptions:
    """The run options as the shards recorded them (JSON), as one whole run writing to `out`."""
    values: dict[str, Any] = {}
    for spec in fields(RunOptions):
        if spec.name not in recorded:
            continue
        value = recorded[spec.name]
        if spec.name in ("output", "cache"):
            value = None if value is None else Path(value)
        values[spec.name] = value
    values.update(shard=None, output=out, redact=redact if redact is not None else values.get("redact"))
    return RunOptions(**values)
