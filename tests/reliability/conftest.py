"""The reliability suite's tally: each test adds what it tried (kill points, fault kinds, concurrent
runs, fuzzed inputs) and what it found lost or silently wrong, and the session's summary prints it.

Fixtures: `tally` (add counts), `model_server` (a deterministic stand-in model over HTTP, one per
module) and `smoke_data` (the MMLU-Pro file with duplicated questions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from model_server import ModelServer
from tally import Tally

from runs import mmlu_with_duplicates

_TALLY = pytest.StashKey[Counter[str]]()
_KINDS = pytest.StashKey[set[str]]()
SHOWN = ("kill points", "concurrent runs", "fuzzed inputs", "property examples")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_TALLY] = Counter()
    config.stash[_KINDS] = set()


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    return Tally(request.config.stash[_TALLY], request.config.stash[_KINDS])


@pytest.fixture(scope="module")
def model_server() -> Iterator[ModelServer]:
    with ModelServer() as server:
        yield server


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mmlu_with_duplicates(tmp_path_factory.mktemp("data"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    counts, kinds = config.stash.get(_TALLY, Counter()), config.stash.get(_KINDS, set())
    if not counts and not kinds:
        return
    failed = len(terminalreporter.stats.get("failed", [])) + len(terminalreporter.stats.get("error", []))
    terminalreporter.section("reliability", sep="-")
    names = [*SHOWN, *(n for n in counts if n not in SHOWN and n != "lost or silently wrong")]
    tried = ", ".join(f"{counts[name]} {name}" for name in names)
    terminalreporter.write_line(f"tried: {tried}; {len(kinds)} fault kinds ({', '.join(sorted(kinds))})")
    if not counts["kill points"]:
        terminalreporter.write_line(
            "kill points, concurrent runs and disk faults are in the slow tiers: add --all"
        )
    wrong = counts["lost or silently wrong"]
    if failed or wrong:
        terminalreporter.write_line(f"NOT PROVEN: {failed} failed tests, {wrong} completions lost or wrong")
    else:
        terminalreporter.write_line(
            "nothing lost, nothing silently wrong; generated twice only what was in flight at a kill "
            "or pending in both concurrent runs"
        )
