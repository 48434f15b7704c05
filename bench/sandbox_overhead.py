"""Cost of the code sandbox (tasks/sandbox.py) on this machine.

Usage: python bench/sandbox_overhead.py [--runs 30] [--calibrate]
Prints (1) the per-run overhead of run_python for a trivial program against a bare
`python -I -c pass`, (2) the throughput of 40 programs of 0.1 s CPU each, serial and through
SandboxPool, and with --calibrate (3) CPU vs wall seconds of a 1 s CPU program alone and on a loaded
machine: the figures behind the default wall backstop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.sandbox import Execution, Limits, SandboxPool, run_python, sandbox_capabilities

SHORT_JOB = "import time\nwhile time.process_time() < 0.1:\n    pass\n"
HOG = "while True:\n    pass\n"


def mean_ms(fn, runs: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(runs):
        fn()
    return (time.perf_counter() - start) / runs * 1000


def overhead(runs: int) -> None:
    def bare() -> None:
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)

    def sandboxed() -> None:
        result = run_python("pass")
        assert result.status == "ok", result

    bare_ms, sandbox_ms = mean_ms(bare, runs), mean_ms(sandboxed, runs)
    print(f"(1) per run, mean of {runs}: bare `python -I -c pass` {bare_ms:.1f} ms,", end=" ")
    print(f"run_python('pass') {sandbox_ms:.1f} ms, overhead {sandbox_ms - bare_ms:+.1f} ms")


def throughput(jobs: int = 40) -> None:
    def job(_: int) -> Execution:
        result = run_python(SHORT_JOB)
        assert result.status == "ok", result
        return result

    start = time.perf_counter()
    for i in range(jobs):
        job(i)
    serial = time.perf_counter() - start
    with SandboxPool() as pool:
        start = time.perf_counter()
        pool.map(job, range(jobs))
        pooled = time.perf_counter() - start
        workers = pool.workers
    print(f"(2) {jobs} programs of 0.1 s CPU: serial {serial:.2f} s ({jobs / serial:.1f}/s), ", end="")
    print(f"SandboxPool({workers}) {pooled:.2f} s ({jobs / pooled:.1f}/s), speed-up {serial / pooled:.2f}x")


def cpu_program(seconds: float) -> str:
    """A fixed amount of pure CPU work that takes about `seconds` in the sandbox on an idle machine."""

    def program(n: int) -> str:
        return f"x = 0\nfor i in range({n}):\n    x += i * i\n"

    probe = 2_000_000
    base = run_python("pass").cpu_seconds
    cpu = run_python(program(probe), limits=Limits(cpu_seconds=30)).cpu_seconds - base
    return program(int(probe * seconds / cpu))


def loaded(program: str, workers: int, hogs: int) -> list[Execution]:
    procs = [subprocess.Popen([sys.executable, "-I", "-c", HOG]) for _ in range(hogs)]
    try:
        time.sleep(0.2)
        with SandboxPool(workers) as pool:
            return pool.map(lambda _: run_python(program, limits=Limits(cpu_seconds=30)), range(workers))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def calibrate() -> None:
    program = cpu_program(1.0)
    cases = {"alone": (1, 0), "2 workers + 1 hog": (2, 1), "4 workers + 2 hogs": (4, 2)}
    print(f"(3) a ~1 s CPU program on {os.cpu_count()} cores (cpu s / wall s per run, 3 rounds):")
    for name, (workers, hogs) in cases.items():
        runs = [r for _ in range(3) for r in loaded(program, workers, hogs)]
        assert all(r.status == "ok" for r in runs), runs
        pairs = ", ".join(f"{r.cpu_seconds:.2f}/{r.wall_seconds:.2f}" for r in runs)
        ratio = max(r.wall_seconds / r.cpu_seconds for r in runs)
        cpu = statistics.mean(r.cpu_seconds for r in runs)
        wall = statistics.mean(r.wall_seconds for r in runs)
        print(f"    {name:<20} mean cpu {cpu:.2f} s, wall {wall:.2f} s, max wall/cpu {ratio:.2f}", end=" ")
        print(f"[{pairs}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--calibrate", action="store_true", help="also measure CPU vs wall under load")
    args = parser.parse_args()
    print("capabilities:", {k: v for k, v in sandbox_capabilities().items() if v} or "none")
    overhead(args.runs)
    throughput()
    if args.calibrate:
        calibrate()


if __name__ == "__main__":
    main()
