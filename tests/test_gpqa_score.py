"""GPQA Diamond through `evals score`: generations that answer by the letters of this harness's own
shuffled prompts (id + repeat) are scored per repeat, and report.html keeps questions redacted
unless asked. Uses the built-in fake questions (no real GPQA row is ever written)."""

from __future__ import annotations

import json
from pathlib import Path

from evals.cli import main
from evals.run_dir import load_run_dir
from tasks.gpqa_diamond import LETTERS, GPQADiamond

REPEATS = 4


def write_generations(path: Path) -> tuple[int, int]:
    """Answer correctly on repeats 0 and 1, wrongly on 2, unparsably on 3. Returns (right, total)."""
    task = GPQADiamond()
    samples = task.load("builtin")
    right = 0
    with path.open("w") as handle:
        for sample in samples:
            for repeat in range(REPEATS):
                gold = LETTERS[task.permutation(sample.id, repeat).index(0)]
                wrong = next(letter for letter in LETTERS if letter != gold)
                response = {
                    0: f"Answer: {gold}",
                    1: f"**Answer: {gold}**",
                    2: f"Answer: {wrong}",
                    3: "not sure",
                }[repeat]
                right += repeat < 2
                line = {
                    "id": sample.id,
                    "repeat": repeat,
                    "response": f"<|channel>thought\nAnswer: {wrong}<channel|>{response}",
                }
                handle.write(json.dumps(line) + "\n")
    return right, len(samples) * REPEATS


def test_gpqa_generations_are_scored_per_repeat(tmp_path: Path, capsys) -> None:
    predictions = tmp_path / "gpqa.jsonl"
    right, total = write_generations(predictions)
    out = tmp_path / "run"
    assert (
        main(["score", str(predictions), "--task", "gpqa_diamond", "--data", "builtin", "--output", str(out)])
        == 0
    )
    run = load_run_dir(out)
    row = run.results.scored[0]
    assert row.summary.n_scores == total and row.summary.value == right / total == 0.5
    assert row.summary.outcomes == {"correct": right, "unparsed": total // REPEATS, "wrong": total // REPEATS}
    assert row.extra_metrics["pass@4"].value == 1.0
    assert row.extra_metrics["maj@4"].value == 1.0  # two right, one wrong, one unanswered
    assert row.public_text is False
    assert {r.details["gold"] for r in run.samples} == set(LETTERS)  # gold letters spread over A-D
    question = GPQADiamond().load("builtin")[0].inputs["question"]
    assert question not in (out / "report.html").read_text()  # redacted by default for GPQA
    assert question not in (out / "report.md").read_text()
    assert main(["report", str(out), "--no-redact-questions"]) == 0
    assert question in (out / "report.html").read_text()
