"""`evals.load_run`: a real run directory (made by `evals score` on the built-in questions) read
into DataFrames, the lazy export that keeps pandas out of `import evals`, and the example of
docs/notebooks.md run for real on two runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import evals
from evals.cli import main
from evals.records import RecordFormatError
from tasks.aime import AIME
from tasks.mmlu_pro import MMLUPro

DOCS = Path(__file__).resolve().parents[1] / "docs" / "notebooks.md"


def scored_run(
    tmp_path: Path,
    name: str,
    task: str,
    responses: Sequence[tuple[str, int, str]],
    variant: str | None = None,
) -> Path:
    """A run directory written by `evals score` from (id, repeat, response) predictions."""
    predictions = tmp_path / f"{name}.jsonl"
    predictions.write_text(
        "".join(json.dumps({"id": i, "repeat": r, "response": text}) + "\n" for i, r, text in responses)
    )
    out = tmp_path / name
    args = ["score", str(predictions), "--task", task, "--data", "builtin", "--output", str(out)]
    assert main([*args, *(["--variant", variant] if variant else [])]) == 0
    return out


def mmlu_run(tmp_path: Path, name: str, right: Callable[[int], bool | None]) -> Path:
    """MMLU-Pro on its 10 built-in questions: question i answered right, wrong (None: unparsed)."""
    responses = []
    for i, sample in enumerate(MMLUPro().load("builtin")):
        verdict = right(i)
        wrong = "A" if sample.target != "A" else "B"
        text = "no idea" if verdict is None else f"The answer is ({sample.target if verdict else wrong})"
        responses.append((sample.id, 0, text))
    return scored_run(tmp_path, name, "mmlu_pro", responses)


def test_samples_and_results_frames_of_a_real_run(tmp_path: Path) -> None:
    run = mmlu_run(tmp_path, "a", lambda i: True if i < 4 else (None if i >= 7 else False))
    frames = evals.load_run(run)
    s, r = frames.samples, frames.results
    assert len(s) == 10 and list(s.outcome.value_counts().sort_index().items()) == [
        ("correct", 4),
        ("unparsed", 3),
        ("wrong", 3),
    ]
    assert s.value.sum() == 4 and set(s.repeat) == {0} and s.category.notna().all()
    assert (s.extracted.isna() == (s.outcome == "unparsed")).all()
    headline = r[r.scope == "row"].iloc[0]
    assert headline.value == pytest.approx(0.4) and headline.rate_unparsed == pytest.approx(0.3)
    assert headline.ci_low <= 0.4 <= headline.ci_high and headline.n_samples == 10
    # categories in results agree with the samples grouped by category
    categories = r[r.scope == "category"].set_index("name").value
    assert categories.to_dict() == pytest.approx(s.groupby("category").value.mean().to_dict())
    assert frames.run.kind == "score"


def test_repeats_flags_and_numeric_targets(tmp_path: Path) -> None:
    problems = AIME("2026").load("builtin")
    responses = [(p.id, 0, f"so \\boxed{{{p.target}}}") for p in problems]
    responses += [(p.id, 1, f"I think it is {p.target}") for p in problems]  # last-integer fallback
    frames = evals.load_run(scored_run(tmp_path, "aime", "aime", responses, variant="2026"))
    s, r = frames.samples, frames.results
    assert len(s) == 10 and s[s.repeat == 0].target.tolist()[:2] == ["42", "144"]  # integers as text
    assert (s[s.repeat == 1].flag_names == "last_integer_fallback").all() and (
        s[s.repeat == 0].flag_names == ""
    ).all()
    assert set(r[r.scope == "metric"].name) == {"pass@2", "maj@2"}
    assert r[r.scope == "row"].repeats.tolist() == [2]


@pytest.mark.subprocess
def test_import_evals_does_not_import_pandas_until_load_run_is_used() -> None:
    code = (
        "import sys, evals, evals.cli\n"
        "assert 'pandas' not in sys.modules, 'pandas imported at start-up'\n"
        "evals.load_run\n"
        "assert 'pandas' in sys.modules\n"
        "try:\n    evals.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "has no attribute 'no_such_name'" in done.stdout


def test_a_folder_that_is_not_a_run_or_is_of_another_format_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        evals.load_run(tmp_path)
    run = mmlu_run(tmp_path, "a", lambda i: True)
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "format_version": "1.0"}))
    with pytest.raises(RecordFormatError, match=r"run format 1\.0"):
        evals.load_run(run)


def documented_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/notebooks.md should hold one python example"
    return blocks[0]


def test_the_documented_notebook_example_runs_on_two_real_runs(tmp_path: Path, capsys: Any) -> None:
    def rule_a(i: int) -> bool | None:
        return True if i % 2 else None

    def rule_b(i: int) -> bool | None:
        return None if i % 3 == 0 else i != 4

    run_a, run_b = mmlu_run(tmp_path, "a", rule_a), mmlu_run(tmp_path, "b", rule_b)
    code = documented_example().replace("runs/q8_0", str(run_a)).replace("runs/q4_k_m", str(run_b))
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)

    def outcome(rule: Callable[[int], bool | None], i: int) -> str:
        verdict = rule(i)
        return "unparsed" if verdict is None else ("correct" if verdict else "wrong")

    ids = [s.id for s in MMLUPro().load("builtin")]
    expected = {ids[i] for i in range(10) if outcome(rule_a, i) != outcome(rule_b, i)}
    flipped: pd.DataFrame = namespace["flipped"]
    assert set(flipped.id) == expected and len(expected) == 5
    assert set(namespace["lost"].id) == {ids[i] for i in (3, 9)}  # right in a, unparsed in b
    assert set(namespace["unparsed"].id) == {ids[i] for i in range(0, 10, 2)}
    assert namespace["flagged"].empty
    by_category: pd.DataFrame = namespace["by_category"]
    assert by_category["count"].sum() == 10 and by_category["mean"].mean() == pytest.approx(
        namespace["categories"].value.mean()
    )
    printed = capsys.readouterr().out
    assert all(i in printed for i in expected)
