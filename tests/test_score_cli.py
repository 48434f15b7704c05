"""`evals score` on the published GPT-4o MMLU-Pro outputs (TIGER-Lab, May 2024), end to end.

The outputs embed the dataset rows they were made on; the newer dataset copy changed the answer
of question 3983 and the options of seven questions. Reads the shared real data (tests/realdata.py
says where) and skips with a reason where it is absent. Task options go in as `--task-opt KEY=VALUE`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realdata import GPT4O, GPT4O_GLOB, TEST_PARQUET, needs_real

from evals.cli import main
from evals.records import RowResult
from evals.run_dir import load_run_dir

ROWS_WITH_OUTPUTS = GPT4O_GLOB
NEWER_COPY = str(TEST_PARQUET)

pytestmark = [needs_real, pytest.mark.slow]  # full `evals score` runs over 12,032 outputs: ~40 s in all


@pytest.fixture(scope="module")
def gpt4o_rows() -> list[dict]:
    rows: list[dict] = []
    for path in sorted(GPT4O.glob("*_result.json")):
        rows.extend(json.loads(path.read_text()))
    return rows


@pytest.fixture(scope="module")
def predictions(gpt4o_rows: list[dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("preds") / "gpt4o.jsonl"
    with path.open("w") as handle:
        for row in gpt4o_rows:
            line = {"id": row["question_id"], "response": row["response"], "answer": row["answer"]}
            handle.write(json.dumps(line) + "\n")
    return path


def row_of(out: Path) -> RowResult:
    return load_run_dir(out).results.scored[0]


def score(
    predictions: Path, out: Path, extractor: str, data: str, capsys: pytest.CaptureFixture
) -> tuple[RowResult, str]:
    code = main(["score", str(predictions), "--task", "mmlu_pro", "--task-opt", f"extractor={extractor}",
                 "--data", data, "--output", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    return row_of(out), printed


def test_first_regex_extractor_reproduces_published_preds(
    predictions: Path, gpt4o_rows: list[dict], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    results, printed = score(predictions, tmp_path / "a", "tiger-2024-05", ROWS_WITH_OUTPUTS, capsys)
    assert results.summary.n_samples == 12032
    assert results.summary.outcomes["correct"] == 8671
    assert results.summary.outcomes["unparsed"] == 571
    assert round(100 * results.summary.value, 2) == 72.07
    assert "gold answer differs" not in printed  # scored against the rows the outputs were made on
    stored = {str(r["question_id"]): r["pred"] for r in gpt4o_rows}
    run = load_run_dir(tmp_path / "a")
    assert {record.id: record.extracted for record in run.samples} == stored
    per_category = results.per_category
    assert len(per_category) == 14 and sum(c.n_samples for c in per_category.values()) == 12032
    assert len(run.run.tasks[0].config["data_fingerprint"]) == 64


def test_three_stage_extractor(predictions: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, _ = score(predictions, tmp_path / "b", "tiger", ROWS_WITH_OUTPUTS, capsys)
    assert results.summary.outcomes["correct"] == 8909
    assert round(100 * results.summary.value, 2) == 74.04


def test_newer_dataset_copy_and_gold_drift(
    predictions: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    first, printed = score(predictions, tmp_path / "c", "tiger-2024-05", NEWER_COPY, capsys)
    assert first.summary.outcomes["correct"] == 8670
    assert (
        "gold answer differs from the loaded dataset for 1 question(s): 3983 (predictions: B, dataset: C)"
        in printed
    )
    assert load_run_dir(tmp_path / "c").run.gold_mismatches == [
        {"id": "3983", "predictions": "B", "dataset": "C"}
    ]
    three, _ = score(predictions, tmp_path / "d", "tiger", NEWER_COPY, capsys)
    assert three.summary.outcomes["correct"] == 8908
    score(predictions, tmp_path / "e", "tiger-2024-05", ROWS_WITH_OUTPUTS, capsys)
    fingerprint = {d: load_run_dir(tmp_path / d).run.tasks[0].config["data_fingerprint"] for d in "cde"}
    assert (
        fingerprint["c"] == fingerprint["d"] != fingerprint["e"]
    )  # the two dataset revisions are told apart


def test_guess_credit_is_reported_separately(
    predictions: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["score", str(predictions), "--task", "mmlu_pro", "--task-opt", "extractor=tiger-2024-05",
                 "--data", f"mmlu_pro={ROWS_WITH_OUTPUTS}", "--task-opt", "guess_unparsed=true",
                 "--output", str(tmp_path)])  # fmt: skip
    assert code == 0
    results = row_of(tmp_path)
    assert results.summary.outcomes["correct"] == 8671  # the headline is unchanged
    assert results.accuracy_with_guess_credit is not None
    credited = results.accuracy_with_guess_credit * 12032
    assert 8671 + 30 < credited < 8671 + 90  # about 571 / 10 expected lucky guesses
    assert "random-guess credit" in (tmp_path / "report.md").read_text()
