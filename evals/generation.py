"""Generate completions for a list of requests through a backend, with cache and resume.

Requests already in the cache are never generated again; every new completion is committed to
the cache the moment the backend yields it. Identical requests (the same cache key under different
request keys, e.g. MMLU-Pro's duplicated questions) are generated once and share that completion,
whether the run is fresh or resumed, so a resumed run equals an uninterrupted one. Each request
gets its own `Completion` object (shared ones are copied with the request's key, never mutated).
A progress bar names what is generated and shows ETA and tokens per second. This module does not
score anything and knows no benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

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
from evals.records import GenerationStats
from evals.schema import Backend, Completion, Request, TokenProgress, stable_hash


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
    fresh: bool = False,
) -> tuple[dict[str, Completion], GenerationStats]:
    """Return a completion for every request (by request key), generating only what is missing.

    `fresh` ignores what the cache holds: everything is generated again and the new completions
    replace the cached ones."""
    duplicate = _first_duplicate(requests)
    if duplicate:
        raise ValueError(f"request key '{duplicate}' appears twice; request keys must be unique")
    mhash = model_hash(backend)
    by_cache_key: dict[str, list[Request]] = {}
    for request in requests:
        by_cache_key.setdefault(cache_key(mhash, request), []).append(request)
    cached = {} if fresh else cache.get_many(by_cache_key)
    results: dict[str, Completion] = {}
    pending: dict[str, Request] = {}  # cache key -> the one request of its group that is generated
    stats = GenerationStats(requested=len(requests))
    for ckey, group in by_cache_key.items():
        hit = cached.get(ckey)
        if hit is None:
            pending[ckey] = group[0]
            continue
        for request in group:
            results[request.key] = _keyed(hit, request)
        stats.cached += len(group)
    if pending:
        _generate_pending(
            backend, pending, by_cache_key, cache, mhash, results, stats, show_progress, label, fresh
        )
    return results, stats


def _generate_pending(
    backend: Backend,
    pending: dict[str, Request],
    by_cache_key: dict[str, list[Request]],
    cache: CompletionCache,
    mhash: str,
    results: dict[str, Completion],
    stats: GenerationStats,
    show_progress: bool,
    label: str,
    fresh: bool,
) -> None:
    """Generate one request per cache key in `pending`; cache each completion as it arrives and copy
    it to every request of its group."""
    cache_key_of = {request.key: ckey for ckey, request in pending.items()}
    started = time.perf_counter()
    with _Bar(label, len(pending), show_progress, started) as bar:
        listener = backend if isinstance(backend, TokenProgress) and show_progress else None
        if listener is not None:
            listener.on_tokens(bar.tokens)
        try:
            for completion in backend.generate(list(pending.values())):
                ckey = cache_key_of.get(completion.key)
                if ckey is None or completion.key in results:
                    raise RuntimeError(
                        f"backend returned an unexpected or repeated completion '{completion.key}'"
                    )
                if completion.error is None:
                    completion = cache.put(ckey, mhash, completion, replace_existing=fresh)  # what it holds
                    stats.generated += 1
                else:
                    stats.failed += 1
                group = by_cache_key[ckey]
                stats.shared += len(group) - 1
                for request in group:
                    results[request.key] = _keyed(completion, request)
                stats.completion_tokens += completion.completion_tokens
                bar.completed(stats.completion_tokens)
        finally:
            if listener is not None:
                listener.on_tokens(None)
    stats.seconds = time.perf_counter() - started
    for ckey, first in pending.items():  # a backend that silently drops a request must not lose it
        if first.key in results:
            continue
        for request in by_cache_key[ckey]:
            results[request.key] = Completion(
                key=request.key, text="", finish_reason="error", error="backend returned no completion"
            )
        stats.failed += 1
        stats.shared += len(by_cache_key[ckey]) - 1


def _keyed(completion: Completion, request: Request) -> Completion:
    """`completion` as `request`'s own: itself when it carries the request's key (at most one
    request of a group does, as request keys are unique), otherwise a copy with that key."""
    return completion if completion.key == request.key else replace(completion, key=request.key)


class _Bar:
    """A progress bar over completions that also shows tokens generated so far and their rate,
    including tokens a backend reports while a batch is still running (schema.TokenProgress)."""

    def __init__(self, label: str, total: int, show: bool, started: float) -> None:
        self.show = show
        self.started = started
        self.streamed = 0
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not show,
        )
        self.task = self.progress.add_task(label, total=total, rate="")

    def __enter__(self) -> _Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def tokens(self, count: int) -> None:
        self.streamed += count
        self._show(advance=0)

    def completed(self, tokens_so_far: int) -> None:
        self.streamed = max(self.streamed, tokens_so_far)
        self._show(advance=1)

    def _show(self, advance: int) -> None:
        if not self.show:  # a hidden bar has nothing to update (its counts are not read)
            return
        rate = self.streamed / max(time.perf_counter() - self.started, 1e-9)
        self.progress.update(self.task, advance=advance, rate=f"{self.streamed} tokens, {rate:.1f} tok/s")


def _first_duplicate(requests: Sequence[Request]) -> str | None:
    seen: set[str] = set()
    for request in requests:
        if request.key in seen:
            return request.key
        seen.add(request.key)
    return None
