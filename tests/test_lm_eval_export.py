"""`export_lm_eval`: a run directory written in lm-evaluation-harness's results/samples layout and
read back with lm-eval's own helpers (result file discovery, task names from file names, its
results schema and `make_table`) and `datasets`' JSON loader, as lm-eval's tracker intends.

Runs are made by `evals score` on the built-in questions (MMLU-Pro: 10; GPQA: its smoke rows)."""

from __future__ import annotations

import json
from pathlib import Path

import lm_eval.utils as lm_eval_utils
import pytest

from evals.cli import main
from evals.interop.lm_eval_export import INVALID, REDACTED, export_lm_eval
from evals.run_dir import load_run_dir
from tasks.gpqa_diamond import GPQADiamond
from tasks.mmlu_pro import MMLUPro


def scored_run(tmp: Path, task: str, responses: dict[str, str]) -> Path:
    predictions = tmp / f"{task}.jsonl"
    predictions.write_text("".join(json.dumps({"id": i, "response": r}) + "\n" for i, r in responses.items()))
    out = tmp / f"run-{task}"
    args = ["score", str(predictions), "--task", task, "--data", "builtin", "--output", str(out)]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def mmlu_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], dict[str, str]]:
    tmp = tmp_path_factory.mktemp("lm-eval-export")
    samples = MMLUPro().load("builtin")
    # right on the first 6, wrong on the next 2, no readable answer on the last 2
    responses = {}
    for i, s in enumerate(samples):
        target = str(s.target)
        wrong = "A" if target != "A" else "B"
        responses[s.id] = (
            f"The answer is ({target})." if i < 6 else f"The answer is ({wrong})." if i < 8 else "No idea."
        )
    run = scored_run(tmp, "mmlu_pro", responses)
    files = export_lm_eval(load_run_dir(run), tmp / "lm-eval")
    return run, files, responses


def test_files_are_found_and_named_by_lm_evals_own_helpers(mmlu_export) -> None:
    _, files, _ = mmlu_export
    names = [str(f) for f in files]
    results = lm_eval_utils.get_results_filenames(names)
    samples = lm_eval_utils.get_sample_results_filenames(names)
    assert len(results) == 1 and len(samples) == 1
    assert lm_eval_utils.get_latest_filename(results) == results[0]
    assert lm_eval_utils.get_file_task_name(Path(samples[0]).name) == "mmlu_pro"
    assert Path(results[0]).parent.name == lm_eval_utils.sanitize_model_name(Path(results[0]).parent.name)


def test_results_follow_lm_evals_schema_and_render_with_make_table(mmlu_export) -> None:
    from lm_eval.result_schema import EvalResults

    run, files, _ = mmlu_export
    data = json.loads(next(f for f in files if f.name.startswith("results_")).read_text())
    assert set(data) <= set(EvalResults.__annotations__), set(data) - set(EvalResults.__annotations__)
    row = load_run_dir(run).results.scored[0]
    entry = data["results"]["mmlu_pro"]
    assert entry["accuracy,none"] == pytest.approx(row.summary.value) == pytest.approx(0.6)
    assert entry["accuracy_stderr,none"] == pytest.approx(row.summary.stderr)
    assert data["versions"]["mmlu_pro"] == row.task_version
    assert data["n-samples"]["mmlu_pro"] == {"original": 10, "effective": 10}
    assert (
        data["configs"]["mmlu_pro"]["generation_kwargs"]["max_gen_toks"]
        == row.protocol.sampling["max_tokens"]
    )
    subtasks = data["group_subtasks"]["mmlu_pro"]
    assert sorted(subtasks) == sorted(f"mmlu_pro_{c.replace(' ', '_')}" for c in row.per_category)
    table = lm_eval_utils.make_table(data)
    assert "|mmlu_pro " in table and "| -  - " not in table and "| - biology " in table
    assert "|accuracy|↑  |  0.6|±  |0.1633|" in table


def test_samples_load_with_datasets_and_carry_the_extracted_letters(mmlu_export) -> None:
    import datasets

    run, files, responses = mmlu_export
    path = next(f for f in files if f.name.startswith("samples_"))
    loaded = datasets.load_dataset("json", data_files=str(path), split="train")
    assert len(loaded) == 10
    records = {r.id: r for r in load_run_dir(run).samples}
    for item in loaded:
        record = records[item["doc"]["id"]]
        assert item["resps"] == [[responses[record.id]]]
        assert item["filtered_resps"] == [record.extracted or INVALID]
        assert item["accuracy"] == record.value
        assert item["arguments"]["gen_args_0"]["arg_0"].endswith("Answer: Let's think step by step.") or (
            "Question" in item["arguments"]["gen_args_0"]["arg_0"]
        )
    assert sum(item["filtered_resps"] == [INVALID] for item in loaded) == 2
    data = json.loads(next(f for f in files if f.name.startswith("results_")).read_text())
    lines = path.read_text().splitlines()
    expected = lm_eval_utils.hash_string(
        "".join(
            json.loads(x)["doc_hash"] + json.loads(x)["prompt_hash"] + json.loads(x)["target_hash"]
            for x in lines
        )
    )
    assert data["task_hashes"]["mmlu_pro"] == expected


def test_gpqa_question_text_stays_out_of_the_export(tmp_path: Path) -> None:
    samples = GPQADiamond().load("builtin")
    run = scored_run(tmp_path, "gpqa_diamond", {s.id: "Answer: A" for s in samples})
    files = export_lm_eval(load_run_dir(run), tmp_path / "out")
    text = "".join(f.read_text() for f in files)
    assert REDACTED in text
    for sample in samples:
        assert sample.inputs["question"] not in text
