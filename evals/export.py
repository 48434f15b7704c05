"""`evals export`: write a run directory in another harness's or site's format.

Formats: `lm-eval` (lm-evaluation-harness's results and samples files, written by
evals.interop.lm_eval_export), `model-index` (the Hugging Face model-card eval results block,
evals.export_model_index) and `parquet` (the DataFrames of evals.frames, evals.export_parquet).
This module picks the writer and the output folder; each writer is imported only when used, so
the command line stays light. It reads the run only through evals.run_dir.load_run_dir.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from evals.run_dir import RunDir, load_run_dir

LM_EVAL_WRITER = "evals.interop.lm_eval_export"
FORMATS = {
    "lm-eval": "lm-evaluation-harness results_<date>.json and samples_<task>_<date>.jsonl",
    "model-index": "README.md front matter with a Hugging Face model-index block (and model-index.yaml)",
    "parquet": "samples.parquet and results.parquet (the DataFrames of evals.load_run)",
}


def default_out_dir(run_path: Path, fmt: str) -> Path:
    return run_path / "exports" / fmt


def export_run(
    run_path: Path,
    fmt: str,
    out_dir: Path | None = None,
    *,
    model_name: str | None = None,
    source_url: str | None = None,
) -> list[Path]:
    """Write run `run_path` as `fmt` into `out_dir` (default RUN/exports/FORMAT); the files written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    run = load_run_dir(run_path)
    out = out_dir if out_dir is not None else default_out_dir(run_path, fmt)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; pass a directory for the exported files")
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "lm-eval":
        return _lm_eval(run, out)
    if fmt == "model-index":
        from evals.export_model_index import write_model_index

        return write_model_index(run, out, model_name=model_name, source_url=source_url)
    from evals.export_parquet import write_parquet

    return write_parquet(run, out)


def _lm_eval(run: RunDir, out: Path) -> list[Path]:
    # imported by name: the writer lives in evals.interop (lm-eval's own layout and loader checks)
    try:
        module = importlib.import_module(LM_EVAL_WRITER)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("evals"):
            raise
        raise ValueError(
            f"--to lm-eval is not available in this installation ({LM_EVAL_WRITER} is missing)"
        ) from exc
    writer: Callable[[RunDir, Path], list[Path]] = module.export_lm_eval
    return writer(run, out)
