"""`evals merge` refuses shards that do not make one run, each problem one line and exit code 2:
a missing shard, a shard given twice, shards of different splits, cards, options, models or
protocols, and directories that are not shards. The shards are real (`evals run --shard` on the
stand-in model of tests/test_sharding.py); a model or protocol that differs is an edited copy of a
real shard's run.json, standing in for a shard run with another quantization or task version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_sharding import CARD, EchoBackend

from evals import registry
from evals.cli import main


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """s1, s2: a 2-split; t1, t3: shards 1 and 3 of a 3-split; c2: shard 2/2 of an edited card;
    l2: shard 2/2 with another --limit; whole: an unsharded run."""
    root = tmp_path_factory.mktemp("shards")
    (root / "card.toml").write_text(CARD)
    (root / "other.toml").write_text(CARD.replace('title = "Sharding test card"', 'title = "Edited"'))
    patch = pytest.MonkeyPatch()
    patch.setitem(registry.BACKENDS, "echo", f"{EchoBackend.__module__}:EchoBackend")
    try:
        for name, card, extra in (
            ("s1", "card", ["--shard", "1/2"]),
            ("s2", "card", ["--shard", "2/2"]),
            ("t1", "card", ["--shard", "1/3"]),
            ("t3", "card", ["--shard", "3/3"]),
            ("c2", "other", ["--shard", "2/2"]),
            ("l2", "card", ["--shard", "2/2", "--limit", "3"]),
            ("whole", "card", []),
        ):
            argv = [
                "run",
                "--card",
                str(root / f"{card}.toml"),
                "--no-progress",
                "--output",
                str(root / name),
            ]
            assert main([*argv, "--cache", str(root / "c.sqlite"), *extra]) == 0
    finally:
        patch.undo()
    return root


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["merge", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evals: error: ") and err.count("\n") == 1, err
    return err


def edited_copy(shards: Path, name: str, edit: dict[str, object]) -> Path:
    """A copy of shard `name` whose run.json has the (dotted path -> value) edits."""
    copy = shards / f"{name}-edited-{abs(hash(json.dumps(edit, sort_keys=True)))}"
    shutil.copytree(shards / name, copy)
    record = json.loads((copy / "run.json").read_text())
    for path, value in edit.items():
        *parents, last = path.split(".")
        target = record
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    (copy / "run.json").write_text(json.dumps(record))
    return copy


def test_the_two_shards_merge(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", str(shards / "s2"), str(shards / "s1"), "--out", str(shards / "merged")]) == 0
    assert (shards / "merged" / "results.json").is_file()


def test_a_missing_shard_is_named(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, str(shards / "t1"), str(shards / "t3"))
    assert "shard 2/3 missing (given: 1/3, 3/3); pass all 3 shards" in err
    assert "shard 2/2 missing (given: 1/2)" in refused(capsys, str(shards / "s1"))


def test_overlapping_shards_are_refused(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "shard 1/2 given twice" in refused(
        capsys, str(shards / "s1"), str(shards / "s1"), str(shards / "s2")
    )
    err = refused(capsys, str(shards / "s1"), str(shards / "t1"))
    assert "shards of different splits" in err and "1/2" in err and "1/3" in err


def test_shards_of_different_cards_or_options_are_refused(
    shards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "shards of different cards" in refused(capsys, str(shards / "s1"), str(shards / "c2"))
    err = refused(capsys, str(shards / "s1"), str(shards / "l2"))
    assert "shards run with different options: limit is None" in err and "3 in" in err


def test_shards_of_different_models_or_protocols_are_refused(
    shards: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_model = edited_copy(shards, "s2", {"models.0.fingerprint.model": "echo-model-Q4_K_M"})
    err = refused(capsys, str(shards / "s1"), str(other_model))
    assert "shards of different models for row 'MMLU Pro': model is 'echo-model'" in err
    moved = edited_copy(shards, "s2", {"models.0.fingerprint.location": "/elsewhere/echo"})
    assert main(["merge", str(shards / "s1"), str(moved), "--out", str(shards / "moved")]) == 0  # same model
    other_task = edited_copy(shards, "s2", {"shard.protocols.AIME.task_version": "0"})
    err = refused(capsys, str(shards / "s1"), str(other_task))
    assert "shards of different protocols for row 'AIME': task_version:" in err


def test_what_is_not_a_shard_is_named(
    shards: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "is a whole run, not a shard" in refused(capsys, str(shards / "whole"), str(shards / "s1"))
    assert "is not a shard directory (no run.json)" in refused(capsys, str(tmp_path))
    (tmp_path / "file").write_text("")
    err = refused(capsys, str(shards / "s1"), str(shards / "s2"), "--out", str(tmp_path / "file"))
    assert "--out" in err and "is a file" in err
