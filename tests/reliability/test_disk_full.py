"""A full disk while writing the cache or the run directory: one clear line, nothing half written,
the cache still readable, and the same command completes once there is space again.

Real full filesystems where this process may mount one (root, as on the development machine): a
small tmpfs holds the cache, or the run directory, and is grown afterwards (`mount -o remount`).
Where mounting is not allowed the tmpfs tests skip with the reason, and the same faults are
injected instead (`EVALS_FAULT=...:enospc`, evals.faults), which always run. About 45 s.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from model_server import ModelServer
from tally import Tally

from runs import FILES, cache_rows, evals, generation, half_written, integrity, outcome, run_args

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

TOTAL_ROWS = 78


@contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'not root'}); "
                    "the injected-ENOSPC tests cover the same paths")  # fmt: skip
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


def one_clear_line(stderr: str, *words: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("evals: error: "), stderr
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def check_rerun(server: ModelServer, args: list[str], out: Path, reference: Path, kept: int) -> None:
    rerun = evals(args)
    assert rerun.returncode == 0, rerun.stderr
    assert outcome(out) == outcome(reference)
    assert generation(out)["generated"] == TOTAL_ROWS - kept  # what was committed is not generated again
    assert not list(out.glob("*.tmp"))


@pytest.fixture(scope="module")
def reference(model_server: ModelServer, smoke_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    done = evals(run_args(model_server.base_url, root / "run", root / "cache.sqlite", smoke_data))
    assert done.returncode == 0, done.stderr
    return root / "run"


def test_cache_on_a_full_disk(
    model_server: ModelServer, smoke_data: Path, reference: Path, tmp_path: Path, tally: Tally
) -> None:
    with small_disk(tmp_path / "disk", "160k") as disk:
        cache = disk / "cache.sqlite"
        args = run_args(model_server.base_url, tmp_path / "run", cache, smoke_data)
        full = evals(args)
        assert full.returncode == 2
        one_clear_line(full.stderr, str(cache), "full", "free disk space", "--cache")
        assert integrity(cache) == "ok"
        kept = len(cache_rows(cache))
        assert 0 < kept < TOTAL_ROWS, "the disk must fill midway"
        grow(disk)
        check_rerun(model_server, args, tmp_path / "run", reference, kept)
    tally.fault("disk full (cache, tmpfs)")


def test_run_directory_on_a_full_disk(
    model_server: ModelServer, smoke_data: Path, reference: Path, tmp_path: Path, tally: Tally
) -> None:
    with small_disk(tmp_path / "disk", "48k") as disk:
        out = disk / "run"
        args = run_args(model_server.base_url, out, tmp_path / "cache.sqlite", smoke_data)
        full = evals(args)
        assert full.returncode == 2
        one_clear_line(full.stderr, "No space left on device")
        assert half_written(out) == [] and not list(out.glob("*.tmp"))
        assert not all((out / name).exists() for name in FILES), "the disk must fill before the end"
        assert integrity(tmp_path / "cache.sqlite") == "ok"
        grow(disk)
        check_rerun(model_server, args, out, reference, TOTAL_ROWS)
    tally.fault("disk full (run directory, tmpfs)")


@pytest.mark.parametrize(
    "fault, words",
    [
        ("commit:30:enospc", ["No space left on device", "injected"]),
        ("write:samples.jsonl:enospc", ["No space left on device", "samples.jsonl"]),
    ],
)
def test_injected_enospc(
    model_server: ModelServer, smoke_data: Path, reference: Path, tmp_path: Path, tally: Tally,
    fault: str, words: list[str],
) -> None:  # fmt: skip
    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    args = run_args(model_server.base_url, out, cache, smoke_data)
    failed = evals(args, fault=fault)
    assert failed.returncode == 2
    one_clear_line(failed.stderr, *words)
    assert integrity(cache) == "ok" and half_written(out) == [] and not list(out.glob("*.tmp"))
    kept = len(cache_rows(cache))
    check_rerun(model_server, args, out, reference, kept)
    tally.fault(f"injected ENOSPC ({fault.split(':')[0]})")


def test_a_cache_file_that_is_not_a_database(model_server: ModelServer, smoke_data: Path, tmp_path: Path,
                                             tally: Tally) -> None:  # fmt: skip
    cache = tmp_path / "cache.sqlite"
    cache.write_bytes(b"this is not an SQLite database, it was overwritten by something else\n" * 100)
    failed = evals(run_args(model_server.base_url, tmp_path / "run", cache, smoke_data, tasks="gpqa_diamond"))
    assert failed.returncode == 2
    one_clear_line(failed.stderr, str(cache), "not a database", "--cache")
    tally.fault("cache file damaged")
