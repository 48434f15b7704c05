"""Every hub-backed task, without hub access, fails at once with one line that names `--data`:
in offline mode (HF_HUB_OFFLINE=1) and when the hub's address refuses connections. Nothing is
retried and nothing else is printed."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hub_address import closed_hub

from evals.schema import Task
from tasks.aime import AIME
from tasks.covost2 import CoVoST2
from tasks.data import DataError
from tasks.gpqa_diamond import GPQADiamond
from tasks.livecodebench import LiveCodeBench
from tasks.mmlu_pro import MMLUPro
from tasks.mmmu_pro import MMMUPro

HUB_TASKS: dict[str, Callable[[], Task]] = {
    "aime": AIME,
    "aime-2024": lambda: AIME("2024"),
    "gpqa_diamond": GPQADiamond,
    "mmlu_pro": MMLUPro,
    "mmmu_pro": MMMUPro,
    "livecodebench": LiveCodeBench,
    "covost2": CoVoST2,
    "covost2-limited": lambda: CoVoST2(per_language=2),
}
FAST_S = 5.0


def empty_caches(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root / "hub"))


def load_fails_fast(task: Task, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    capfd.readouterr()
    start = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(DataError) as error:
        task.load()
    seconds = time.monotonic() - start
    message = str(error.value)
    assert seconds < FAST_S, f"took {seconds:.1f} s"
    assert "\n" not in message and "--data" in message
    assert capfd.readouterr() == ("", "")
    assert not [r for r in caplog.records if "retry" in r.getMessage().lower()]
    return message


@pytest.mark.parametrize("name", HUB_TASKS)
def test_offline_mode_fails_at_once_with_one_line(name, tmp_path, monkeypatch, capfd, caplog):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    empty_caches(monkeypatch, tmp_path)
    load_fails_fast(HUB_TASKS[name](), capfd, caplog)


@pytest.mark.parametrize("name", HUB_TASKS)
def test_an_unreachable_hub_fails_at_once_with_one_line(name, tmp_path, monkeypatch, capfd, caplog):
    endpoint = closed_hub(monkeypatch)
    empty_caches(monkeypatch, tmp_path)
    message = load_fails_fast(HUB_TASKS[name](), capfd, caplog)
    assert endpoint.removeprefix("http://") in message and "HF_HUB_OFFLINE=1" in message


@pytest.mark.subprocess
def test_offline_environment_in_a_fresh_process(tmp_path):
    """HF_HUB_OFFLINE=1 set before anything is imported, as a user sets it."""
    code = (
        "import time\n"
        "from tasks.gpqa_diamond import GPQADiamond\n"
        "from tasks.data import DataError\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    GPQADiamond().load()\n"
        "except DataError as exc:\n"
        "    print(f'{time.monotonic() - start:.2f}')\n"
        "    print(exc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    seconds, message = done.stdout.splitlines()
    assert float(seconds) < FAST_S and "--data" in message
