"""Bad input gets one clear line on stderr and exit code 2: through `evals.cli.main` in this process
(argparse's own errors included), and once through a child Python without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.cli import main


def evals(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's errors and --help
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("run", "--tasks", "nope", "--model", "x"), "unknown task 'nope'"),
        (("run", "--card", "nope"), "card 'nope' not found"),
        (("run", "--limit", "0"), "must be a positive integer"),
        (("run", "--frobnicate"), "unrecognized arguments: --frobnicate (see --help)"),
        (("run", "--backend", "nope"), "argument --backend: invalid choice: 'nope'"),
        (
            ("score", "missing.jsonl", "--task", "mmlu_pro", "--data", "builtin"),
            "missing.jsonl does not exist",
        ),
        (("score", "x.jsonl", "--task", "nope"), "unknown task 'nope'"),
        (("run", "--tasks", "mmlu_pro"), "--tasks without --card needs --model"),
        (("run", "--tasks", "mmlu_pro", "--model", "x", "--variant", "zero-shot"), "zero-shot"),
        (
            ("run", "--tasks", "mmlu_pro", "--model", "x", "--data", "/no/such/file.parquet"),
            "/no/such/file.parquet",
        ),
        (("run", "--tasks", "mmlu_pro", "--model", "x", "--data", "nope=x"), "unknown task 'nope'"),
        (
            ("run", "--tasks", "aime", "--model", "x", "--task-opt", "bogus=1"),
            "no task of this run takes the option",
        ),
        (("score", "x.jsonl", "--task", "aime", "--task-opt", "bogus=1"), "its options: last_chance, strict"),
        (("run", "--tasks", "aime", "--model", "x", "--task-opt", "strict"), "--task-opt expects KEY=VALUE"),
        (
            ("run", "--tasks", "mmlu_pro", "--model", "x", "--data", "builtin", "--backend-opt", "foo=1"),
            "backend 'hf' has no option 'foo'",
        ),
        (
            ("parity", "--a-backend", "nope", "--a-model", "x", "--b-backend", "hf", "--b-model", "x"),
            "argument --a-backend: invalid choice: 'nope'",
        ),
        (
            ("parity", "--a-backend", "hf", "--a-model", "x"),
            "the following arguments are required: --b-backend",
        ),
        (
            (
                "parity",
                "--a-backend",
                "hf",
                "--a-model",
                "x",
                "--b-backend",
                "hf",
                "--b-model",
                "x",
                "--a-backend-opt",
                "bogus=1",
            ),
            "backend 'hf' has no option 'bogus'",
        ),
        (
            (
                "parity",
                "--a-backend",
                "hf",
                "--a-model",
                "x",
                "--b-backend",
                "hf",
                "--b-model",
                "x",
                "--b-backend-opt",
                "bogus",
            ),
            "--b-backend-opt expects KEY=VALUE",
        ),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str
) -> None:
    code, _, err = evals(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]


def test_bad_prediction_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1"}) + "\n")
    code, _, err = evals(capsys, "score", str(bad), "--task", "mmlu_pro", "--data", "builtin")
    assert code == 2 and "bad.jsonl: record 1 needs" in err
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"id": "no-such-id", "response": "The answer is (A)"}) + "\n")
    code, _, err = evals(capsys, "score", str(unknown), "--task", "mmlu_pro", "--data", "builtin")
    assert code == 2 and "not in the loaded dataset" in err


@pytest.mark.subprocess
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
