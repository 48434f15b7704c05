"""Write a run directory: run.json, samples.jsonl, results.json, report.md and report.html.

Everything in it is derived from the run's configuration, the cache and the scores; writing it
again after a resumed run gives the same files. Rendering itself lives in reports/.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.scoring import TaskResult, sample_records
from reports.html import render_html
from reports.markdown import render_report

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


def write_samples(path: Path, records: Sequence[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w") as handle:
        for record in records:
            handle.write(jsonl_line(record))
    os.replace(tmp, path)


def write_run(
    out_dir: Path,
    run_info: dict[str, Any],
    header: dict[str, Any],
    results: Sequence[TaskResult],
    report_rows: Sequence[dict[str, Any]],
    *,
    redact: bool | None = None,
) -> str:
    """Write the run directory; return the Markdown report. `report_rows` are the card rows in
    order: results' JSON and unavailable rows; `redact` as in reports.html.render_html."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [record for result in results for record in sample_records(result)]
    write_json(out_dir / "run.json", run_info)
    write_samples(out_dir / "samples.jsonl", records)
    write_json(out_dir / "results.json", {"header": header, "rows": list(report_rows)})
    return write_reports(out_dir, header, report_rows, records, redact=redact)


def write_reports(
    out_dir: Path,
    header: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    records: Sequence[dict[str, Any]],
    *,
    redact: bool | None = None,
) -> str:
    markdown = render_report(header, rows)
    (out_dir / "report.md").write_text(markdown)
    (out_dir / "report.html").write_text(render_html(header, rows, records, redact=redact))
    return markdown


def rewrite_reports(out_dir: Path, *, redact: bool | None = None) -> str:
    """Render report.md and report.html again from a run directory's results and samples."""
    results_path = out_dir / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(
            f"{out_dir} is not a run directory (no results.json); pass the folder of a run"
        )
    results = json.loads(results_path.read_text())
    samples_path = out_dir / "samples.jsonl"
    records = [json.loads(line) for line in samples_path.read_text().split("\n") if line.strip()]
    return write_reports(out_dir, results.get("header", {}), results["rows"], records, redact=redact)
