"""`evals run` child processes for the reliability suite, and what the tests read back from them.

Every run is the smoke card on its built-in data (MMLU-Pro's questions copied with three of them
duplicated under new ids, so that identical prompts form groups), every row with two repeats,
AIME's last-chance follow-ups on, and the media rows (MMMU-Pro images, CoVoST clips) sent as
image and audio parts, through the "openai" backend to `model_server.ModelServer` one request at
a time. `EVALS_FAULT` (evals.faults) kills or fails the child at a chosen point.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SMOKE_MMLU = REPO / "tasks" / "smoke_data" / "mmlu_pro.jsonl"
DUPLICATED = 3  # MMLU-Pro questions copied under a second id
FILES = ("run.json", "results.json", "samples.jsonl", "prompts.jsonl", "report.md", "report.html")
# what differs between two runs of the same completions: timings, dates, cache/generation counts
VOLATILE = {"seconds", "wall_seconds", "started", "finished", "cost", "tokens_per_second", "elapsed"}


def mmlu_with_duplicates(folder: Path) -> Path:
    rows = [json.loads(line) for line in SMOKE_MMLU.read_text().splitlines() if line.strip()]
    twins = [{**row, "question_id": 990000 + i} for i, row in enumerate(rows[:DUPLICATED])]
    path = folder / "mmlu_pro.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows + twins))
    return path


def run_args(base_url: str, out: Path, cache: Path, data: Path, *extra: str, tasks: str = "") -> list[str]:
    """The command line of a run; `tasks` (comma-separated) runs only those rows of the card."""
    chosen = ["--tasks", tasks] if tasks else []
    if not tasks or "aime" in tasks:
        chosen += ["--task-opt", "last_chance=true"]
    return [
        "run", "--card", "smoke", *chosen, "--backend", "openai", "--model", "reliability-model",
        "--backend-opt", f"base_url={base_url}", "--backend-opt", "concurrency=1",
        "--backend-opt", "max_retries=0", "--repeats", "2",
        "--data", f"mmlu_pro={data}", "--cache", str(cache), "--output", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def child_env(fault: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "EVALS_FAULT"}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = str(REPO)
    if fault:
        env["EVALS_FAULT"] = fault
    return env


def evals(
    args: list[str], fault: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evals.cli", *args],
        capture_output=True, text=True, env=child_env(fault), timeout=timeout, cwd=REPO,
    )  # fmt: skip


def start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "evals.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), cwd=REPO,
    )  # fmt: skip


def cache_rows(cache: Path) -> dict[str, tuple[str, float]]:
    """cache key -> (stored completion, created timestamp); {} before the table exists."""
    if not cache.exists():
        return {}
    with sqlite3.connect(cache, timeout=30) as db:
        try:
            rows = db.execute("SELECT cache_key, completion, created FROM completions").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {key: (blob, created) for key, blob, created in rows}


def integrity(cache: Path) -> str:
    with sqlite3.connect(cache, timeout=30) as db:
        result = db.execute("PRAGMA integrity_check").fetchone()[0]
        for (blob,) in db.execute("SELECT completion FROM completions"):
            json.loads(blob)  # every stored completion parses
    return str(result)


def strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: strip(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [strip(v) for v in data]
    return data


def outcome(out: Path) -> dict[str, Any]:
    """What must be identical between two runs of the same completions: results and samples."""
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    samples.sort(key=lambda s: (s["row"], s["id"], s["repeat"]))
    return {"results": strip(results["rows"]), "samples": strip(samples)}


def half_written(out: Path) -> list[str]:
    """Files of a run directory that exist but do not parse completely (there must be none)."""
    bad = []
    for name in FILES:
        path = out / name
        if not path.exists():
            continue
        text = path.read_text()
        try:
            if name.endswith(".json"):
                json.loads(text)
            elif name.endswith(".jsonl"):
                [json.loads(line) for line in text.splitlines() if line.strip()]
            elif name == "report.html" and not text.rstrip().endswith("</html>"):
                raise ValueError("truncated")
        except ValueError:
            bad.append(name)
    return bad


def generation(out: Path) -> dict[str, int]:
    return dict(json.loads((out / "run.json").read_text())["generation"])
