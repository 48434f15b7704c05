"""Run-path overhead per sample with a zero-cost backend: `evals run` on all 12,032 MMLU-Pro
questions (plan, generate through the SQLite cache, score, aggregate with bootstrap CIs, write the
run directory), where the backend answers at once with GPT-4o's published response for each
question (so extraction and scoring do real work).

Two runs per round, in alternating order: "fresh" (empty cache: every completion is committed to
the cache as it arrives, one transaction each, as in every run) and "resumed" (everything cached:
no writes; the cache is filled first, untimed). The difference is the cost of the cache writes.

Usage: python bench/run_overhead.py [--repeats 3] [--limit N]
Target: < 0.3 ms per sample (fresh run, best of the rounds). Prints each run, medians and best.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import registry
from evals.cache import CompletionCache
from evals.pipeline import run
from evals.planning import RunOptions
from evals.schema import BackendOptions, Completion, Request

SHARED = Path(os.environ.get("EVALS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MMLU = SHARED / "realdata" / "mmlu_pro"
GPT4O = MMLU / "tiger_gpt4o_2024-05-13_cot5shot"
TARGET_MS = 0.3
RESPONSES: dict[str, str] = {}


@dataclass(frozen=True)
class CannedOptions(BackendOptions):
    pass


class CannedBackend:
    """Answers each MMLU-Pro request with GPT-4o's published response (empty when unknown)."""

    name = "canned"
    options_type = CannedOptions
    takes_image_budget = False

    def __init__(self, model: str, options: Any = None) -> None:
        self.model = model

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "canned", "model": "gpt-4o-2024-05-13 (published outputs)", "location": {}}

    def generate(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for request in requests:
            text = RESPONSES.get(request.sample_id, "")
            yield Completion(key=request.key, text=text, raw=text, completion_tokens=len(text) // 4)

    def close(self) -> None:
        pass


def load_responses() -> int:
    for result in sorted(GPT4O.glob("*_result.json")):
        for row in json.loads(result.read_text()):
            RESPONSES[str(row["question_id"])] = row["response"] or ""
    return len(RESPONSES)


def one_run(tmp: Path, name: str, cache_path: Path, limit: int | None) -> float:
    options = RunOptions(
        tasks=["mmlu_pro"], model="canned", backend="canned", limit=limit, show_progress=False,
        data={"mmlu_pro": str(MMLU / "mmlu_pro_test-00000-of-00001.parquet")},
        cache=cache_path, output=tmp / f"run-{name}-{time.monotonic_ns()}",
    )  # fmt: skip
    start = time.perf_counter()
    outcome = run(options, cache=CompletionCache(cache_path))
    seconds = time.perf_counter() - start
    if not outcome.results.rows:
        raise SystemExit("the run produced no rows")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="questions (default: all 12,032)")
    args = parser.parse_args()
    if not GPT4O.is_dir():
        raise SystemExit(f"published outputs not found at {GPT4O}; set EVALS_SHARED")
    count = load_responses()
    registry.BACKENDS["canned"] = f"{__name__}:CannedBackend"
    n = args.limit or count
    times: dict[str, list[float]] = {"fresh": [], "resumed": []}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for repeat in range(args.repeats):
            names = list(times) if repeat % 2 == 0 else list(reversed(times))
            for name in names:
                cache_path = tmp / f"cache-{repeat}-{name}.sqlite"
                if name == "resumed":  # fill the cache first (untimed), then time the resumed run
                    one_run(tmp, "fill", cache_path, args.limit)
                seconds = one_run(tmp, name, cache_path, args.limit)
                times[name].append(seconds)
                print(
                    f"round {repeat + 1}, {name}: {seconds:.2f} s = {1000 * seconds / n:.3f} ms/sample",
                    flush=True,
                )
    for name, values in times.items():
        print(
            f"{name}: median {1000 * statistics.median(values) / n:.3f}, best {1000 * min(values) / n:.3f} ms/sample"
        )
    write_share = 1 - statistics.median(times["resumed"]) / statistics.median(times["fresh"])
    print(f"cache writes: {100 * write_share:.0f}% of a fresh run (median fresh vs resumed)")
    best = 1000 * min(times["fresh"]) / n
    print(f"best fresh run: {best:.3f} ms/sample (target < {TARGET_MS}): "
          f"{'OK' if best < TARGET_MS else 'OVER TARGET'}")  # fmt: skip


if __name__ == "__main__":
    main()
