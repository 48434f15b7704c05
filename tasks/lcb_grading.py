"""LiveCodeBench grading: run one program on a problem's tests in the sandbox and judge each test.

The parent side of grading (imported by tasks/livecodebench.py): it builds a sandbox job, runs it
with tasks/sandbox.py and judges what comes back. The program is run by the in-sandbox driver,
tasks/lcb_driver.py (stdlib only; shipped as the sandboxed `main.py`), which reports the program's
outputs; judging happens here.

Semantics (LiveCodeBench/LiveCodeBench @ 28fef95 `lcb_runner/evaluation/testing_util.py`,
`compute_code_generation_metrics.py`; docs/protocols/livecodebench.md), implemented from that
description:
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
  (docs/protocols/livecodebench.md).
- Memory is capped at `MEMORY_BYTES` of address space (officially unlimited); `MemoryError` or a
  kill for memory is `memory_limit` (officially a runtime error).
- Functional results are compared with Python types kept (nested tuples, dicts with non-string
  keys and sets survive the trip out of the sandbox), so `==` means what it means officially.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks import lcb_driver
from tasks.lcb_driver import (
    FUNCTIONAL,
    JOB_FILE,
    MAX_MESSAGE_CHARS,
    RESULT_TAG,
    SOLUTION_FILE,
    STDIN,
    input_file,
)

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


def decode_result(value: Any) -> Any:
    """The Python value of a result encoded by `encode_result` (inverse up to object identity)."""
    if isinstance(value, list):
        return [decode_result(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag, items = value.get(RESULT_TAG), value.get("items", [])
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
    """The driver's source (tasks/lcb_driver.py): the sandboxed process runs it as `main.py`."""
    return Path(lcb_driver.__file__).read_text(encoding="utf-8")


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
    for entry in messages:
        test = entry.get("test")
        if type(test) is int and ("output" in entry or "error" in entry):
            reports.setdefault(test, entry)
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
