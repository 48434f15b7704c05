"""Write a run directory: run.json, samples.jsonl, results.json and report.md.

Everything in it is derived from the run's configuration, the cache and the scores; writing it
again after a resumed run gives the same files. It does not render reports itself (see reports/).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.evaluate import TaskResult, sample_records

LINE_BREAKS_NOT_ESCAPED_BY_JSON = ("\x85", "\u2028", "\u2029")


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def jsonl_line(record: dict[str, Any]) -> str:
    """One JSON line; characters that str.splitlines() treats as line breaks are escaped."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    for char in LINE_BREAKS_NOT_ESCAPED_BY_JSON:
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text + "\n"


def write_samples(path: Path, results: Sequence[TaskResult]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as handle:
        for result in results:
            for record in sample_records(result):
                handle.write(jsonl_line(record))
    os.replace(tmp, path)


def write_run(
    out_dir: Path, run_info: dict[str, Any], results: Sequence[TaskResult], report_md: str
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "run": out_dir / "run.json",
        "samples": out_dir / "samples.jsonl",
        "results": out_dir / "results.json",
        "report": out_dir / "report.md",
    }
    write_json(paths["run"], run_info)
    write_samples(paths["samples"], results)
    write_json(paths["results"], {"rows": [r.to_json() for r in results]})
    paths["report"].write_text(report_md)
    return paths
