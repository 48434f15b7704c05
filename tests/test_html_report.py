"""report.html: a self-contained page with the card table, charts and failed samples; question
text redacted where the task asks for it (GPQA) or where the user asks."""

from __future__ import annotations

import html
import json
from pathlib import Path

from evals.cli import main
from reports.html import REDACTED, render_html
from tasks.mmlu_pro import MMLUPro


def scored_run(tmp_path: Path) -> Path:
    samples = MMLUPro().load("builtin")
    predictions = tmp_path / "predictions.jsonl"
    with predictions.open("w") as handle:
        for i, sample in enumerate(samples):
            answer = sample.target if i % 2 else "none of these"
            handle.write(json.dumps({"id": sample.id, "response": f"The answer is ({answer})"}) + "\n")
    out = tmp_path / "run"
    assert (
        main(["score", str(predictions), "--task", "mmlu_pro", "--data", "builtin", "--output", str(out)])
        == 0
    )
    return out


def test_html_report_shows_failed_samples_and_a_chart(tmp_path: Path) -> None:
    out = scored_run(tmp_path)
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "Card table" in page
    first_question = MMLUPro().load("builtin")[0].inputs["question"]
    assert first_question in page  # MMLU-Pro text is public: shown by default
    assert page.count("class='unparsed'") == 5  # the five unanswered samples are listed


def test_redaction_by_request_and_by_task(tmp_path: Path) -> None:
    out = scored_run(tmp_path)
    first_question = MMLUPro().load("builtin")[0].inputs["question"]
    assert main(["report", str(out), "--redact-questions"]) == 0
    page = (out / "report.html").read_text()
    assert first_question not in page and html.escape(REDACTED) in page
    # a task whose rows must stay out of plain text is redacted unless the user says otherwise
    results = json.loads((out / "results.json").read_text())
    rows = [dict(results["rows"][0], public_text=False)]
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert first_question not in render_html({}, rows, records)
    assert first_question in render_html({}, rows, records, redact=False)


def test_report_of_a_missing_run_directory_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
