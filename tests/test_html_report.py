"""report.html without a browser (tests/test_report_browser.py drives a real one): the card chart,
the card table, every sample in the embedded JSON data, question text redacted where the task asks
for it (GPQA) or where the user asks, control characters and "</script>" in model output made
harmless, and the page size of a 12,032-sample run."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evals.cli import main
from evals.records import Results, SampleRecord
from evals.run_dir import load_run_dir
from reports.html import REDACTED, render_html
from reports.html_text import esc
from tasks.mmlu_pro import MMLUPro

DATA_BLOCK = re.compile(r"<script type='application/json' id='samples-data'>(.*?)</script>", re.S)


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


def page_data(page: str) -> dict[str, Any]:
    blocks = DATA_BLOCK.findall(page)
    assert len(blocks) == 1
    data: dict[str, Any] = json.loads(blocks[0])
    return data


def test_html_report_has_the_card_chart_the_table_and_every_sample(tmp_path: Path) -> None:
    out = scored_run(tmp_path)
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "Card table" in page
    assert page.index("id='card-chart'") < page.index("<table class='card'>")  # the chart comes first
    assert "http://" not in page and "https://" not in page and " src=" not in page  # self-contained
    data = page_data(page)
    assert len(data["samples"]) == 10
    assert [s["o"] for s in data["samples"]].count("unparsed") == 5
    first_question = MMLUPro().load("builtin")[0].inputs["question"]
    assert any(first_question in prompt for prompt in data["prompts"])  # MMLU-Pro text is public


def test_redaction_by_request_and_by_task(tmp_path: Path) -> None:
    out = scored_run(tmp_path, noise="model-text-marker ")
    first_question = MMLUPro().load("builtin")[0].inputs["question"]
    assert main(["report", str(out), "--redact-questions"]) == 0
    page = (out / "report.html").read_text()
    assert first_question not in page and "model-text-marker" not in page  # nor in the JSON data
    assert page_data(page)["redacted"].startswith(REDACTED[:-1])  # what each sample shows instead
    assert page_data(page)["prompts"] == []
    # a task whose rows must stay out of plain text is redacted unless the user says otherwise
    run = load_run_dir(out)
    private = Results(run.results.header, [replace(run.results.scored[0], public_text=False)])
    hidden = render_html(private, run.samples, run.prompts)
    assert first_question not in hidden and "model-text-marker" not in hidden
    assert len(page_data(hidden)["samples"]) == 10  # every sample is still listed
    shown = render_html(private, run.samples, run.prompts, redact=False)
    assert first_question in json.dumps(page_data(shown), ensure_ascii=False)
    assert "model-text-marker" in shown


def test_control_characters_and_script_tags_in_model_output(tmp_path: Path) -> None:
    noise = "\x00\x1b[31m\x85\x9b</script><script>alert(1)</script>&<!--"
    out = scored_run(tmp_path, noise=noise)
    page = (out / "report.html").read_text()
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", page)  # no raw control character
    assert page.count("</script") == 2 and "<!--" not in page  # only the page's own two script blocks
    answers = [s["a"] for s in page_data(page)["samples"]]
    assert all(a.startswith(noise) for a in answers)  # the data keeps the text exactly
    # server-rendered text shows them as visible escapes (the script does the same: see the browser test)
    assert esc("a\x00b\x1bc\x85d\x9be\rf\r\ng\th") == "a\\x00b\\x1bc\\x85d\\x9be\\x0df\r\ng\th"
    label = render_html(_relabel(load_run_dir(out), "row\x1b[0m"), [], {})
    assert "row\\x1b[0m" in label and "\x1b" not in label


def _relabel(run: Any, label: str) -> Results:
    return Results(run.results.header, [replace(run.results.scored[0], label=label)])


@pytest.mark.slow  # renders 12,032 samples: a few seconds
def test_a_12032_question_run_stays_a_usable_size(tmp_path: Path) -> None:
    """GPT-4o's MMLU-Pro outputs average 1,529 characters; 5-shot prompts share ~4,500 characters."""
    run = load_run_dir(scored_run(tmp_path))
    template = run.samples[0]
    shots = "".join(f"Question: example {k}\n" + "Worked answer. " * 60 + "\n\n" for k in range(5))
    prompts: dict[str, Any] = {}
    samples: list[SampleRecord] = []
    for i in range(12_032):
        prompts[f"p{i}"] = shots + f"Question: question {i}?\nOptions:\n" + "An option here.\n" * 30
        answer = f"Start {i}. " + "Reasoning step by step. " * 62 + f"The answer is (B). End {i}."
        samples.append(replace(template, id=str(i), prompt_id=f"p{i}", answer=answer, category=f"c{i % 14}"))
    started = time.perf_counter()
    page = render_html(run.results, samples, prompts)
    seconds = time.perf_counter() - started
    size = len(page.encode())
    assert size < 22_000_000, size  # about 19 MB for the real GPT-4o run (docs/report.md)
    data = page_data(page)
    assert len(data["samples"]) == 12_032
    last = data["samples"][-1]
    assert last["a"].startswith("Start 12031.") and last["a"].endswith("End 12031.")  # both ends kept
    assert data["prompts"][-1].rstrip().endswith("An option here.")
    assert "question 12031?" in data["prompts"][-1] and "example 0" not in data["prompts"][-1]
    assert seconds < 20
