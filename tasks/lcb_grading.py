"""LiveCodeBench grading: run one program on a problem's tests in the sandbox and judge each test.

This file has two halves. The parent half (imported by tasks/livecodebench.py) builds a sandbox
job, runs it with tasks/sandbox.py and judges what comes back. The driver half runs INSIDE the
sandbox: this very file is shipped as the sandboxed process's `main.py`, next to the program
(`solution.py`), the test inputs (`input_<i>.txt`) and `job.json`. So only the standard library
may be imported at module level here.

Semantics (LiveCodeBench/LiveCodeBench @ 28fef95 `lcb_runner/evaluation/testing_util.py`,
`compute_code_generation_metrics.py`; PROTOCOLS.md §3.4), implemented from that description:
- Tests are the public then the private test cases; they run one after another in one process
  and grading stops at the first failing test (later tests are `not_run`). A program is correct
  only if every test passes.
- Call-based (LeetCode) problems, chosen by the row's `metadata.func_name` as officially: the
  import prelude (`PRELUDE`) and the program run once as a module; if the code mentions
  `class Solution`, `Solution()` is instantiated once and its method `func_name` is called per
  test with one `json.loads` per input line as arguments; the expected value is
  `json.loads(output)`; a tuple result becomes a list; compared with `==`.
- Stdin problems: the program reads the test input on stdin and its stdout is compared with the
  expected output: both stripped and split into lines, same number of lines, each line equal after
  stripping, else equal as lists of `Decimal` tokens ("0.5" = "0.50" = "5e-1"), else wrong.
- Timeouts: 6 s per test by default; the whole process gets at most
  `(timeout + 1) * n_tests + 5` s of CPU (the official outer bound); a process killed for time is a
  time limit on the test in progress.

Verdicts per test: passed, wrong_answer, time_limit, runtime_error, memory_limit, syntax_error
(the program does not compile), not_run (after the first failure).

Why a program cannot forge its result: expected outputs never enter the sandbox. The driver only
reports, on file descriptor 3, what the program printed or returned for each test; the parent
compares that with the expected outputs. A program that writes on descriptor 3 itself can only
claim outputs, which must still equal the expected ones (the first report per test counts).

Deliberate deviations from the official harness, each for programs that behave correctly when run
as the prompt tells the model they will be run ("when the python program runs, it reads the
inputs ... and writes output to STDOUT"):
- Stdin programs run as a script: the module is executed with `__name__ == "__main__"` in fresh
  globals for every test, stdin is the test input (a real file on descriptor 0: `input()`,
  `sys.stdin.buffer`, `open(0)` all work) and stdout a real file on descriptor 1. Officially the
  module body is wrapped in a function after removing a final `if __name__ == '__main__':` guard,
  which breaks `global` statements on module-level names and guards that are not the last
  statement, and stdout is a `StringIO` without `.buffer`.
- Non-daemon threads a program starts are waited for (as the interpreter does at exit) before its
  output is read; officially their late output is lost.
- The 6 s per-test limit is CPU time of the process (a re-armed `ITIMER_PROF`), with a wall-clock
  backstop of `PER_TEST_WALL_FACTOR` x the limit; officially it is wall-clock time (`alarm`), so
  grading many programs in parallel no longer turns slow-machine contention into time limits
  (PROTOCOLS.md §7.5).
- Memory is capped at `MEMORY_BYTES` of address space (officially unlimited); `MemoryError` or a
  kill for memory is `memory_limit` (officially a runtime error).
- Functional results are compared with Python types kept (nested tuples, dicts with non-string
  keys and sets survive the trip out of the sandbox), so `==` means what it means officially.
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
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.sandbox import Execution, Limits

# --- verdicts and limits ----------------------------------------------------------------------

PASSED = "passed"
WRONG_ANSWER = "wrong_answer"
TIME_LIMIT = "time_limit"
RUNTIME_ERROR = "runtime_error"
MEMORY_LIMIT = "memory_limit"
SYNTAX_ERROR = "syntax_error"
NOT_RUN = "not_run"
VERDICTS = (PASSED, WRONG_ANSWER, TIME_LIMIT, RUNTIME_ERROR, MEMORY_LIMIT, SYNTAX_ERROR, NOT_RUN)

DEFAULT_TIMEOUT = 6.0  # seconds per test (official `--timeout 6`)
PER_TEST_WALL_FACTOR = 3.0  # wall-clock backstop per test, in multiples of the CPU limit
MEMORY_BYTES = 4 * 1024**3  # address space; the official harness comments "max memory 4GB"
MAX_MESSAGE_CHARS = 300  # of the failure message kept in a Score

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


# --- problems and grades ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One test: its stdin text (or one JSON argument per line) and its expected output."""

    input: str
    output: str


@dataclass(frozen=True)
class Problem:
    """What grading needs: the tests (public first) and, for call-based problems, the method."""

    tests: tuple[Case, ...]
    func_name: str | None = None

    @property
    def mode(self) -> str:
        return FUNCTIONAL if self.func_name else STDIN


@dataclass(frozen=True)
class Grade:
    """The judgement of one program: a verdict per test, the first failure, the sandbox's wall
    time. `error` is set when the grading itself failed (sandbox or data), not the program."""

    verdicts: tuple[str, ...]
    first_failure: dict[str, Any] | None = None
    seconds: float = 0.0
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(v == PASSED for v in self.verdicts)

    @property
    def tests_run(self) -> int:
        return sum(v != NOT_RUN for v in self.verdicts)


def failed_grade(problem: Problem, error: str) -> Grade:
    """A grade for a program that could not be graded (no verdicts are claimed)."""
    return Grade(verdicts=(NOT_RUN,) * len(problem.tests), error=error)


# --- output comparison (parent side) --------------------------------------------------------------


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def _lines_equal(got: str, expected: str) -> bool:
    if got == expected:
        return True
    got_numbers, expected_numbers = _decimals(got), _decimals(expected)
    if got_numbers is None or expected_numbers is None:
        return False
    try:
        return got_numbers == expected_numbers
    except InvalidOperation:  # signalling NaN
        return False


def stdin_mismatch(output: str, expected: str) -> str | None:
    """Why `output` fails `expected` under the official stdin rule, or None if it passes."""
    got, want = _stripped_lines(output), _stripped_lines(expected)
    if len(got) != len(want):
        return f"{len(got)} output lines, expected {len(want)}"
    for number, (got_line, want_line) in enumerate(zip(got, want, strict=True), 1):
        if not _lines_equal(got_line, want_line):
            return f"line {number} differs: got {got_line[:80]!r}"
    return None


def stdin_output_matches(output: str, expected: str) -> bool:
    return stdin_mismatch(output, expected) is None


def _parse_int(text: str) -> int:
    # int() refuses more than 4300 digits by default; Decimal converts exactly at any length
    return int(text) if len(text) < 4000 else int(Decimal(text))


def load_json(text: str) -> Any:
    """`json.loads` that also reads integers of any length."""
    return json.loads(text, parse_int=_parse_int)


class _Unequal:
    """A result the sandbox could not express in JSON: equal to nothing."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__


_TAG = "__lcb__"


def decode_result(value: Any) -> Any:
    """The Python value of a result encoded by `encode_result` (inverse up to object identity)."""
    if isinstance(value, list):
        return [decode_result(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag, items = value.get(_TAG), value.get("items", [])
    if tag == "tuple":
        return tuple(decode_result(v) for v in items)
    if tag == "dict":
        return {decode_result(k): decode_result(v) for k, v in items}
    if tag == "set":
        return {decode_result(v) for v in items}
    if tag == "frozenset":
        return frozenset(decode_result(v) for v in items)
    return _Unequal()


def functional_output_matches(encoded: str, expected: str) -> bool:
    """The official `prediction == json.loads(output)` on a result encoded in the sandbox."""
    try:
        got = decode_result(load_json(encoded))
        return bool(got == load_json(expected))
    except (ValueError, TypeError, RecursionError):
        return False


# --- running a program (parent side) ------------------------------------------------------------


def sandbox_limits(problem: Problem, timeout: float, memory_bytes: int = MEMORY_BYTES) -> Limits:
    """CPU: the official outer bound `(timeout + 1) * n + 5`; wall: the per-test backstop likewise."""
    from tasks.sandbox import Limits

    n = len(problem.tests)
    expected_bytes = sum(len(t.output.encode()) for t in problem.tests)
    return Limits(
        cpu_seconds=(timeout + 1) * n + 5,
        wall_seconds=(PER_TEST_WALL_FACTOR * timeout + 1) * n + 5,
        memory_bytes=memory_bytes,
        output_bytes=max(Limits().output_bytes, 2 * expected_bytes + Limits().file_bytes),
    )


def sandbox_files(problem: Problem, code: str, timeout: float) -> dict[str, bytes]:
    """The sandbox's working directory: the program, the inputs and the job; no expected output."""
    job = {
        "mode": problem.mode,
        "func_name": problem.func_name,
        "tests": len(problem.tests),
        "timeout": timeout,
        "wall_timeout": PER_TEST_WALL_FACTOR * timeout,
    }
    files = {JOB_FILE: json.dumps(job).encode(), SOLUTION_FILE: code.encode("utf-8", "surrogatepass")}
    for index, test in enumerate(problem.tests):
        files[input_file(index)] = test.input.encode("utf-8", "surrogatepass")
    return files


@functools.cache
def driver_source() -> str:
    """This file's source: the sandboxed process runs it as `main.py`."""
    with open(__file__, encoding="utf-8") as handle:
        return handle.read()


def grade(
    problem: Problem, code: str, *, timeout: float = DEFAULT_TIMEOUT, memory_bytes: int = MEMORY_BYTES
) -> Grade:
    """Run `code` on every test of `problem` in one sandboxed process and judge it."""
    from tasks.sandbox import run_python

    if not problem.tests:
        return failed_grade(problem, "the problem has no tests")
    execution = run_python(
        driver_source(),
        limits=sandbox_limits(problem, timeout, memory_bytes),
        channel=True,
        files=sandbox_files(problem, code, timeout),
    )
    return judge(problem, execution)


# --- judging (parent side) ------------------------------------------------------------------------


def read_messages(channel: bytes) -> list[dict[str, Any]]:
    """The JSON objects the driver (or the program) wrote, one per line; anything else is skipped."""
    messages = []
    for line in channel.split(b"\n"):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


_ERROR_VERDICTS = {
    "syntax": SYNTAX_ERROR,
    "runtime": RUNTIME_ERROR,
    "memory": MEMORY_LIMIT,
    "timeout": TIME_LIMIT,
}
_KILL_VERDICTS = {"timeout": TIME_LIMIT, "memory": MEMORY_LIMIT}


def judge(problem: Problem, execution: Execution) -> Grade:
    """Verdicts from the driver's reports: the first report per test counts; the first test
    without one failed the way the process ended; tests after the first failure are not run."""
    if execution.status == "sandbox_error":
        return failed_grade(problem, f"sandbox error: {execution.detail}"[:MAX_MESSAGE_CHARS])
    messages = read_messages(execution.channel)
    reports: dict[int, dict[str, Any]] = {}
    for message in messages:
        test = message.get("test")
        if type(test) is int and ("output" in message or "error" in message):
            reports.setdefault(test, message)
    driver_error = next((m for m in messages if m.get("event") == "driver_error"), None)
    verdicts: list[str] = []
    for index, test in enumerate(problem.tests):
        report = reports.get(index)
        if report is None and driver_error is not None:
            message = f"grading driver failed: {driver_error.get('message')}"[:MAX_MESSAGE_CHARS]
            return failed_grade(problem, message)
        verdict, message = _unfinished(execution) if report is None else _verdict(problem, test, report)
        verdicts.append(verdict)
        if verdict != PASSED:
            failure = {"test": index, "verdict": verdict, "message": message[:MAX_MESSAGE_CHARS]}
            verdicts.extend([NOT_RUN] * (len(problem.tests) - len(verdicts)))
            return Grade(tuple(verdicts), failure, execution.wall_seconds)
    return Grade(tuple(verdicts), None, execution.wall_seconds)


def _verdict(problem: Problem, test: Case, report: dict[str, Any]) -> tuple[str, str]:
    if "error" in report:
        verdict = _ERROR_VERDICTS.get(str(report["error"]), RUNTIME_ERROR)
        return verdict, str(report.get("message", ""))
    output = report.get("output")
    if not isinstance(output, str):
        return WRONG_ANSWER, "no output reported"
    if problem.mode == FUNCTIONAL:
        matched = functional_output_matches(output, test.output)
        return (PASSED, "") if matched else (WRONG_ANSWER, f"returned {output[:80]}")
    mismatch = stdin_mismatch(output, test.output)
    return (PASSED, "") if mismatch is None else (WRONG_ANSWER, mismatch)


def _unfinished(execution: Execution) -> tuple[str, str]:
    """The verdict of the test in progress when the process ended without reporting it."""
    detail = f" ({execution.detail})" if execution.detail else ""
    if execution.status in _KILL_VERDICTS:
        return _KILL_VERDICTS[execution.status], f"killed: {execution.status}{detail}"
    if execution.status == "output_limit":
        return RUNTIME_ERROR, f"output limit exceeded{detail}"
    return RUNTIME_ERROR, f"process ended without a result (exit code {execution.returncode}){detail}"


# --- the driver (runs inside the sandbox as main.py) ------------------------------------------------


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
        return {_TAG: "tuple", "items": [encode_result(v, False) for v in value]}
    if isinstance(value, dict):
        items = [[encode_result(k, False), encode_result(v, False)] for k, v in value.items()]
        return {_TAG: "dict", "items": items}
    if isinstance(value, set | frozenset):
        tag = "set" if isinstance(value, set) else "frozenset"
        return {_TAG: tag, "items": [encode_result(v, False) for v in value]}
    return _number(value)


def _number(value: Any) -> Any:
    import numbers

    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return {_TAG: "other", "items": []}


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
            builtins.exit = builtins.quit = sys.exit  # type: ignore[attr-defined]
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
