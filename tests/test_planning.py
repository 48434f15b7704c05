"""Planning a run: rows of a card selected with --tasks keep the card's settings; every input named
on the command line is checked before data or models load; rescoring builds requests once per sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.cli import main
from evals.planning import RunOptions, card_for, check_inputs
from evals.rescore import ScoreOptions, score
from tasks.mmlu_pro import MMLUPro


def test_card_rows_selected_by_task_keep_the_cards_settings() -> None:
    card = card_for(RunOptions(card="gemma-4-12b-it", tasks=["mmlu_pro", "aime"]))
    assert [row.task for row in card.rows] == ["mmlu_pro", "aime"]
    assert card.name == "gemma-4-12b-it" and card.rows[0].published == 77.2
    assert card.rows[1].repeats == 4 and card.rows[1].settings["max_tokens"].value == 65536


def test_a_task_that_is_not_a_row_of_the_card_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="card 'gemma-4-12b-it' has no row for 'covost'"):
        card_for(RunOptions(card="gemma-4-12b-it", tasks=["covost"]))
    assert main(["run", "--card", "gemma-4-12b-it", "--tasks", "mmlu_pro,covost2x"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_without_a_card_tasks_need_a_model_and_nothing_means_the_smoke_card() -> None:
    assert card_for(RunOptions()).name == "smoke"
    with pytest.raises(ValueError, match="needs --model"):
        card_for(RunOptions(tasks=["mmlu_pro"]))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            RunOptions(tasks=["mmlu_pro"], model="/nonexistent/model"),
            "model '/nonexistent/model' is not a local",
        ),
        (RunOptions(tasks=["mmlu_pro"], model="builtin:nope"), "unknown built-in model 'builtin:nope'"),
        (
            RunOptions(tasks=["mmlu_pro"], model="org/name", data={"mmlu_pro": "/no/such"}),
            "--data mmlu_pro=/no/such",
        ),
        (RunOptions(tasks=["mmlu_pro"], model="org/name", variant="nope"), "unknown mmlu_pro variant"),
        (RunOptions(tasks=["mmlu_pro"], model="org/name", task_options={"nope": 1}), "option 'nope'"),
        (RunOptions(backend_options={"batch_sise": 2}), "backend 'hf' has no option 'batch_sise'"),
        (RunOptions(backend_options={"batch_size": 2.5}), "option 'batch_size' takes"),
    ],
)
def test_inputs_are_checked_before_anything_loads(options: RunOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_inputs(card_for(options), options)


def test_a_bad_model_path_fails_before_the_dataset_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[object] = []
    monkeypatch.setattr(MMLUPro, "load", lambda self, *a, **k: loaded.append(a) or [])
    code = main(
        ["run", "--tasks", "mmlu_pro", "--model", "/nonexistent/model", "--output", str(tmp_path / "r")]
    )
    assert code == 2 and loaded == []
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/nonexistent/model" in err


def test_rescoring_builds_requests_once_per_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = MMLUPro.requests
    monkeypatch.setattr(MMLUPro, "requests", lambda self, s, *a: calls.append(s.id) or original(self, s, *a))
    ids = [s.id for s in MMLUPro().load("builtin")][:3]
    lines = [{"id": i, "response": "The answer is (A)", "repeat": r} for i in ids for r in range(8)]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    outcome = score(
        ScoreOptions(task="mmlu_pro", predictions=predictions, data="builtin", output=tmp_path / "run")
    )
    assert sorted(calls) == sorted(ids)  # not 1 + 2 + ... + 8 calls per sample
    assert outcome.result.summary.n_scores == 24
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 24 and "prompt" not in records[0] and len({r["prompt_id"] for r in records}) == 3


def test_score_writes_a_run_directory_by_default_like_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (sample,) = MMLUPro().load("builtin", limit=1)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(json.dumps({"id": sample.id, "response": "The answer is (A)"}) + "\n")
    assert main(["score", str(predictions), "--task", "mmlu_pro", "--data", "builtin"]) == 0
    (out,) = (tmp_path / "runs").iterdir()
    assert out.name.startswith("score-mmlu_pro-") and (out / "results.json").is_file()
    printed = capsys.readouterr().out
    assert f"run directory: {Path('runs') / out.name}" in printed and "report.html" in printed
