"""Bad input gets one clear line on stderr and exit code 2, through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def evals(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evals.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("run", "--tasks", "nope", "--model", "x"), "unknown task 'nope'"),
        (("run", "--card", "nope"), "card 'nope' not found"),
        (("run", "--limit", "0"), "must be a positive integer"),
        (("run", "--frobnicate"), "unrecognized arguments: --frobnicate"),
        (
            ("score", "missing.jsonl", "--task", "mmlu_pro", "--data", "builtin"),
            "missing.jsonl does not exist",
        ),
        (("score", "x.jsonl", "--task", "nope"), "unknown task 'nope'"),
        (("run", "--tasks", "mmlu_pro"), "--tasks needs --model"),
        (("run", "--tasks", "mmlu_pro", "--model", "x", "--variant", "zero-shot"), "zero-shot"),
        (
            ("run", "--tasks", "mmlu_pro", "--model", "x", "--data", "/no/such/file.parquet"),
            "/no/such/file.parquet",
        ),
        (
            ("run", "--tasks", "aime", "--model", "x", "--task-opt", "bogus=1"),
            "no task of this run takes the option",
        ),
        (("score", "x.jsonl", "--task", "aime", "--task-opt", "bogus=1"), "its options: last_chance, strict"),
        (("run", "--tasks", "aime", "--model", "x", "--task-opt", "strict"), "--task-opt expects KEY=VALUE"),
        (
            ("run", "--tasks", "mmlu_pro", "--model", "x", "--data", "builtin", "--backend-opt", "foo=1"),
            "backend 'hf' has no option 'foo'; its options: batch_size",
        ),
        (("parity", "--a", "nope:x", "--b", "hf:x"), "'nope:x' is not BACKEND:MODEL"),
        (
            ("parity", "--a", "hf:x", "--b", "hf:x", "--a-opt", "bogus=1"),
            "backend 'hf' has no option 'bogus'",
        ),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(args: tuple[str, ...], needle: str) -> None:
    result = evals(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_bad_prediction_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1"}) + "\n")
    result = evals("score", str(bad), "--task", "mmlu_pro", "--data", "builtin")
    assert result.returncode == 2 and "bad.jsonl: record 1 needs" in result.stderr
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"id": "no-such-id", "response": "The answer is (A)"}) + "\n")
    result = evals("score", str(unknown), "--task", "mmlu_pro", "--data", "builtin")
    assert result.returncode == 2 and "not in the loaded dataset" in result.stderr


def test_listing_commands() -> None:
    tasks = evals("tasks")
    assert tasks.returncode == 0 and "mmlu_pro" in tasks.stdout and "tiger-5shot" in tasks.stdout
    cards = evals("cards")
    assert cards.returncode == 0 and "gemma-4-12b-it" in cards.stdout and "CoVoST" in cards.stdout


def test_backend_without_its_packages_names_the_extra() -> None:
    """As on a machine with only the base install: torch cannot be imported."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from evals.cli import main\n"
        "sys.exit(main(['run', '--tasks', 'mmlu_pro', '--model', 'x', '--data', 'builtin', '--limit', '1']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "evals: error: backend 'hf' needs the package 'torch'; install it with: pip install -e '.[hf]'"
    )
