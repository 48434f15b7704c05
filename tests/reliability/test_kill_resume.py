"""SIGKILL `evals run` at 20 points and resume each time: the last run equals an uninterrupted one.

One chain of child processes shares a cache and an output folder, as a user re-running the same
command would: each run is killed by `EVALS_FAULT` (evals.faults) just after its N-th cache commit,
chosen so that the kill lands at planned places of the uninterrupted commit order (inside
duplicate-prompt groups, between repeats, between AIME's first round and its follow-up turns and
inside them, in the image and audio rows), then while scoring, then while writing the run
directory. After each kill: the cache passes SQLite's integrity check, every completion committed
before is still there unchanged (same text, same timestamp), and no run-directory file is half
written. At the end: results and samples equal the uninterrupted run's, the cache holds the same
completions, and the model served no request twice beyond the one in flight at each kill.
Takes about 90 s on two busy cores (21 child processes).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from model_server import ModelServer
from tally import Tally

from runs import cache_rows, evals, generation, half_written, integrity, outcome, run_args

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

TOTAL_ROWS = 78  # distinct completions of the run (84 requests, 6 of them MMLU-Pro duplicates)
# Global commit numbers of the uninterrupted order to kill after, and why each was chosen.
COMMIT_KILLS = {
    1: "MMLU-Pro 900001 repeat 0: its duplicate 990000 not yet copied",
    2: "MMLU-Pro 900001 repeat 1, a duplicate group's second repeat",
    7: "MMLU-Pro 900004 repeat 0 (between repeats)",
    13: "MMLU-Pro 900007 repeat 0",
    20: "last MMLU-Pro commit, before its duplicates are copied and GPQA starts",
    27: "GPQA between repeats",
    35: "AIME, first problem",
    44: "AIME's first round complete, no follow-up turn yet",
    45: "AIME, the first follow-up turn",
    47: "AIME, inside the follow-up turns",
    50: "LiveCodeBench between repeats",
    57: "MMMU-Pro, first image request",
    64: "MMMU-Pro vision setting (the image is the question)",
    70: "MMMU-Pro, last image request",
    72: "CoVoST, audio clip repeat 1",
    77: "CoVoST, one audio request before the end",
}
LATE_KILLS = {
    "score:4": "scoring LiveCodeBench (the sandbox is running programs)",
    "score:6": "scoring CoVoST (corpus BLEU)",
    "write:samples.jsonl": "writing samples.jsonl (run.json and prompts.jsonl already renamed into place)",
    "write:report.html": "writing report.html, the last file",
}


@pytest.fixture(scope="module")
def uninterrupted(
    model_server: ModelServer, smoke_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, int]:
    root = tmp_path_factory.mktemp("uninterrupted")
    before = model_server.total
    done = evals(run_args(model_server.base_url, root / "run", root / "cache.sqlite", smoke_data))
    assert done.returncode == 0, done.stderr
    return root / "run", root / "cache.sqlite", model_server.total - before


def test_uninterrupted_run_covers_every_kill_site(uninterrupted: tuple[Path, Path, int]) -> None:
    out, cache, served = uninterrupted
    stats = generation(out)
    assert served == stats["generated"] == TOTAL_ROWS == len(cache_rows(cache))
    assert stats["shared"] == 6 and stats["requested"] == 84 and stats["failed"] == 0
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sum(s["followup"] is not None for s in samples) == 4  # AIME follow-ups at commits 45-48


def test_twenty_kills_then_resume_equal_an_uninterrupted_run(
    uninterrupted: tuple[Path, Path, int], model_server: ModelServer, smoke_data: Path, tmp_path: Path,
    tally: Tally,
) -> None:  # fmt: skip
    clean_out, clean_cache, _ = uninterrupted
    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    args = run_args(model_server.base_url, out, cache, smoke_data)
    served_before = model_server.total
    kept: dict[str, tuple[str, float]] = {}
    faults = [
        f"commit:{target - previous}"
        for previous, target in zip([0, *COMMIT_KILLS], COMMIT_KILLS, strict=False)
    ]
    faults += list(LATE_KILLS)
    assert len(faults) == 20
    for fault, target in zip(faults, [*COMMIT_KILLS, *LATE_KILLS], strict=True):
        killed = evals(args, fault=fault)
        assert killed.returncode == -signal.SIGKILL, f"{fault} did not kill the run: {killed.stderr[-800:]}"
        rows = cache_rows(cache)
        assert integrity(cache) == "ok"
        assert {k: rows[k] for k in kept} == kept, f"a committed completion changed after {fault}"
        if isinstance(target, int):
            assert len(rows) == target, f"kill at commit {target} left {len(rows)} completions"
        else:
            assert len(rows) == TOTAL_ROWS
        assert half_written(out) == [], f"half-written files after {fault}"
        kept = rows
        tally.add("kill points")
    tally.fault("SIGKILL")

    final = evals(args)
    assert final.returncode == 0, final.stderr
    assert outcome(out) == outcome(clean_out)
    stats = generation(out)
    assert stats["generated"] == 0 and stats["cached"] == stats["requested"] == 84
    assert not list(out.glob("*.tmp")), "a temporary file was left behind"
    clean = {k: json.loads(v[0])["text"] for k, v in cache_rows(clean_cache).items()}
    assert {k: json.loads(v[0])["text"] for k, v in cache_rows(cache).items()} == clean
    # each commit kill may cost the one request already sent while the last one was committed
    twice = model_server.total - served_before - TOTAL_ROWS
    assert 0 <= twice <= len(COMMIT_KILLS), f"{twice} completions generated twice"
    tally.add("requests regenerated after a kill (in flight)", twice)
    tally.lost(len(clean) - len(cache_rows(cache)))
