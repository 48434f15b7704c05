"""Data parallelism for the vLLM backend: K worker processes, one engine and one GPU group each.

Not vLLM's own data parallelism (its `LLM(data_parallel_size>1)` refuses single-process use) and
not Ray: `WorkerPool` spawns K processes (multiprocessing "spawn"), worker w sees only its GPUs
(`CUDA_VISIBLE_DEVICES` set before vLLM is imported; tensor_parallel_size GPUs each, taken in
order from the parent's `CUDA_VISIBLE_DEVICES` or 0..K*TP-1) and builds its own `LLM`. Each
`run` shards the units deterministically (prompts round-robin in first-seen order, so repeats of
one prompt share a worker and its prefix cache), every worker processes its shard chunk by chunk
and sends each chunk's completions back over its own pipe, and the parent yields them as they
arrive. A worker that fails to load or dies gives error Completions, naming the reason, for its
unfinished requests; the others go on. Workers stay up between runs (follow-up turns reuse the
loaded engines) and are stopped by `close` with bounded waits.

It does not retry a dead worker's requests (the runner's next resume does) and has no overall
deadline: a worker that hangs inside vLLM without dying is not detected.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Generator, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from evals.schema import Completion, Request
from runners.outputs import error_completion, error_message
from runners.repeats import RepeatGroup
from runners.vllm_engine import Engine, VLLMOptions, chunk_units

POLL_SECONDS = 5.0
STOP_SECONDS = 30.0
KILL_SECONDS = 5.0


def device_groups(workers: int, per_worker: int, visible: str | None) -> list[list[str]]:
    """The GPU ids (as CUDA_VISIBLE_DEVICES entries) of each worker, in order."""
    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    if not devices:
        devices = [str(i) for i in range(workers * per_worker)]
    needed = workers * per_worker
    if len(devices) < needed:
        raise ValueError(
            f"data_parallel_size={workers} x tensor_parallel_size={per_worker} needs {needed} GPUs but "
            f"CUDA_VISIBLE_DEVICES lists {len(devices)}; lower data_parallel_size or expose more GPUs"
        )
    return [devices[w * per_worker : (w + 1) * per_worker] for w in range(workers)]


def shard_units(units: Sequence[RepeatGroup], workers: int) -> list[list[RepeatGroup]]:
    """Deterministic shards: units grouped by prompt (first-seen order), groups dealt round-robin."""
    groups: dict[Any, list[RepeatGroup]] = {}
    for unit in units:
        groups.setdefault((unit.first.messages, unit.first.prompt), []).append(unit)
    shards: list[list[RepeatGroup]] = [[] for _ in range(workers)]
    for i, group in enumerate(groups.values()):
        shards[i % workers].extend(group)
    return shards


def worker_main(
    index: int, devices: list[str], model: str, options: VLLMOptions, progress: bool, conn: Connection
) -> None:
    """A worker process: build the engine on its GPUs, then run shards until told to stop."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)  # before vLLM (and torch) load
    try:
        engine = Engine(model, options, progress)
    except Exception as exc:
        conn.send(("failed", f"engine failed to load: {error_message(exc)}"))
        conn.close()
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent went away
            return
        if message[0] != "run":
            return
        try:
            for chunk in chunk_units(message[1], options.chunk_size):
                conn.send(("chunk", engine.run_chunk(chunk)))
        except Exception as exc:
            conn.send(("failed", error_message(exc)))
        conn.send(("done",))


class _Worker:
    def __init__(self, index: int, devices: list[str], process: Any, conn: Connection):
        self.index = index
        self.devices = devices
        self.process = process
        self.conn = conn
        self.pending: dict[str, Request] = {}
        self.failure: str | None = None  # why its requests failed (load error, crash)

    @property
    def label(self) -> str:
        return f"data-parallel worker {self.index} (CUDA_VISIBLE_DEVICES={','.join(self.devices)})"


class WorkerPool:
    """K engine processes (see the module docstring); `run` yields completions as chunks finish."""

    def __init__(self, model: str, options: VLLMOptions):
        self.model = model
        self.options = options
        self.groups = device_groups(
            options.data_parallel_size, options.tensor_parallel_size, os.environ.get("CUDA_VISIBLE_DEVICES")
        )
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}

    def _start(self, index: int) -> _Worker:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(
                index,
                self.groups[index],
                self.model,
                self.options,
                self.options.progress and index == 0,
                child,
            ),
            name=f"vllm-dp{index}",
        )
        process.start()
        child.close()
        return _Worker(index, self.groups[index], process, parent)

    def _worker(self, index: int) -> _Worker:
        worker = self._workers.get(index)
        if worker is None or not worker.process.is_alive():
            if worker is not None:
                _reap(worker)
            worker = self._workers[index] = self._start(index)
        return worker

    def run(self, units: Sequence[RepeatGroup]) -> Iterator[Completion]:
        """Yield one Completion per request of `units`, in the order the workers finish chunks."""
        active: dict[int, _Worker] = {}
        try:
            shards = [(i, shard) for i, shard in enumerate(shard_units(units, len(self.groups))) if shard]
            for index, shard in shards:  # every worker starts (and loads its engine) before any send,
                worker = self._worker(index)  # which blocks until that worker reads its shard
                worker.pending = {r.key: r for unit in shard for r in unit.requests}
                worker.failure = None
                active[index] = worker
            for index, shard in shards:
                with contextlib.suppress(OSError):  # it died (e.g. failed to load): its pipe says why
                    active[index].conn.send(("run", shard))
            while active:
                owners = {w.conn: w for w in active.values()} | {
                    w.process.sentinel: w for w in active.values()
                }
                for ready in wait(list(owners), timeout=POLL_SECONDS):
                    worker = owners[ready]
                    if worker.index not in active:
                        continue
                    finished = yield from self._receive(worker)
                    if finished:
                        yield from self._fail_pending(worker, "returned no completion")
                        del active[worker.index]
        finally:
            for worker in active.values():  # the consumer stopped early: do not leave work running
                _reap(worker)
                self._workers.pop(worker.index, None)

    def _receive(self, worker: _Worker) -> Generator[Completion, None, bool]:
        """Handle what the worker sent (or its death); return True when its shard is over."""
        while True:
            try:
                if not worker.conn.poll():
                    break
                message = worker.conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "chunk":
                for completion in message[1]:
                    if worker.pending.pop(completion.key, None) is not None:
                        yield completion
            elif kind == "failed":
                worker.failure = message[1]
                yield from self._fail_pending(worker, message[1])
            elif kind == "done":
                return True
        if worker.process.is_alive():
            return False
        worker.process.join(KILL_SECONDS)
        code = worker.process.exitcode
        yield from self._fail_pending(worker, worker.failure or f"exited with code {code} before finishing")
        self._workers.pop(worker.index, None)
        return True

    def _fail_pending(self, worker: _Worker, reason: str) -> Iterator[Completion]:
        for key in list(worker.pending):
            yield error_completion(worker.pending.pop(key), f"{worker.label} {reason}")

    def close(self) -> None:
        """Ask every worker to stop, then terminate and kill the ones that do not (bounded)."""
        for worker in self._workers.values():
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send(("stop",))
        for worker in self._workers.values():
            worker.process.join(STOP_SECONDS)
            _reap(worker)
        self._workers.clear()


def _reap(worker: _Worker) -> None:
    """Terminate, then kill, a worker process; close its pipe. Every wait is bounded."""
    process = worker.process
    if process.is_alive():
        process.terminate()
        process.join(KILL_SECONDS)
    if process.is_alive():
        process.kill()
        process.join(KILL_SECONDS)
    worker.conn.close()
