"""Write and read a run directory: run.json, results.json, samples.jsonl, prompts.jsonl, reports.

Every file is written aside and renamed into place, so a killed run never leaves half a file.
Reading goes through the typed records of evals.records (a run directory of another major
format version is one clear error). Rendering lives in reports/; scoring in evals.scoring.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.faults import fault_point
from evals.prompt_store import PromptStore, read_prompts
from evals.records import Results, RunInfo, SampleRecord
from reports.html import render_html
from reports.markdown import render_report

LINE_BREAKS_NOT_ESCAPED_BY_JSON = ("\x85", "\u2028", "\u2029")
FILES = ("run.json", "results.json", "samples.jsonl", "prompts.jsonl", "report.md", "report.html")
# One encoder for every JSON line (encoding keeps no state); the same output as json.dumps.
_LINE_JSON = json.JSONEncoder(ensure_ascii=False, default=str)


def write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def jsonl_line(record: dict[str, Any]) -> str:
    """One JSON line; characters that str.splitlines() treats as line breaks are escaped."""
    text = _LINE_JSON.encode(record)
    for char in LINE_BREAKS_NOT_ESCAPED_BY_JSON:
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text + "\n"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w") as handle:
            for record in records:
                handle.write(jsonl_line(record))
        fault_point("write", path.name)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk keeps no partial file
        raise
    os.replace(tmp, path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open() as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        fault_point("write", path.name)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk keeps no partial file
        raise
    os.replace(tmp, path)


def write_run(
    out_dir: Path,
    run_info: RunInfo,
    results: Results,
    samples: Sequence[SampleRecord],
    prompts: PromptStore,
    *,
    redact: bool | None = None,
) -> str:
    """Write the whole run directory; return the Markdown report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "run.json", run_info.to_json())
    write_jsonl(out_dir / "prompts.jsonl", prompts.lines())
    write_jsonl(out_dir / "samples.jsonl", (s.to_json() for s in samples))
    write_json(out_dir / "results.json", results.to_json())
    return write_reports(out_dir, results, samples, read_prompts(prompts.lines()), redact=redact)


def write_reports(
    out_dir: Path,
    results: Results,
    samples: Sequence[SampleRecord],
    prompts: dict[str, Any],
    *,
    redact: bool | None = None,
) -> str:
    markdown = render_report(results)
    _write_text(out_dir / "report.md", markdown)
    _write_text(out_dir / "report.html", render_html(results, samples, prompts, redact=redact))
    return markdown


@dataclass(frozen=True)
class RunDir:
    """A run directory read back through its typed records."""

    path: Path
    run: RunInfo
    results: Results
    samples: list[SampleRecord]
    prompts: dict[str, Any]  # prompt id -> text or messages (see evals.prompt_store.read_prompts)


def load_run_dir(path: Path) -> RunDir:
    """Read a run directory; a missing file or another major format version is one clear error."""
    results_path = path / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"{path} is not a run directory (no results.json); pass the folder of a run")
    results = Results.from_json(json.loads(results_path.read_text()), f"{results_path}")
    run = RunInfo.from_json(json.loads((path / "run.json").read_text()), f"{path / 'run.json'}")
    samples = [
        SampleRecord.from_json(line, f"{path / 'samples.jsonl'}")
        for line in read_jsonl(path / "samples.jsonl")
    ]
    prompts_path = path / "prompts.jsonl"
    prompts = read_prompts(read_jsonl(prompts_path)) if prompts_path.is_file() else {}
    return RunDir(path, run, results, samples, prompts)


def rewrite_reports(out_dir: Path, *, redact: bool | None = None) -> str:
    """Render report.md and report.html again from a run directory's records."""
    run = load_run_dir(out_dir)
    return write_reports(out_dir, run.results, run.samples, run.prompts, redact=redact)
