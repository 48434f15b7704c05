"""LiveCodeBench's in-sandbox driver: runs one program on a problem's tests and reports what it did.

tasks/lcb_grading.py ships this file's text as the sandboxed process's `main.py`, next to the
program (`solution.py`), the test inputs (`input_<i>.txt`) and `job.json` (mode, method name, number
of tests, time limits). The driver runs the tests one after another and writes one JSON object per
line on descriptor 3: `{"test": i, "event": "start"}`, then `{"test": i, "output": ...}` or
`{"test": i, "error": "syntax"|"runtime"|"memory"|"timeout", "message": ...}` (with the test's wall
and CPU seconds), and `{"event": "done"}` or `{"event": "driver_error", ...}` at the end. It stops
after the first test that raises or runs out of time.

It never sees expected outputs and judges nothing: the parent compares the reported outputs (see
tasks/lcb_grading.py for the rules and the deliberate deviations from the official harness).
The file runs on its own, outside the package, so it imports only the standard library (a test
parses its imports and checks that). The constants below are shared with the parent, which imports
them from here.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_MESSAGE_CHARS = 300  # of a failure message
STDIN = "stdin"
FUNCTIONAL = "functional"

# The official import prelude (testing_util.py `import_string`): star imports, module imports,
# and a raised recursion limit, run before every program.
_PRELUDE_MODULES = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
    "statistics", "itertools", "functools", "operator", "io", "sys", "json",
)  # fmt: skip
PRELUDE = "\n".join(
    [
        *(f"from {module} import *" for module in (*_PRELUDE_MODULES, "builtins", "typing")),
        *(f"import {module}" for module in _PRELUDE_MODULES),
        "sys.setrecursionlimit(50000)",
    ]
)
INT_MAX_STR_DIGITS = 50000  # the official grader raises Python's int<->str limit to this

# Files in the sandbox's working directory, and the descriptor the driver reports on.
JOB_FILE = "job.json"
SOLUTION_FILE = "solution.py"
OUTPUT_FILE = "stdout.txt"
CHANNEL_FD = 3


def input_file(index: int) -> str:
    return f"input_{index}.txt"


# Returned values are encoded as JSON; containers JSON cannot express carry this tag.
RESULT_TAG = "__lcb__"


# --- the driver ---------------------------------------------------------------------------------------


class PerTestTimeout(BaseException):
    """Raised by the per-test timers; not an Exception, so `except Exception:` cannot swallow it."""


_ARMED = False


def _on_timer(signum: int, frame: Any) -> None:
    if _ARMED:
        raise PerTestTimeout


def _arm(cpu_seconds: float, wall_seconds: float) -> None:
    global _ARMED
    _ARMED = True
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    signal.setitimer(signal.ITIMER_REAL, wall_seconds)


def _disarm() -> None:
    global _ARMED
    _ARMED = False
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)


def _send(message: dict[str, Any]) -> None:
    data = memoryview((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "replace"))
    while data:
        data = data[os.write(CHANNEL_FD, data) :]


@dataclass
class _Outcome:
    """What one timed call did: `error` is None, "runtime", "memory" or "timeout"."""

    error: str | None = None
    message: str = ""
    seconds: float = 0.0
    cpu: float = 0.0
    value: Any = None


def _timed(call: Callable[[], Any], job: dict[str, Any]) -> _Outcome:
    outcome = _Outcome()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        try:
            _arm(job["timeout"], job["wall_timeout"])
            outcome.value = call()
        finally:
            _disarm()
    except PerTestTimeout:
        outcome.error, outcome.message = "timeout", f"over {job['timeout']:g} s"
    except MemoryError:
        outcome.error, outcome.message = "memory", "MemoryError"
    except BaseException as exc:  # anything the program raised, including KeyboardInterrupt
        outcome.error, outcome.message = "runtime", f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE_CHARS]
    outcome.seconds = time.perf_counter() - wall
    outcome.cpu = time.process_time() - cpu
    return outcome


def _report(index: int, outcome: _Outcome, output: str) -> bool:
    """Send the test's report; True if the program may go on to the next test."""
    timing = {"seconds": round(outcome.seconds, 4), "cpu": round(outcome.cpu, 4)}
    if outcome.error is not None:
        _send({"test": index, "error": outcome.error, "message": outcome.message, **timing})
        return False
    _send({"test": index, "output": output, **timing})
    return True


def _point(fd: int, path: str, flags: int) -> None:
    """Make descriptor `fd` refer to `path`."""
    opened = os.open(path, flags, 0o600)
    if opened != fd:
        os.dup2(opened, fd)
        os.close(opened)


def _flush(stream: Any) -> None:
    with contextlib.suppress(Exception):  # closed or replaced by the program
        stream.flush()


@dataclass
class _Stdio:
    """Fresh sys.stdin/sys.stdout over descriptors 0 and 1 for one test."""

    streams: list[Any] = field(default_factory=list)

    def open(self, input_path: str, output_path: str) -> None:
        _point(0, input_path, os.O_RDONLY)
        _point(1, output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        sys.stdin = io.TextIOWrapper(
            io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", newline="\n"
        )
        sys.stdout = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8", newline="\n"
        )
        self.streams = [sys.stdout]

    def close(self) -> None:
        for stream in (*self.streams, sys.stdout, sys.__stdout__):
            _flush(stream)


def _join_new_threads(before: set[threading.Thread]) -> None:
    """Wait for the non-daemon threads the program started, as the interpreter does at exit."""
    for thread in threading.enumerate():
        if thread not in before and not thread.daemon and thread is not threading.current_thread():
            thread.join()


def _run_script(code: Any, prelude: Any) -> None:
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    before = set(threading.enumerate())
    try:
        try:
            exec(prelude, namespace)
            exec(code, namespace)
        except SystemExit:  # exit() ends the program normally, as officially
            pass
        _join_new_threads(before)
    finally:
        _flush(sys.stdout)  # as at interpreter exit: sys.stdout first, then the program's objects
        namespace.clear()  # drop the program's objects (files it left open flush and close)


def _stdin_tests(code: Any, prelude: Any, job: dict[str, Any], workdir: str) -> None:
    stdio = _Stdio()
    output_path = os.path.join(workdir, OUTPUT_FILE)
    for index in range(job["tests"]):
        _send({"test": index, "event": "start"})
        stdio.open(os.path.join(workdir, input_file(index)), output_path)
        outcome = _timed(lambda: _run_script(code, prelude), job)
        stdio.close()
        with open(output_path, "rb") as handle:
            output = handle.read().decode("utf-8", "replace")
        if not _report(index, outcome, output):
            return


def encode_result(value: Any, top: bool = True) -> Any:
    """A JSON-able form of a returned value that keeps the types `==` cares about: nested tuples,
    dicts (any keys), sets; a top-level tuple becomes a list (as officially); numbers of other
    types become int/float; anything else becomes a tag that equals nothing."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list) or (top and isinstance(value, tuple)):
        return [encode_result(v, False) for v in value]
    if isinstance(value, tuple):
        return {RESULT_TAG: "tuple", "items": [encode_result(v, False) for v in value]}
    if isinstance(value, dict):
        items = [[encode_result(k, False), encode_result(v, False)] for k, v in value.items()]
        return {RESULT_TAG: "dict", "items": items}
    if isinstance(value, set | frozenset):
        tag = "set" if isinstance(value, set) else "frozenset"
        return {RESULT_TAG: tag, "items": [encode_result(v, False) for v in value]}
    return _number(value)


def _number(value: Any) -> Any:
    import numbers

    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return {RESULT_TAG: "other", "items": []}


def _functional_tests(code: Any, prelude: Any, source: str, job: dict[str, Any], workdir: str) -> None:
    _point(0, os.devnull, os.O_RDONLY)
    _point(1, os.devnull, os.O_WRONLY)
    namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}

    def load() -> Any:
        exec(prelude, namespace)
        exec(code, namespace)
        target = namespace["Solution"]() if "class Solution" in source else None
        method = getattr(target, job["func_name"]) if target is not None else namespace[job["func_name"]]
        return method

    _send({"test": 0, "event": "start"})
    loaded = _timed(load, job)
    if loaded.error is not None:
        _report(0, loaded, "")
        return
    for index in range(job["tests"]):
        if index:
            _send({"test": index, "event": "start"})
        with open(os.path.join(workdir, input_file(index)), encoding="utf-8") as handle:
            args = [json.loads(line) for line in handle.read().split("\n")]
        outcome = _timed(functools.partial(_call_encoded, loaded.value, args), job)
        if not _report(index, outcome, outcome.value if outcome.error is None else ""):
            return


def _call_encoded(method: Callable[..., Any], args: list[Any]) -> str:
    return json.dumps(encode_result(method(*args)))


def _compile(source: str) -> tuple[Any, str]:
    try:
        return compile(source, SOLUTION_FILE, "exec"), ""
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes in the source
        return None, f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE_CHARS]


def _driver_main() -> None:
    workdir = os.getcwd()  # absolute paths: the program may change directory
    try:
        with open(os.path.join(workdir, JOB_FILE), encoding="utf-8") as handle:
            job = json.load(handle)
        with open(os.path.join(workdir, SOLUTION_FILE), encoding="utf-8", errors="replace") as handle:
            source = handle.read()
        sys.set_int_max_str_digits(INT_MAX_STR_DIGITS)
        if not hasattr(builtins, "exit"):  # `site` not loaded: give programs exit() and quit()
            builtins.exit = builtins.quit = sys.exit  # type: ignore[assignment]  # site's Quitter stand-ins
        signal.signal(signal.SIGPROF, _on_timer)
        signal.signal(signal.SIGALRM, _on_timer)
        _point(2, os.devnull, os.O_WRONLY)  # the program's stderr is not kept
        code, error = _compile(source)
        if code is None:
            _send({"test": 0, "event": "start"})
            _send({"test": 0, "error": "syntax", "message": error})
            return
        prelude = compile(PRELUDE, "<prelude>", "exec")
        if job["mode"] == FUNCTIONAL:
            _functional_tests(code, prelude, source, job, workdir)
        else:
            _stdin_tests(code, prelude, job, workdir)
        _send({"event": "done"})
    except BaseException as exc:  # a failure of the driver itself, not a verdict on the program
        _send({"event": "driver_error", "message": f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE_CHARS]})
        raise


if __name__ == "__main__":
    _driver_main()
