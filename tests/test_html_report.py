"""report.html: a self-contained page with the card table, charts and failed samples; question
text redacted where the task asks for it (GPQA) or where the user asks."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from pathlib import Path

from evals.cli import main
from evals.records import Results
from evals.run_dir import load_run_dir
from reports.html import REDACTED, render_html
from tasks.mmlu_pro import MMLUPro


def scored_run(tmp_path: Path, noise: str = "") -> Path:
    samples = MMLUPro().load("builtin")
    predictions = tmp_path / "predictions.jsonl"
    with predictions.open("w") as handle:
        for i, sample in enumerate(samples):
            answer = sample.target if i % 2 else "none of these"
            handle.write(json.dumps({"id": sample.id, "response": f"{noise}The answer is ({answer})"}) + "\n")
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
    run = load_run_dir(out)
    private = Results(run.results.header, [replace(run.results.scored[0], public_text=False)])
    assert first_question not in render_html(private, run.samples, run.prompts)
    assert first_question in render_html(private, run.samples, run.prompts, redact=False)


def test_control_characters_in_model_output_are_escaped(tmp_path: Path) -> None:
    out = scored_run(tmp_path, noise="\x00\x1b[31m")
    page = (out / "report.html").read_text()
    assert "\x00" not in page and "\x1b" not in page
    assert "\\x00\\x1b[31m" in page


def test_report_of_a_missing_run_directory_is_one_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
