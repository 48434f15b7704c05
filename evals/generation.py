"""Generate completions for a list of requests through a backend, with cache and resume.

Requests already in the cache are never generated again; every new completion is committed to
the cache the moment the backend yields it. A progress bar shows ETA and tokens per second.
This module does not score anything and knows no benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from evals.cache import CompletionCache, cache_key
from evals.schema import Backend, Completion, Request, stable_hash


@dataclass
class GenerationStats:
    requested: int = 0
    cached: int = 0
    generated: int = 0
    failed: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def merged(self, other: GenerationStats) -> GenerationStats:
        return GenerationStats(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def model_hash(backend: Backend) -> str:
    """Hash of the backend fingerprint, without its "location" entry (where files live does not
    change outputs, so a moved model or a new virtual environment keeps its cache)."""
    fingerprint = {k: v for k, v in backend.fingerprint().items() if k != "location"}
    return stable_hash(fingerprint)


def generate_all(
    backend: Backend,
    requests: Sequence[Request],
    cache: CompletionCache,
    *,
    show_progress: bool = True,
    label: str = "generating",
) -> tuple[dict[str, Completion], GenerationStats]:
    """Return a completion for every request (by request key), generating only what is missing."""
    duplicate = _first_duplicate(requests)
    if duplicate:
        raise ValueError(f"request key '{duplicate}' appears twice; request keys must be unique")
    mhash = model_hash(backend)
    keys = {r.key: cache_key(mhash, r) for r in requests}
    cached = cache.get_many(keys.values())
    results: dict[str, Completion] = {}
    pending: list[Request] = []
    for request in requests:
        hit = cached.get(keys[request.key])
        if hit is None:
            pending.append(request)
        else:
            hit.key = request.key  # an identical request under another key shares the completion
            results[request.key] = hit
    stats = GenerationStats(requested=len(requests), cached=len(requests) - len(pending))
    if pending:
        _generate_pending(backend, pending, cache, mhash, keys, results, stats, show_progress, label)
    return results, stats


def _generate_pending(
    backend: Backend,
    pending: list[Request],
    cache: CompletionCache,
    mhash: str,
    keys: dict[str, str],
    results: dict[str, Completion],
    stats: GenerationStats,
    show_progress: bool,
    label: str,
) -> None:
    wanted = {r.key for r in pending}
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
    )
    started = time.perf_counter()
    with progress:
        bar = progress.add_task(label, total=len(pending), rate="")
        for completion in backend.generate(pending):
            if completion.key not in wanted or completion.key in results:
                raise RuntimeError(
                    f"backend returned an unexpected or repeated completion '{completion.key}'"
                )
            if completion.error is None:
                cache.put(keys[completion.key], mhash, completion)
                stats.generated += 1
            else:
                stats.failed += 1
            results[completion.key] = completion
            stats.completion_tokens += completion.completion_tokens
            stats.seconds = time.perf_counter() - started
            progress.update(bar, advance=1, rate=f"{stats.tokens_per_second:.1f} tok/s")
    for request in pending:  # a backend that silently drops a request must not lose it
        if request.key not in results:
            results[request.key] = Completion(
                key=request.key, text="", finish_reason="error", error="backend returned no completion"
            )
            stats.failed += 1


def _first_duplicate(requests: Sequence[Request]) -> str | None:
    seen: set[str] = set()
    for request in requests:
        if request.key in seen:
            return request.key
        seen.add(request.key)
    return None
