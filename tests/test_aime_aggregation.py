"""AIME aggregation end to end through `evals score`, against MathArena's published per-problem
table for AIME 2025 I (per-problem accuracy over 4 runs, then the mean over problems): runs that
reproduce each published per-problem accuracy, scored on the real 2025 I problems, must give the
published average for every model (avg@4), plus pass@4 and maj@4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realdata import SHARED

from evals.rescore import ScoreOptions, score

AIME = SHARED / "realdata" / "aime"
TABLE = AIME / "matharena_ai_aime2025I_per_problem_accuracy_table.json"
PROBLEMS = AIME / "matharena" / "aime_2025_I"
RUNS = 4

pytestmark = pytest.mark.realdata(TABLE, PROBLEMS)


def published() -> dict[str, tuple[list[float], float]]:
    rows = json.loads(TABLE.read_text())
    per_problem = sorted((r for r in rows if isinstance(r["question"], int)), key=lambda r: r["question"])
    average = next(r for r in rows if r["question"] == "Avg")
    models = [k for k in average if k != "question"]
    return {m: ([r[m] for r in per_problem], float(average[m])) for m in models}


def answers() -> dict[int, int]:
    lines = (PROBLEMS / "answers.csv").read_text().split()[1:]
    return {int(i): int(a) for i, a in (line.split(",") for line in lines)}


def write_runs(path: Path, accuracies: list[float]) -> None:
    gold = answers()
    with path.open("w") as handle:
        for number, accuracy in enumerate(accuracies, 1):
            right = round(accuracy * RUNS / 100)
            for repeat in range(RUNS):
                answer = gold[number] if repeat < right else (gold[number] + 1) % 1000
                response = f"<|channel>thought\nwork, maybe \\boxed{{{gold[number]}}}<channel|>So \\boxed{{{answer}}}"
                line = {"id": f"2025_I_{number}", "repeat": repeat, "response": response}
                handle.write(json.dumps(line) + "\n")


def test_published_averages_are_reproduced(tmp_path: Path) -> None:
    table = published()
    assert len(table) == 16
    for number, (model, (accuracies, average)) in enumerate(table.items()):
        predictions = tmp_path / "runs.jsonl"
        write_runs(predictions, accuracies)
        data, out = str(AIME / "matharena"), tmp_path / f"run-{number}"
        outcome = score(
            ScoreOptions(task="aime", variant="2025", predictions=predictions, data=data, output=out)
        )
        result = outcome.result
        assert result.summary.n_samples == 15 and result.summary.n_scores == 60
        assert 100 * result.summary.value == pytest.approx(average), model
        assert result.extra["pass@4"].value == pytest.approx(sum(a > 0 for a in accuracies) / 15), model
        # the correct runs come first, so a 2-2 tie goes to the correct answer
        assert result.extra["maj@4"].value == pytest.approx(sum(a >= 50 for a in accuracies) / 15), model
        assert outcome.missing_samples == 15  # AIME 2025 II has no runs in this table


def test_unknown_ids_are_named_with_an_example_of_a_valid_one(tmp_path: Path) -> None:
    predictions = tmp_path / "runs.jsonl"
    predictions.write_text(json.dumps({"id": "I-1", "response": "\\boxed{1}"}) + "\n")
    options = ScoreOptions(
        task="aime",
        variant="2025",
        predictions=predictions,
        data=str(AIME / "matharena"),
        output=tmp_path / "o",
    )
    with pytest.raises(ValueError, match=r"I-1.*ids look like '2025_I_1'") as error:
        score(options)
    assert "\n" not in str(error.value)
