"""`evals export`: parquet files that read back into the frames of `evals.load_run`, a model-index
block that huggingface_hub's own model-card parser reads back to the run's numbers, the lm-eval
dispatch, and bad input as one line. Run directories are real: `evals score` on the built-in
questions, and (server tier) `evals run` on llama.cpp with SmolLM2 and repeats."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from test_load_run import mmlu_run, scored_run

import evals
from evals.cli import main
from evals.export import LM_EVAL_WRITER
from evals.export_model_index import pinned_revision
from evals.export_parquet import RUN_METADATA_KEY
from evals.run_dir import load_run_dir
from tasks.aime import AIME
from tasks.aime import UNPINNED as AIME_UNPINNED
from tasks.livecodebench import HUB_REVISION as LCB_REVISION
from tasks.mmlu_pro import HUB_REVISION as MMLU_PRO_REVISION


def export(capsys: Any, *args: str) -> list[Path]:
    capsys.readouterr()  # what made the run
    assert main(["export", *args]) == 0
    return [Path(line) for line in capsys.readouterr().out.splitlines()]


def one_line_error(capsys: Any, *args: str) -> str:
    capsys.readouterr()
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def aime_run(tmp_path: Path) -> Path:
    """AIME 2026 built-in problems, two repeats: the first boxed and right, the second read by the
    last-integer fallback and wrong on problem 1."""
    problems = AIME("2026").load("builtin")
    responses = [(p.id, 0, f"\\boxed{{{p.target}}}") for p in problems]
    responses += [(p.id, 1, f"maybe {int(p.target) + (p.id == '1')}") for p in problems]
    return scored_run(tmp_path, "aime", "aime", responses, variant="2026")


def test_parquet_round_trip(tmp_path: Path, capsys: Any) -> None:
    run = aime_run(tmp_path)
    written = export(capsys, str(run), "--to", "parquet", "--out", str(tmp_path / "pq"))
    assert [p.name for p in written] == ["samples.parquet", "results.parquet"]
    frames = evals.load_run(run)
    pd.testing.assert_frame_equal(pd.read_parquet(written[0]), frames.samples)
    pd.testing.assert_frame_equal(pd.read_parquet(written[1]), frames.results)
    back = pd.read_parquet(written[0])
    assert len(back) == 10 and back.value.sum() == 9 and set(back.flag_names) == {"", "last_integer_fallback"}
    run_json = json.loads(pq.read_schema(written[1]).metadata[RUN_METADATA_KEY])
    assert run_json == json.loads((run / "run.json").read_text())


def test_default_output_folder_is_inside_the_run(tmp_path: Path, capsys: Any) -> None:
    run = mmlu_run(tmp_path, "a", lambda i: i < 3)
    written = export(capsys, str(run), "--to", "parquet")
    assert all(p.parent == run / "exports" / "parquet" and p.is_file() for p in written)


def test_model_index_reads_back_through_huggingface_hub(tmp_path: Path, capsys: Any) -> None:
    run = aime_run(tmp_path)
    url = "https://example.org/evals/runs/aime"
    readme, alone = export(
        capsys, str(run), "--to", "model-index", "--model-name", "org/model", "--source-url", url
    )
    card = ModelCard.load(readme)  # the hub library's own parser and validation
    assert card.data.model_name == "org/model"
    row = load_run_dir(run).results.scored[0]
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == {"accuracy", "pass@2", "maj@2"}
    headline = results["accuracy"]
    assert headline.metric_value == round(row.summary.value * 100, 2) == 90.0
    assert headline.task_type == "text-generation" and headline.dataset_type == "MathArena/aime_2026"
    assert headline.dataset_split == "train" and headline.dataset_revision is None  # built-in data
    assert "built-in" in headline.dataset_name or "builtin" in headline.dataset_name
    assert headline.verified is False and headline.source_url == url
    assert results["pass@2"].metric_value == 100.0
    # model-index.yaml is the same block as the README's front matter
    block = yaml.safe_load(alone.read_text())["model-index"]
    name, again = model_index_to_eval_results(block)
    assert name == "org/model" and again == card.data.eval_results
    assert "| AIME" in readme.read_text() or "| aime" in readme.read_text()


def test_model_index_without_a_source_url_has_no_source(tmp_path: Path, capsys: Any) -> None:
    run = mmlu_run(tmp_path, "a", lambda i: i < 7)
    readme, _ = export(capsys, str(run), "--to", "model-index")
    block = yaml.safe_load(readme.read_text().split("---\n")[1])["model-index"]
    assert "source" not in block[0]["results"][0]
    (result,) = ModelCard.load(readme).data.eval_results
    assert result.metric_value == 70.0 and result.dataset_type == "TIGER-Lab/MMLU-Pro"


def test_only_a_pinned_commit_is_written_as_the_dataset_revision() -> None:
    assert pinned_revision(MMLU_PRO_REVISION) and pinned_revision(LCB_REVISION)
    assert not pinned_revision(AIME_UNPINNED) and not pinned_revision("main") and not pinned_revision(None)


def test_lm_eval_dispatch(tmp_path: Path, capsys: Any) -> None:
    run = mmlu_run(tmp_path, "a", lambda i: i < 5)
    if importlib.util.find_spec(LM_EVAL_WRITER) is None:
        assert "--to lm-eval is not available" in one_line_error(capsys, str(run), "--to", "lm-eval")
        return
    written = export(capsys, str(run), "--to", "lm-eval", "--out", str(tmp_path / "lm"))
    assert written and all(p.is_file() and p.is_relative_to(tmp_path / "lm") for p in written)


def test_bad_input_is_one_line(tmp_path: Path, capsys: Any) -> None:
    run = mmlu_run(tmp_path, "a", lambda i: True)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["export", str(run), "--to", "csv"])
    assert exited.value.code == 2 and "invalid choice: 'csv'" in capsys.readouterr().err
    assert "not a run directory" in one_line_error(capsys, str(tmp_path), "--to", "parquet")
    (tmp_path / "file").write_text("")
    assert "is a file" in one_line_error(capsys, str(run), "--to", "parquet", "--out", str(tmp_path / "file"))
    assert "--model-name applies to --to model-index only" in one_line_error(
        capsys, str(run), "--to", "parquet", "--model-name", "x"
    )


def test_a_real_generation_run_exports(
    tmp_path: Path, capsys: Any, llama_server_binary: Path, smollm2_gguf: Path, monkeypatch: Any
) -> None:
    """`evals run` on llama.cpp (SmolLM2, two rows, two repeats): both formats carry the model and
    every row; the parquet files equal the frames."""
    monkeypatch.setenv("EVALS_CACHE", str(tmp_path / "cache.sqlite"))
    out = tmp_path / "run"
    args = ["run", "--tasks", "mmlu_pro,gpqa_diamond", "--model", str(smollm2_gguf), "--backend", "llamacpp",
            "--backend-opt", "ctx_size=1024", "--data", "builtin", "--limit", "1", "--repeats", "2",
            "--max-tokens", "8", "--no-progress",
            "--output", str(out)]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    frames = evals.load_run(out)
    assert len(frames.samples) == 4 and (frames.samples.completion_tokens > 0).all()
    samples, results = export(capsys, str(out), "--to", "parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(samples), frames.samples)
    pd.testing.assert_frame_equal(pd.read_parquet(results), frames.results)
    readme, _ = export(capsys, str(out), "--to", "model-index")
    card = ModelCard.load(readme)
    assert card.data.model_name == str(smollm2_gguf)
    assert {r.dataset_type for r in card.data.eval_results} == {"TIGER-Lab/MMLU-Pro", "Idavidrein/gpqa"}
    gpqa = next(r for r in card.data.eval_results if r.dataset_type == "Idavidrein/gpqa")
    assert gpqa.dataset_config == "gpqa_diamond" or gpqa.dataset_config is None
