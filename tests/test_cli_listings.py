"""`evals tasks`, `evals backends` and `evals cards` (issue 10 §4, point 10): every task with its
version, each variant with its meaning and each option with its default; every backend with its
declared options; a backend whose packages are missing is listed with the install line."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from evals import registry
from evals.cli import main
from evals.schema import option_help


def listing(capsys: pytest.CaptureFixture[str], command: str) -> str:
    assert main([command]) == 0
    return capsys.readouterr().out


def section(text: str, name: str) -> list[str]:
    """The lines listed under `name` (up to the next unindented line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start:end]


def test_tasks_lists_versions_variants_with_meanings_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    text = listing(capsys, "tasks")
    for name in registry.TASKS:
        cls = registry.task_class(name)
        lines = section(text, name)
        assert lines[0] == f"{name}  v{cls.version}"
        assert cls.variants, f"{name} declares no variants"
        for variant, meaning in cls.variants.items():
            assert any(line.split(None, 1) == [variant, meaning] for line in lines), (name, variant)
        parameters = inspect.signature(cls).parameters
        for option in registry.task_options(name):
            default = parameters[option].default
            assert any(
                line.strip().startswith(f"{option}:") and line.endswith(f"= {default!r}") for line in lines
            ), (name, option)


def test_livecodebench_lists_its_release_forms(capsys: pytest.CaptureFixture[str]) -> None:
    lines = section(listing(capsys, "tasks"), "livecodebench")
    variants = registry.task_class("livecodebench").variants
    assert len(variants) > 2  # more than `v6, release_v6`: each accepted form with its meaning
    assert sum(line.startswith("    ") for line in lines) >= len(variants)


def test_mmlu_pro_options_have_their_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [line.strip() for line in section(listing(capsys, "tasks"), "mmlu_pro")]
    assert "guess_unparsed: bool = False" in lines
    assert "extractor: str | None = None" in lines


def test_backends_list_their_declared_options(capsys: pytest.CaptureFixture[str]) -> None:
    text = listing(capsys, "backends")
    for name in registry.BACKENDS:
        lines = section(text, name)
        try:
            cls = registry.backend_class(name)
        except registry.MissingDependency:
            assert lines == [f"{name}  (not installed: pip install -e '.[{registry.EXTRAS[name]}]')"]
            continue
        assert lines[0] == f"{name}  options (--backend-opt KEY=VALUE):"
        declared = option_help(cls.options_type)
        assert "progress" in [option for option, *_ in declared]
        for option, kind, default, meaning in declared:
            line = next(line for line in lines[1:] if line.split()[0] == option)
            assert kind in line and repr(default) in line and line.endswith(meaning), (name, line)


@pytest.mark.subprocess
def test_backends_listing_survives_missing_packages() -> None:
    """As on a machine with only the base install: torch (hf) and vllm cannot be imported."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['vllm'] = None\n"
        "from evals.cli import main\n"
        "sys.exit(main(['backends']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "hf  (not installed: pip install -e '.[hf]')" in result.stdout.splitlines()
    assert "openai  options (--backend-opt KEY=VALUE):" in result.stdout.splitlines()


def test_cards_lists_cards_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    text = listing(capsys, "cards")
    assert "gemma-4-12b-it" in text and "CoVoST" in text
