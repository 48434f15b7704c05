"""The command line's help and flag rules (issue 10 §4, points 1, 6 and 8): every argument of every
subcommand is explained and every subcommand shows an example; `score --help` lists the tasks with
their variants and shows the predictions format; abbreviated flags are refused everywhere; the
cache is described as the SQLite file it is, and `--fresh` exists where completions are generated."""

from __future__ import annotations

import argparse

import pytest

from evals import registry
from evals.cli import build_parser, main


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def help_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_every_subcommand_explains_every_argument_and_shows_an_example() -> None:
    commands = subcommands()
    assert set(commands) == {
        "run",
        "score",
        "report",
        "parity",
        "compare",
        "gate",
        "tasks",
        "backends",
        "cards",
        "export",
        "plan",
        "prefetch",
        "merge",
    }
    for name, parser in commands.items():
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, f"evals {name} {action.option_strings}"
        assert parser.description, name
        assert f"  evals {name}" in parser.format_help().split("example")[1], name


def test_score_help_lists_tasks_with_variants_and_the_predictions_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(capsys, "score")
    assert '{"id": "70", "response": "... The answer is (B).", "repeat": 0, "answer": "B"}' in text
    assert "one JSON object per line" in text
    for name in registry.TASKS:
        variants = registry.task_class(name).variants
        assert variants, name
        line = next(line for line in text.splitlines() if line.startswith(f"  {name}: "))
        assert line == f"  {name}: {', '.join(variants)}"
    for flag in ("--task ", "--variant", "--task-opt KEY=VALUE", "--data [TASK=]PATH", "--output DIR"):
        assert flag in text
    assert "--extractor" not in text and "--guess-unparsed" not in text


PARITY = ("parity", "--a-backend", "hf", "--a-model", "m", "--b-backend", "hf", "--b-model", "m")


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (("run", "--out", "x"), "--out x"),  # --output
        (("run", "--task", "mmlu_pro"), "--task mmlu_pro"),  # --tasks
        (("run", "--backend-op", "dtype=float32"), "--backend-op dtype=float32"),  # --backend-opt
        (("score", "p.jsonl", "--task", "mmlu_pro", "--out", "x"), "--out x"),  # --output
        (("report", "runs/x", "--redact"), "--redact"),  # --redact-questions
        ((*PARITY, "--a-backend-op", "dtype=float32"), "--a-backend-op dtype=float32"),
        ((*PARITY, "--fre"), "--fre"),  # --fresh
        (("tasks", "--he"), "--he"),  # --help
    ],
)
def test_abbreviated_flags_are_refused(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], refused: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"evals: error: unrecognized arguments: {refused} (see --help)"]


def test_every_parser_refuses_abbreviations() -> None:
    assert build_parser().allow_abbrev is False
    assert all(parser.allow_abbrev is False for parser in subcommands().values())


@pytest.mark.parametrize("command", ["run", "parity"])
def test_cache_is_a_shared_sqlite_file_and_fresh_regenerates(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = " ".join(help_of(capsys, command).split())
    assert "--cache FILE SQLite file of cached completions, shared by every run" in text
    assert "(default: $EVALS_CACHE or ~/.cache/evals/completions.sqlite)" in text
    assert (
        "--fresh regenerate every completion, ignoring what the cache holds, and store the new ones" in text
    )


def test_backend_and_task_options_point_to_their_listings(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(help_of(capsys, "run").split())
    assert "--backend-opt KEY=VALUE backend option (repeatable)" in text
    assert "`evals backends` lists every backend's options" in text
    assert "`evals tasks` lists every task's options" in text
    parity = " ".join(help_of(capsys, "parity").split())
    for side in ("a", "b"):
        for flag in ("backend {hf,llamacpp,openai,vllm}", "model", "backend-opt KEY=VALUE"):
            assert f"--{side}-{flag}" in parity
