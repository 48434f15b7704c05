"""LiveCodeBench grading throughput: the builtin problems x 16 programs each (correct ones and ones
failing in different ways), graded serially (`workers=1`) and in parallel (default workers) in one
run, through the task's `score_many` (decoding the tests, one sandboxed process per program).

Also the sandbox's cost for trivial programs: a fixed cost per program (a 1-test problem) and the
marginal cost of each further test (the same program on a problem with many tests).

Usage: python bench/lcb_grading.py [--workers N] [--copies 16]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Sequence

from evals.schema import Completion, Sample, Score
from tasks.lcb_grading import NOT_RUN, Case, Problem, grade
from tasks.livecodebench import LiveCodeBench

# Per builtin problem: a correct program and four ways to fail.
CORRECT = {
    "smoke_sum": "a, b = map(int, input().split())\nprint(a + b)",
    "smoke_reverse": "s = input().strip()\nprint(s[::-1])\nprint(len(s))",
    "smoke_add_digits": "class Solution:\n    def addDigits(self, num: int) -> int:\n"
    "        return 0 if num == 0 else 1 + (num - 1) % 9",
    "smoke_count_pairs": "class Solution:\n    def countPairs(self, nums, target):\n"
    "        return sum(nums[i] + nums[j] == target for i in range(len(nums)) for j in range(i + 1, len(nums)))",
}
WRONG_LATE = {  # right on the public test, wrong on a private one
    "smoke_sum": "print(8)",
    "smoke_reverse": "print('cba')\nprint(3)",
    "smoke_add_digits": "class Solution:\n    def addDigits(self, num):\n        return 2",
    "smoke_count_pairs": "class Solution:\n    def countPairs(self, nums, target):\n        return 2",
}
FAILING = ("raise ValueError('no')", "def broken(:\n    pass", "print('All tests passed')")
MIX = {"correct": 11, "wrong_late": 2, "failing": 3}  # 16 programs per problem


def programs(problem_id: str) -> list[str]:
    return (
        [CORRECT[problem_id]] * MIX["correct"] + [WRONG_LATE[problem_id]] * MIX["wrong_late"] + list(FAILING)
    )


def answer(code: str) -> Completion:
    return Completion(key="k", text=f"```python\n{code}\n```")


def measure(
    workers: int | None, items: Sequence[tuple[Sample, Completion, int]]
) -> tuple[float, list[Score]]:
    task = LiveCodeBench(workers=workers)
    start = time.perf_counter()
    scores = task.score_many(items)
    return time.perf_counter() - start, scores


def tests_run(scores: Sequence[Score]) -> int:
    return sum(sum(v != NOT_RUN for v in s.details.get("verdicts", [])) for s in scores)


def report(label: str, seconds: float, scores: Sequence[Score]) -> float:
    tests = tests_run(scores)
    print(
        f"{label:<22} {seconds:7.2f} s  {len(scores) / seconds:7.1f} programs/s  "
        f"{tests / seconds:7.1f} tests/s  ({tests} tests, {1000 * seconds / tests:.1f} ms/test)"
    )
    return tests / seconds


def overhead(repeats: int = 5, many: int = 40) -> None:
    """Fixed cost per program and marginal cost per test, for a trivial stdin program."""
    code = "print(input())"
    one = Problem((Case("1\n", "1\n"),))
    lots = Problem(tuple(Case(f"{i}\n", f"{i}\n") for i in range(many)))
    timings = {}
    for name, problem in (("one", one), ("many", lots)):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            result = grade(problem, code)
            best = min(best, time.perf_counter() - start)
            assert result.passed, result
        timings[name] = best
    marginal = (timings["many"] - timings["one"]) / (many - 1)
    print(
        f"sandbox overhead (trivial program, best of {repeats}): {1000 * timings['one']:.1f} ms per program "
        f"with 1 test; {1000 * marginal:.2f} ms per further test ({many} tests: {1000 * timings['many']:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=None, help="parallel workers (default: CPU count)")
    args = parser.parse_args()
    samples = LiveCodeBench().load("builtin")
    items = [(s, answer(code), r) for s in samples for r, code in enumerate(programs(s.id))]
    workers = args.workers or os.cpu_count() or 1
    print(f"{len(samples)} builtin problems x {len(items) // len(samples)} programs = {len(items)} programs "
          f"(CPU count {os.cpu_count()}, parallel workers {workers})")  # fmt: skip
    serial_seconds, serial = measure(1, items)
    parallel_seconds, parallel = measure(workers, items)
    assert [(s.sample_id, s.repeat, s.outcome) for s in serial] == [
        (s.sample_id, s.repeat, s.outcome) for s in parallel
    ], "serial and parallel grading disagree"
    outcomes = Counter(s.outcome.value for s in serial)
    flags = Counter(flag for s in serial for flag in s.flags)
    print(f"outcomes {dict(outcomes)}; first failures {dict(flags)}")
    serial_rate = report("serial (1 worker)", serial_seconds, serial)
    parallel_rate = report(f"parallel ({workers} workers)", parallel_seconds, parallel)
    print(f"parallel / serial throughput: {parallel_rate / serial_rate:.2f}x")
    overhead()


if __name__ == "__main__":
    main()
