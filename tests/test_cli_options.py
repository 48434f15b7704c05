"""One way to say each thing on the command line (issue 10 §4, points 2-5 and 8): task options only
as `--task-opt KEY=VALUE`, local data as `--data [TASK=]PATH` on every subcommand, a model on a
backend as `--backend B --model M` (parity: `--a-backend/--a-model`, `--b-backend/--b-model`), and
`--fresh` regenerating what the cache holds. Generation runs against the real OpenAI-compatible stub
server on loopback (tests/openai_stub_server.py), through `evals.cli.main` in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_stub_server import Reply, StubServer

from evals.cli import main
from evals.records import RowResult
from evals.run_dir import load_run_dir

SMOKE_MMLU = Path(__file__).resolve().parents[1] / "tasks" / "smoke_data" / "mmlu_pro.jsonl"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(default=Reply(text="The answer is (B).")) as server:
        yield server


def evals(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def predictions(tmp_path: Path) -> Path:
    """One prediction per builtin MMLU-Pro sample: one right, one unparsed, the rest answer (A)."""
    rows = [json.loads(line) for line in SMOKE_MMLU.read_text().splitlines() if line.strip()]
    path = tmp_path / "preds.jsonl"
    lines = []
    for number, row in enumerate(rows):
        response = {0: f"The answer is ({row['answer']})", 1: "no idea."}.get(number, "The answer is (A)")
        lines.append(json.dumps({"id": row["question_id"], "response": response, "repeat": 0}))
    path.write_text("\n".join(lines) + "\n")
    return path


def results_of(out: Path) -> RowResult:
    return load_run_dir(out).results.scored[0]


@pytest.mark.parametrize(
    "args",
    [
        ("score", "p.jsonl", "--task", "mmlu_pro", "--extractor", "tiger"),
        ("score", "p.jsonl", "--task", "mmlu_pro", "--guess-unparsed"),
        ("run", "--tasks", "mmlu_pro", "--model", "m", "--extractor", "tiger"),
        ("parity", "--a", "hf:m", "--b", "hf:m"),
    ],
)
def test_removed_second_ways_are_unknown_flags(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _, err = evals(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("(see --help)")
    assert "unrecognized arguments" in lines[0] or "required" in lines[0]


def test_score_takes_task_options_as_task_opt(
    capsys: pytest.CaptureFixture[str], predictions: Path, tmp_path: Path
) -> None:
    plain, credited = tmp_path / "plain", tmp_path / "credited"
    base = [
        "score",
        str(predictions),
        "--task",
        "mmlu_pro",
        "--data",
        "builtin",
        "--task-opt",
        "extractor=tiger",
    ]
    assert evals(capsys, *base, "--output", str(plain))[0] == 0
    code, _, _ = evals(capsys, *base, "--task-opt", "guess_unparsed=true", "--output", str(credited))
    assert code == 0 and "random-guess credit" in (credited / "report.md").read_text()
    assert results_of(plain).summary.outcomes == results_of(credited).summary.outcomes
    assert results_of(plain).summary.outcomes["unparsed"] == 1
    assert results_of(plain).accuracy_with_guess_credit is None
    assert results_of(credited).accuracy_with_guess_credit is not None
    assert results_of(plain).protocol.config["extractor"]["name"] == "tiger"


def test_score_data_is_path_or_task_equals_path(
    capsys: pytest.CaptureFixture[str], predictions: Path, tmp_path: Path
) -> None:
    bare, named = tmp_path / "bare", tmp_path / "named"
    base = ["score", str(predictions), "--task", "mmlu_pro"]
    assert evals(capsys, *base, "--data", "builtin", "--output", str(bare))[0] == 0
    assert evals(capsys, *base, "--data", "mmlu_pro=builtin", "--output", str(named))[0] == 0
    assert results_of(bare).summary.outcomes == results_of(named).summary.outcomes
    assert results_of(bare).protocol.data_fingerprint == results_of(named).protocol.data_fingerprint
    code, _, err = evals(capsys, *base, "--data", "aime=builtin")
    assert code == 2
    assert err.strip() == (
        "evals: error: --data aime=...: `evals score` scores only 'mmlu_pro'; "
        "use --data PATH or --data mmlu_pro=PATH"
    )


def run_args(stub: StubServer, cache: Path, out: Path) -> list[str]:
    return ["run", "--tasks", "mmlu_pro", "--data", "mmlu_pro=builtin", "--limit", "2",
            "--backend", "openai", "--model", "stub-model", "--backend-opt", f"base_url={stub.base_url}",
            "--backend-opt", "concurrency=1", "--cache", str(cache), "--output", str(out),
            "--no-progress"]  # fmt: skip


def generation(out: Path) -> tuple[int, int]:
    info = load_run_dir(out).run.generation
    return info.cached, info.generated


def test_run_fresh_regenerates_and_stores(
    capsys: pytest.CaptureFixture[str], stub: StubServer, tmp_path: Path
) -> None:
    cache = tmp_path / "completions.sqlite"
    assert evals(capsys, *run_args(stub, cache, tmp_path / "first"))[0] == 0
    assert generation(tmp_path / "first") == (0, 2)
    assert cache.is_file()  # --cache names the SQLite file itself
    assert evals(capsys, *run_args(stub, cache, tmp_path / "cached"))[0] == 0
    assert generation(tmp_path / "cached") == (2, 0)
    calls = sum(stub.calls.values())
    code, out, _ = evals(capsys, *run_args(stub, cache, tmp_path / "fresh"), "--fresh")
    assert code == 0 and "0 cached, 2 generated" in out
    assert generation(tmp_path / "fresh") == (0, 2) and sum(stub.calls.values()) == calls + 2
    assert evals(capsys, *run_args(stub, cache, tmp_path / "after"))[0] == 0
    assert generation(tmp_path / "after") == (2, 0)


def test_parity_names_each_side_by_backend_and_model(
    capsys: pytest.CaptureFixture[str], stub: StubServer, tmp_path: Path
) -> None:
    report = tmp_path / "parity.json"
    code, _, err = evals(
        capsys, "parity",
        "--a-backend", "openai", "--a-model", "stub-model", "--a-backend-opt", f"base_url={stub.base_url}",
        "--b-backend", "openai", "--b-model", "stub-model", "--b-backend-opt", f"base_url={stub.base_url}",
        "--b-backend-opt", "concurrency=1", "--tasks", "mmlu_pro", "--data", "builtin", "--limit", "2",
        "--cache", str(tmp_path / "cache.sqlite"), "--no-progress", "--json", str(report),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["a"] == {"backend": "openai", "model": "stub-model", "options": {"base_url": stub.base_url}}
    assert data["b"]["options"] == {"base_url": stub.base_url, "concurrency": 1}
    assert data["token_level"] is False  # openai renders no prompt ids: answers only
    assert data["rows"][0]["answers_agree"]["total"] == 2
    assert (tmp_path / "cache.sqlite").is_file()


def test_parity_takes_task_options(
    capsys: pytest.CaptureFixture[str], stub: StubServer, tmp_path: Path
) -> None:
    """`--task-opt` reaches parity's tasks: a name no task takes is the same one line as on `run`."""
    code, _, err = evals(
        capsys, "parity",
        "--a-backend", "openai", "--a-model", "stub-model", "--a-backend-opt", f"base_url={stub.base_url}",
        "--b-backend", "openai", "--b-model", "stub-model", "--b-backend-opt", f"base_url={stub.base_url}",
        "--tasks", "mmlu_pro", "--data", "builtin", "--limit", "1", "--task-opt", "bogus=1",
        "--cache", str(tmp_path / "cache.sqlite"), "--no-progress",
    )  # fmt: skip
    assert code == 2
    assert err.strip().splitlines() == [
        "evals: error: no task of this run takes the option 'bogus' (tasks: mmlu_pro)"
    ]
