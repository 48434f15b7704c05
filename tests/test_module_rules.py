"""The code's layout rules, read from the source with `ast` (nothing is imported or run):

- no module in evals/, tasks/, runners/ or reports/ is over `MAX_LINES` lines;
- tasks/ never imports runners/ or reports/, and of evals/ only the contract (evals.schema);
- runners/ never imports tasks/ or reports/, and of evals/ only the contract;
- reports/ imports of the other packages only the records (evals.records, evals.comparison_records,
  evals.gate_records);
- the contract (evals/schema.py), the run records (evals/records.py) and the gate records
  (evals/gate_records.py) import only the standard library,
  and the comparison records only the standard library and the run records;
- the programs that run inside the sandbox (its in-child supervisor and LiveCodeBench's driver) import
  only the standard library: they run with `python -I -S` or as a lone `main.py`, outside the package.

Every import counts: module level, inside functions (lazy imports) and under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("evals", "tasks", "runners", "reports")
MAX_LINES = 600
CONTRACT = "evals.schema"
# the run, comparison and gate records: what reports read
RECORDS = ("evals.records", "evals.comparison_records", "evals.gate_records")
STDLIB_ONLY = (
    "evals/schema.py",
    "evals/records.py",
    "evals/comparison_records.py",
    "evals/gate_records.py",
    "tasks/sandbox_child.py",
    "tasks/lcb_driver.py",
)
ALSO_ALLOWED = {"evals/comparison_records.py": ("evals.records",)}  # leaf modules they may import


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository
    line: int
    module: str  # the full dotted name imported (`from a import b` gives a.b when a.b is a module)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module}"


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _is_module(dotted: str, root: Path) -> bool:
    """Whether `dotted` names a module or package under `root`."""
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _package_of(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts if path.name == "__init__.py" else parts[:-1]


def imports(path: Path, root: Path = REPO) -> list[Import]:
    """Every module `path` imports; `from pkg import name` counts as `pkg.name` when that is a module
    under `root`, so `from evals import stats` is told apart from `from evals import schema`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    relative = str(path.relative_to(root))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Import(relative, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the module's package
                package = _package_of(path, root)
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(Import(relative, node.lineno, full if _is_module(full, root) else base))
    return list(dict.fromkeys(found))  # `from a import b, c` of one module counts once


def _top(module: str) -> str:
    return module.split(".")[0]


def _crossing(package: str, forbidden: tuple[str, ...]) -> list[Import]:
    """Imports from `package` of the `forbidden` packages, or of evals/ other than the contract."""
    bad = []
    for path in modules(package):
        for item in imports(path):
            contract = item.module == CONTRACT or item.module.startswith(CONTRACT + ".")
            if _top(item.module) in forbidden or (_top(item.module) == "evals" and not contract):
                bad.append(item)
    return bad


def _listing(items: list[Import]) -> str:
    return "\n  ".join(str(item) for item in items)


def test_no_module_is_over_the_line_limit() -> None:
    counts = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in modules(package)
    }
    over = sorted((n, path) for path, n in counts.items() if n > MAX_LINES)
    assert not over, f"modules over {MAX_LINES} lines (split them):\n  " + "\n  ".join(
        f"{path}: {n} lines" for n, path in reversed(over)
    )


def test_tasks_import_neither_runners_nor_reports_and_of_evals_only_the_contract() -> None:
    bad = _crossing("tasks", ("runners", "reports"))
    assert not bad, f"tasks/ may import only {CONTRACT} of the other packages:\n  {_listing(bad)}"


def test_runners_import_neither_tasks_nor_reports_and_of_evals_only_the_contract() -> None:
    bad = _crossing("runners", ("tasks", "reports"))
    assert not bad, f"runners/ may import only {CONTRACT} of the other packages:\n  {_listing(bad)}"


def test_reports_import_of_evals_only_the_records() -> None:
    bad = [
        item
        for path in modules("reports")
        for item in imports(path)
        if _top(item.module) in ("tasks", "runners")
        or (_top(item.module) == "evals" and item.module not in RECORDS)
    ]
    assert not bad, f"reports/ may import only {', '.join(RECORDS)} of the other packages:\n  {_listing(bad)}"


@pytest.mark.parametrize("relative", STDLIB_ONLY)
def test_stdlib_only_modules_import_only_the_standard_library(relative: str) -> None:
    path = REPO / relative
    assert path.is_file(), f"{relative} is gone: update STDLIB_ONLY in {Path(__file__).name}"
    allowed = ALSO_ALLOWED.get(relative, ())
    bad = [
        item
        for item in imports(path)
        if _top(item.module) not in sys.stdlib_module_names and item.module not in allowed
    ]
    assert not bad, f"{relative} must import only the standard library:\n  {_listing(bad)}"


# --- the checker itself, on small made-up files -------------------------------------------------------


def test_the_import_reader_resolves_from_imports_and_relative_imports(tmp_path: Path) -> None:
    for name in ("evals/__init__.py", "evals/schema.py", "evals/stats.py", "runners/__init__.py",
                 "runners/hf.py", "tasks/__init__.py", "tasks/data.py", "tasks/readers.py"):  # fmt: skip
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    probe = tmp_path / "tasks" / "probe.py"
    probe.write_text(
        "from __future__ import annotations\n"
        "import os.path\n"
        "from evals import schema, stats\n"
        "from evals.schema import Sample\n"
        "from . import data\n"
        "from .readers import read_file\n"
        "def lazy():\n"
        "    import runners.hf\n",
        encoding="utf-8",
    )
    found = imports(probe, tmp_path)
    assert [item.module for item in found] == [
        "__future__",
        "os.path",
        "evals.schema",
        "evals.stats",
        "evals.schema",
        "tasks.data",
        "tasks.readers",
        "runners.hf",
    ]
    assert str(found[-1]) == "tasks/probe.py:8: runners.hf"
    assert all(_top(item.module) in sys.stdlib_module_names for item in found[:2])
