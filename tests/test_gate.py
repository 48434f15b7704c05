"""`evals gate`: the rule, exit codes, step summary, JUnit XML and bad input, on real run directories.

Cheap runs are made by `evals score` of prediction files on the built-in MMLU-Pro questions (a
baseline that answers every question right, a candidate made worse on purpose by truncating or
changing its answers); the slow tests run the real `ci-gate` card with SmolLM2 twice (the second
from the completion cache) and run the `evals` commands of the README's workflow.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from evals.cli import main
from evals.gate import verdict
from evals.gate_records import INCONCLUSIVE, PASS, REGRESSION
from tasks.mmlu_pro import MMLUPro

REPO = Path(__file__).resolve().parents[1]
SAMPLES = MMLUPro().load("builtin")  # 10 questions
REASONING = "Let me work through each option in turn before I answer. "


def response(target: str, *, wrong: bool = False, truncate: int | None = None) -> str:
    answer = "Z" if wrong else target
    text = f"{REASONING}The answer is ({answer})."
    return text[:truncate] if truncate is not None else text


def score_run(
    out: Path, make: Callable[[int, str], str], ids: range = range(len(SAMPLES)), *opts: str
) -> Path:
    predictions = out.with_suffix(".jsonl")
    with predictions.open("w") as handle:
        for i in ids:
            sample = SAMPLES[i]
            handle.write(json.dumps({"id": sample.id, "response": make(i, str(sample.target))}) + "\n")
    args = ["score", str(predictions), "--task", "mmlu_pro", "--data", "builtin", "--output", str(out)]
    assert main([*args, *opts]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate-runs")
    return {
        "baseline": score_run(root / "baseline", lambda i, t: response(t)),
        "rescored": score_run(root / "rescored", lambda i, t: response(t)),
        # a token budget that cuts every answer off before "The answer is" on 6 of 10 questions
        "truncated": score_run(root / "truncated", lambda i, t: response(t, truncate=30 if i < 6 else None)),
        "one_wrong": score_run(root / "one_wrong", lambda i, t: response(t, wrong=i == 0)),
        "tiny_base": score_run(root / "tiny_base", lambda i, t: response(t), range(3)),
        "tiny_worse": score_run(root / "tiny_worse", lambda i, t: response(t, wrong=i == 0), range(3)),
        "other_half": score_run(root / "other_half", lambda i, t: response(t), range(5, 10)),
        "first_half": score_run(root / "first_half", lambda i, t: response(t), range(5)),
        "tiger": score_run(
            root / "tiger", lambda i, t: response(t), range(10), "--task-opt", "extractor=tiger"
        ),
    }


def gate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["gate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_row(out: str) -> list[str]:
    """The cells of the summary table's (only) row."""
    (line,) = [line for line in out.splitlines() if line.startswith("| mmlu_pro |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


# --- the rule on numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "lower", "upper", "margin", "expected"),
    [
        (0.0, 0.0, 0.0, 0.0, PASS),  # identical runs
        (-60.0, -80.0, -40.0, 0.0, REGRESSION),  # supported drop beyond the margin
        (-60.0, -80.0, -40.0, 70.0, INCONCLUSIVE),  # supported drop, but within the margin
        (-60.0, -80.0, -40.0, 80.0, PASS),  # non-inferior at a margin of 80 points
        (-33.3, -100.0, 0.0, 0.0, INCONCLUSIVE),  # tiny subset: the upper bound touches 0
        (-10.0, -30.0, 0.0, 50.0, PASS),
        (5.0, -10.0, 20.0, 0.0, INCONCLUSIVE),  # better on average, but a drop is not ruled out
        (5.0, 1.0, 9.0, 0.0, PASS),
        (-1.0, -1.5, -0.5, 2.0, PASS),  # a supported drop smaller than the margin, shown to be small
    ],
)
def test_the_rule(diff: float, lower: float, upper: float, margin: float, expected: str) -> None:
    assert verdict(diff, lower, upper, margin)[0] == expected


# --- real runs made by `evals score` ------------------------------------------------------------


def test_a_run_passes_against_itself_and_a_rescore(runs: dict[str, Path], capsys) -> None:
    for candidate in (runs["baseline"], runs["rescored"]):
        code, out, err = gate(capsys, "--baseline", runs["baseline"], "--candidate", candidate)
        assert (code, err) == (0, "")
        assert out.startswith("### evals gate: PASS (1 pass)")
        assert table_row(out) == ["mmlu_pro", "10", "100.0", "100.0", "+0.0 [+0.0, +0.0]", "0.0", "pass"]


def test_truncated_answers_are_a_regression(runs: dict[str, Path], capsys, tmp_path: Path) -> None:
    junit = tmp_path / "gate.xml"
    code, out, _ = gate(
        capsys, "--baseline", runs["baseline"], "--candidate", runs["truncated"], "--junit", junit
    )
    assert code == 1
    assert out.startswith("### evals gate: FAIL (1 regression)")
    cells = table_row(out)
    assert (
        cells[2:4] == ["100.0", "40.0"] and cells[4].startswith("-60.0 [") and cells[-1] == "**regression**"
    )
    upper = float(cells[4].split(",")[1].strip(" ]"))
    assert upper < 0
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == "mmlu_pro"
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "regression"
    # a margin wider than the drop turns it into "not shown to be that bad": inconclusive, exit 0
    code, out, _ = gate(capsys, "--baseline", runs["baseline"], "--candidate", runs["truncated"],
                        "--margin", "mmlu_pro=70")  # fmt: skip
    assert code == 0 and table_row(out)[-2:] == ["70.0", "inconclusive"]


def test_one_flip_is_inconclusive_until_a_margin_covers_it(runs: dict[str, Path], capsys) -> None:
    code, out, _ = gate(capsys, "--baseline", runs["baseline"], "--candidate", runs["one_wrong"])
    assert code == 0 and table_row(out)[-1] == "inconclusive"
    code, out, _ = gate(capsys, "--baseline", runs["baseline"], "--candidate", runs["one_wrong"],
                        "--margin", "mmlu_pro=35", "--strict")  # fmt: skip
    assert code == 0 and table_row(out)[-2:] == ["35.0", "pass"]


def test_tiny_subset_is_inconclusive_and_strict_fails_it(
    runs: dict[str, Path], capsys, tmp_path: Path
) -> None:
    junit = tmp_path / "gate.xml"
    args = ("--baseline", runs["tiny_base"], "--candidate", runs["tiny_worse"], "--junit", junit)
    code, out, _ = gate(capsys, *args)
    assert code == 0 and out.startswith("### evals gate: PASS (1 inconclusive)")
    cells = table_row(out)
    assert cells[1:4] == ["3", "100.0", "66.7"] and cells[-1] == "inconclusive"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("skipped"), suite.get("failures")) == ("1", "0")
    assert suite.find("testcase/skipped") is not None and suite.find("testcase/failure") is None

    code, out, _ = gate(capsys, *args, "--strict")
    assert code == 1 and out.startswith("### evals gate: FAIL (1 inconclusive)")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("skipped"), suite.get("failures")) == ("0", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("type") == "inconclusive"


def test_summary_is_appended_to_the_step_summary(
    runs: dict[str, Path], capsys, monkeypatch, tmp_path
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _, first, _ = gate(capsys, "--baseline", runs["baseline"], "--candidate", runs["rescored"])
    _, second, _ = gate(capsys, "--baseline", runs["baseline"], "--candidate", runs["truncated"])
    assert summary.read_text() == f"# earlier step\n{first}\n{second}\n"
    assert "Rule: regression: upper bound < 0 and diff < -margin" in first


@pytest.mark.parametrize(
    ("baseline", "candidate", "extra", "message"),
    [
        ("first_half", "other_half", (), "have no samples in common"),
        ("baseline", "tiger", (), "different protocol"),
        ("baseline", "missing", (), "is not a run directory"),
        ("baseline", "old_format", (), "run format 1 (unversioned)"),
        ("baseline", "rescored", ("--margin", "gpqa_diamond=2"), "no row 'gpqa_diamond' in both runs"),
        ("baseline", "rescored", ("--margin", "mmlu_pro=-1"), "--margin expects ROW=POINTS"),
        ("baseline", "rescored", ("--margin", "mmlu_pro"), "--margin expects ROW=POINTS"),
        ("baseline", "rescored", ("--alpha", "0.5"), "--alpha 0.5: must be between 0 and 0.5"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    runs: dict[str, Path], capsys, tmp_path: Path, baseline: str, candidate: str, extra: tuple, message: str
) -> None:
    if candidate == "old_format":
        shutil.copytree(runs["baseline"], tmp_path / candidate)
        results = tmp_path / candidate / "results.json"
        data = json.loads(results.read_text())
        del data["format_version"]
        results.write_text(json.dumps(data))
    paths = {**runs, "missing": tmp_path / "missing", "old_format": tmp_path / "old_format"}
    code, out, err = gate(capsys, "--baseline", paths[baseline], "--candidate", paths[candidate], *extra)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("evals: error: ") and message in err, err


def test_a_protocol_difference_is_gated_when_allowed_and_flagged(runs: dict[str, Path], capsys) -> None:
    code, out, _ = gate(
        capsys, "--baseline", runs["baseline"], "--candidate", runs["tiger"], "--allow-protocol-diff"
    )
    assert code == 0
    assert "compared despite protocol differences (--allow-protocol-diff): config.extractor" in out


# --- the real ci-gate card, and the README's workflow ---------------------------------------------


def readme_workflow_commands() -> list[str]:
    """The `run:` commands of the YAML block in the README's gate section that call `evals`."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- gate-section -->")[1].split("<!-- /gate-section -->")[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    commands = [m.strip() for m in re.findall(r"^\s*(?:-\s+)?run:\s*(.+)$", block, flags=re.MULTILINE)]
    assert commands and commands[0].startswith("pip install"), commands  # installing is not run here
    return [command for command in commands if command.startswith("evals ")]


def test_the_readme_workflow_runs_the_card_then_gates_it() -> None:
    commands = readme_workflow_commands()
    assert [shlex.split(c)[:2] for c in commands] == [["evals", "run"], ["evals", "gate"]]
    assert "--card ci-gate" in commands[0] and "--junit gate.xml" in commands[1]


@pytest.mark.slow
@pytest.mark.subprocess
def test_ci_gate_card_rerun_from_the_cache_passes_the_readme_workflow(
    tmp_path: Path, smollm2_gguf: Path
) -> None:
    """The baseline is `evals run --card ci-gate` as the README says to commit it; then the README's
    workflow commands run verbatim in that folder: the candidate comes from the cache, the gate passes."""
    env = {**os.environ, "EVALS_CACHE": str(tmp_path / "cache.sqlite"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}  # fmt: skip
    evals = [sys.executable, "-m", "evals.cli"]

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)

    baseline = run([*evals, "run", "--card", "ci-gate", "--output", "ci/baseline", "--no-progress"])
    assert baseline.returncode == 0, baseline.stderr[-2000:]
    assert "0 cached, 26 generated" in baseline.stdout
    results = []
    for command in readme_workflow_commands():
        results.append(run([*evals, *shlex.split(command)[1:]]))
        assert results[-1].returncode == 0, (command, results[-1].stdout, results[-1].stderr[-2000:])
    assert "26 cached, 0 generated" in results[0].stdout
    assert results[1].stdout.startswith("### evals gate: PASS (4 pass)")
    assert (tmp_path / "summary.md").read_text() == results[1].stdout + "\n"
    suite = ET.parse(tmp_path / "gate.xml").getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [
        "MMLU Pro (built-in questions)",
        "GPQA Diamond (built-in questions)",
        "AIME (built-in problems)",
        "LiveCodeBench (built-in problems)",
    ]
    assert all(case.find("failure") is None and case.find("skipped") is None for case in cases)


def test_corpus_bleu_row_is_gated_on_recomputed_corpus_bleu(tmp_path: Path, capsys) -> None:
    """A corpus BLEU row's interval comes from evals.compare's resampling (utterances resampled, corpus
    score recomputed) at the gate's own level: 90% two-sided for the default alpha 0.05."""
    from tasks.covost2 import CoVoST2

    runs = []
    for name, drop in (("ref", 0), ("cand", 2)):
        predictions = tmp_path / f"{name}.jsonl"
        with predictions.open("w") as handle:
            for sample in CoVoST2().load("builtin"):
                words = sample.target.split()
                answer = f"{sample.inputs['source_sentence']}\nEnglish: {' '.join(words[: max(1, len(words) - drop)])}"
                handle.write(json.dumps({"id": sample.id, "response": answer}) + "\n")
        runs.append(tmp_path / name)
        assert (
            main(
                [
                    "score",
                    str(predictions),
                    "--task",
                    "covost2",
                    "--data",
                    "builtin",
                    "--output",
                    str(runs[-1]),
                ]
            )
            == 0
        )
    capsys.readouterr()
    code, out, _ = gate(capsys, "--baseline", runs[0], "--candidate", runs[1])
    assert code == 1 and out.startswith("### evals gate: FAIL (1 regression)") and "95% lower, upper" in out
    code, out, _ = gate(capsys, "--baseline", runs[0], "--candidate", runs[1], "--alpha", "0.025")
    assert code == 1 and out.startswith("### evals gate: FAIL (1 regression)") and "97.5% lower, upper" in out
