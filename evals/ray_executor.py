"""Run a card's shards as Ray tasks (`evals run --executor ray`), then merge them.

The driver checks the inputs, starts a local Ray (or connects to `--ray-address`), plans the run to
know each shard's size, and launches N shard tasks with the GPUs they need (`gpus_per_shard`) or one
CPU each. A shard task runs the usual pipeline on its shard (evals.sharding) with a `SinkCache`:
its own SQLite cache in the shard directory, in front of the driver's cache, which a small actor on
the driver's node holds (`CompletionSink`). Every new completion goes to the driver's cache first,
then to the shard's own, the moment it is generated, so the driver's cache only ever grows and a
shard's own cache never holds what the driver's lacks. A task whose worker dies is retried by Ray
(`max_retries`); the new attempt finds what the killed one made (in its own cache, or in the
driver's when Ray places it on another node) and generates only the rest. The driver shows each
shard's progress, writes the shard records each task returns under OUT/shards/I-of-N, and merges
them into OUT (evals.merge). Ray is imported only inside the functions here.

`EVALS_TEST_KILL_SHARD=I:K` (tests only; inert when unset) makes shard I's worker SIGKILL itself
after its K-th new completion, on its first attempt only (a marker file in the shard directory).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evals.cache import CompletionCache, default_cache_path
from evals.merge import merge
from evals.pipeline import RunOutcome
from evals.planning import RunOptions, card_for, check_inputs, plan_row
from evals.schema import Completion, stable_hash
from evals.sharding import SHARD_COMPLETIONS, SHARD_RUN, shard_of

KILL_HOOK_ENV = "EVALS_TEST_KILL_SHARD"
KILL_MARKER = ".killed-once"
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a local cluster moves completions, not tensors
MAX_RETRIES = 3


class ShardFailed(RuntimeError):
    """A shard task failed on every attempt Ray made."""


@dataclass(frozen=True)
class ShardReport:
    """One shard as the driver saw it: attempts made, completions it stored, and how many of those
    it stored for a cache key it had stored before (0 unless something was generated twice)."""

    index: int
    count: int
    attempts: int
    stored: int
    stored_again: int
    directory: Path


@dataclass(frozen=True)
class RayOutcome:
    run: RunOutcome  # the merged run
    shards: list[ShardReport]


def gpus_per_shard(backend: str, backend_options: dict[str, Any], cluster_gpus: float) -> int:
    """GPUs a shard asks Ray for: vLLM's tensor x data parallel size; one for HF and llama.cpp when
    the cluster has GPUs; none for a remote server (openai) or a CPU-only cluster."""
    if backend == "openai" or cluster_gpus <= 0:
        return 0
    if backend == "vllm":
        tensor = int(backend_options.get("tensor_parallel_size", 1))
        data = int(backend_options.get("data_parallel_size", 1))
        return max(1, tensor * data)
    return 1


class CompletionSink:
    """The driver's cache, held by an actor on the driver's node; shards store and look up through
    it and it counts what each shard stored (progress, and proof that nothing was stored twice)."""

    def __init__(self, cache_path: str) -> None:
        self.cache = CompletionCache(cache_path)
        self.attempts: Counter[int] = Counter()
        self.answered: dict[int, set[str]] = {}
        self.stored: dict[int, Counter[str]] = {}

    def started(self, shard: int) -> int:
        self.attempts[shard] += 1
        return self.attempts[shard]

    def lookup(
        self, shard: int, keys: list[str], answered_elsewhere: list[str], this_run_only: bool = False
    ) -> dict[str, Any]:
        """What the driver's cache holds of `keys` (`this_run_only`: only what a shard of this run
        stored, for --fresh)."""
        found = self.cache.get_many(keys)
        if this_run_only:
            found = {k: c for k, c in found.items() if any(k in stored for stored in self.stored.values())}
        self.answered.setdefault(shard, set()).update(found, answered_elsewhere)
        return {key: completion.to_json() for key, completion in found.items()}

    def put(
        self, shard: int, key: str, model_hash: str, completion: dict[str, Any], replace: bool
    ) -> dict[str, Any]:
        """Store a shard's new completion; return what the driver's cache holds (first writer wins)."""
        held = self.cache.put(key, model_hash, Completion.from_json(completion), replace_existing=replace)
        self.answered.setdefault(shard, set()).add(key)
        self.stored.setdefault(shard, Counter())[key] += 1
        return held.to_json()

    def status(self) -> dict[int, tuple[int, int, int, int]]:
        """Per shard: attempts, cache keys answered, completions stored, stored again."""
        shards = set(self.attempts) | set(self.stored)
        return {
            s: (
                self.attempts[s],
                len(self.answered.get(s, ())),
                sum(self.stored.get(s, Counter()).values()),
                sum(n - 1 for n in self.stored.get(s, Counter()).values()),
            )
            for s in shards
        }


class SinkCache(CompletionCache):
    """A shard's own cache in front of the driver's (through `CompletionSink`): lookups try the own
    cache, then the driver's; a new completion is stored in the driver's cache, then the own.

    `fresh` (a --fresh run): only completions stored by this run's shards count as cached, and new
    ones replace what the caches held, so a retried attempt keeps what the killed one made."""

    def __init__(
        self, path: Path, sink: Any, shard: int, *, fresh: bool = False, kill_after: int | None = None
    ) -> None:
        super().__init__(path)
        self.sink = sink
        self.shard = shard
        self.fresh = fresh
        self.kill_after = kill_after
        self.new = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Completion]:
        import ray

        keys = list(keys)
        found = {} if self.fresh else super().get_many(keys)
        missing = [k for k in keys if k not in found]
        remote = ray.get(self.sink.lookup.remote(self.shard, missing, list(found), self.fresh))
        return found | {key: Completion.from_json(value) for key, value in remote.items()}

    def put(
        self, key: str, model_hash: str, completion: Completion, *, replace_existing: bool = False
    ) -> Completion:
        import ray

        replace_existing = replace_existing or self.fresh
        sent = self.sink.put.remote(self.shard, key, model_hash, completion.to_json(), replace_existing)
        held = Completion.from_json(ray.get(sent))
        held = super().put(key, model_hash, held, replace_existing=replace_existing)
        self.new += 1
        if self.kill_after is not None and self.new >= self.kill_after:
            marker = self.path.parent / KILL_MARKER
            if not marker.exists():
                marker.write_text(f"killed after {self.new} completions\n")
                os.kill(os.getpid(), signal.SIGKILL)
        return held


def shard_task(
    options: RunOptions, index: int, count: int, shard_dir: str, sink: Any, kill_after: int | None
) -> dict[str, str]:
    """Body of one shard task: run the shard into `shard_dir`; return its records' text."""
    import ray

    from evals.pipeline import run

    ray.get(sink.started.remote(index))
    out = Path(shard_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = SinkCache(out / "cache.sqlite", sink, index, fresh=options.fresh, kill_after=kill_after)
    # --fresh is the cache's job here (see SinkCache), so that a retried attempt resumes
    shard_options = replace(options, shard=(index, count), output=out, show_progress=False, fresh=False)
    run(shard_options, cache=cache)
    return {name: (out / name).read_text() for name in (SHARD_RUN, SHARD_COMPLETIONS)}


def run_on_ray(
    options: RunOptions,
    *,
    shards: int | None = None,
    address: str | None = None,
    max_retries: int = MAX_RETRIES,
    poll_seconds: float = 0.5,
) -> RayOutcome:
    """Run every shard on Ray, stream completions into the driver's cache, merge into one run."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    started_clock = time.perf_counter()
    card = card_for(options)
    check_inputs(card, options)  # one line before Ray starts or any data loads
    plans = [plan_row(row, options) for row in card.rows]
    own_ray = not ray.is_initialized()
    if own_ray:
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    try:
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        backends = {options.backend or p.row.backend or card.backend for p in plans}
        gpus = max(gpus_per_shard(b, options.backend_options, resources.get("GPU", 0)) for b in backends)
        count = shards or (int(resources.get("GPU", 0)) // gpus if gpus else int(resources.get("CPU", 1)))
        if count < 1:
            raise ValueError(f"a shard needs {gpus} GPUs and the cluster has {resources.get('GPU', 0)}")
        out_dir = options.output or Path("runs") / f"{card.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        totals: Counter[int] = Counter(
            shard_of(r, count)
            for r in {stable_hash(r.cache_identity()): r for p in plans for r in p.requests}.values()
        )
        cache_path = str(Path(options.cache or default_cache_path()).resolve())
        here = ray.get_runtime_context().get_node_id()
        placement = NodeAffinitySchedulingStrategy(here, soft=False)
        sink = (
            ray.remote(num_cpus=0)(CompletionSink).options(scheduling_strategy=placement).remote(cache_path)
        )
        kill = _kill_hook()
        task = ray.remote(shard_task).options(num_cpus=1, num_gpus=gpus, max_retries=max_retries)
        dirs = {i: (out_dir / "shards" / f"{i}-of-{count}").resolve() for i in range(1, count + 1)}
        refs = {
            task.remote(options, i, count, str(dirs[i]), sink, kill[1] if kill and kill[0] == i else None): i
            for i in range(1, count + 1)
        }
        status = _wait_all(
            ray, refs, sink, dirs, totals, count, max_retries, options.show_progress, poll_seconds
        )
    finally:
        if own_ray:
            ray.shutdown()
    outcome = merge(
        [dirs[i] for i in sorted(dirs)], out_dir, redact=options.redact, started_clock=started_clock
    )
    reports = []
    for i in sorted(dirs):
        attempts, _, stored, again = status.get(i, (0, 0, 0, 0))
        reports.append(ShardReport(i, count, attempts, stored, again, dirs[i]))
    return RayOutcome(outcome, reports)


def _wait_all(
    ray: Any,
    refs: dict[Any, int],
    sink: Any,
    dirs: dict[int, Path],
    totals: Counter[int],
    count: int,
    max_retries: int,
    show: bool,
    poll_seconds: float,
) -> dict[int, tuple[int, int, int, int]]:
    """Wait for every shard task, showing each shard's progress; write each one's records as it
    finishes. A shard that failed on every attempt cancels the others and is one line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
    )
    bars = {
        i: progress.add_task(f"shard {i}/{count}", total=max(totals[i], 1), state="queued")
        for i in range(1, count + 1)
    }
    pending = list(refs)
    status: dict[int, tuple[int, int, int, int]] = {}
    finished: set[int] = set()
    with progress:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=poll_seconds)
            for ref in done:
                index = refs[ref]
                try:
                    files = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    for other in pending:
                        ray.cancel(other, force=True)
                    cause = getattr(exc, "cause", None) or exc  # a task's own exception, where Ray kept it
                    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
                    raise ShardFailed(
                        f"shard {index}/{count} failed after {max_retries} retries: {reason}"
                    ) from exc
                dirs[index].mkdir(parents=True, exist_ok=True)
                for name, text in files.items():
                    (dirs[index] / name).write_text(text)
                finished.add(index)
            status = ray.get(sink.status.remote())
            for i, bar in bars.items():
                attempts, answered, _, _ = status.get(i, (0, 0, 0, 0))
                state = "done" if i in finished else ("running" if attempts else "queued")
                if attempts > 1:
                    state += f" (attempt {attempts})"
                progress.update(bar, completed=min(answered, totals[i]), state=state)
    return status


def _kill_hook() -> tuple[int, int] | None:
    """EVALS_TEST_KILL_SHARD=I:K as (I, K); None when unset (the normal case)."""
    value = os.environ.get(KILL_HOOK_ENV)
    if not value:
        return None
    shard, _, after = value.partition(":")
    return int(shard), int(after)
