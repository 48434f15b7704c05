"""Deterministic shards of a run's request set, and the partial records a shard writes.

`evals run --shard I/N` keeps the requests whose shard is I: a request's shard is a hash of its
cache identity (prompt, media hashes, sampling, repeat) modulo N, so it depends on that request and
N only, and identical prompts (one cache key) always share a shard and are generated once. A shard
generates with the usual cache and resume, then writes a shard directory instead of scoring:
run.json (`RunInfo` of kind "shard" with `ShardInfo`: I, N, the request keys it owns, each row's
protocol; the card and model fingerprints as usual) and completions.jsonl (each owned request's
completion and follow-up turn). Scoring needs the whole set (corpus metrics, follow-ups, repeats
grouped by sample), so it happens when `evals merge` (evals.merge) combines the shards.
This module does not generate, score or merge.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from evals.planning import PlannedRow
from evals.records import RowCost, RowProtocol, RunInfo, ShardInfo
from evals.run_dir import jsonl_line, read_jsonl, write_json
from evals.schema import Completion, Request, Task, stable_hash

SHARD_RUN = "run.json"
SHARD_COMPLETIONS = "completions.jsonl"


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1 <= I <= N) as (I, N); anything else is one line naming the form."""
    index_text, sep, count_text = text.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = 0, 0
    if not sep or count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shard {text}: expected I/N with 1 <= I <= N, e.g. --shard 1/4")
    return index, count


def shard_of(request: Request, count: int) -> int:
    """The shard (from 1) that owns `request` among `count`: its cache identity's hash modulo count."""
    return int(stable_hash(request.cache_identity())[:16], 16) % count + 1


def restrict(plan: PlannedRow, shard: tuple[int, int]) -> PlannedRow:
    """The row with only the requests of `shard` (its samples all kept: tasks look them up by id)."""
    index, count = shard
    return replace(plan, requests=[r for r in plan.requests if shard_of(r, count) == index])


def row_protocol(task: Task, sampling: Any, repeats: int) -> RowProtocol:
    """The protocol identity of a planned row (as evals.scoring records it for a scored row)."""
    config = task.describe()
    return RowProtocol(
        task=task.name,
        task_version=task.version,
        variant=task.variant,
        config=json.loads(json.dumps(config, default=str)),
        sampling=asdict(sampling),
        repeats=repeats,
        data_fingerprint=config.get("data_fingerprint"),
    )


def shard_info(plans: Sequence[PlannedRow], shard: tuple[int, int], costs: dict[str, RowCost]) -> ShardInfo:
    protocols = {
        p.row.label: row_protocol(p.task, p.sampling, p.repeats)
        for p in plans
        if p.task is not None and p.sampling is not None
    }
    keys = [r.key for p in plans for r in p.requests]
    return ShardInfo(index=shard[0], count=shard[1], request_keys=keys, protocols=protocols, costs=costs)


def write_shard(
    out_dir: Path,
    run_info: RunInfo,
    plans: Sequence[PlannedRow],
    completions: dict[str, Completion],
    followups: dict[str, Completion],
) -> None:
    """Write a shard directory: completions.jsonl (aside, then renamed), then run.json last, so a
    directory with run.json is a complete shard."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (SHARD_COMPLETIONS + ".tmp")
    with tmp.open("w") as handle:
        for plan in plans:
            for request in plan.requests:
                followup = followups.get(request.key)
                record = {
                    "row": plan.row.label,
                    "key": request.key,
                    "completion": completions[request.key].to_json(),
                    "followup": None if followup is None else followup.to_json(),
                }
                handle.write(jsonl_line(record))
    tmp.replace(out_dir / SHARD_COMPLETIONS)
    write_json(out_dir / SHARD_RUN, run_info.to_json())


@dataclass(frozen=True)
class ShardDir:
    """A shard directory read back: its run record and the completions of the requests it owns."""

    path: Path
    run: RunInfo
    shard: ShardInfo
    completions: dict[str, Completion]
    followups: dict[str, Completion]  # by the first turn's request key


def read_shard(path: Path) -> ShardDir:
    """Read a shard directory; anything that is not one is a one-line error saying what to pass."""
    run_path = path / SHARD_RUN
    if not run_path.is_file():
        raise ValueError(
            f"{path} is not a shard directory (no run.json); pass directories of evals run --shard I/N"
        )
    run = RunInfo.from_json(json.loads(run_path.read_text()), str(run_path))
    if run.shard is None or run.kind != "shard":
        raise ValueError(
            f"{path} is a whole run, not a shard (its run.json has no shard); pass directories of evals run --shard I/N"
        )
    completions: dict[str, Completion] = {}
    followups: dict[str, Completion] = {}
    lines_path = path / SHARD_COMPLETIONS
    if not lines_path.is_file():
        raise ValueError(
            f"{path} has no {SHARD_COMPLETIONS}; run that shard again (its cache keeps what it made)"
        )
    for line in read_jsonl(lines_path):
        completions[line["key"]] = Completion.from_json(line["completion"])
        if line.get("followup") is not None:
            followups[line["key"]] = Completion.from_json(line["followup"])
    return ShardDir(path, run, run.shard, completions, followups)
