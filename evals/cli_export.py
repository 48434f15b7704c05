"""The `evals export` command line: write a run directory as lm-eval files, a Hugging Face
model-index block or parquet tables.

Parses the arguments and calls evals.export, which imports each format's writer only when it runs.
Bad input (a missing or old-format run directory, an unknown format, --out naming a file) is one
line, exit code 2, through evals.cli's main.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

FORMAT_NAMES = ("lm-eval", "model-index", "parquet")


def add_export(sub: Any) -> None:
    """Register `evals export` on the `evals` subcommands."""
    parser = sub.add_parser(
        "export",
        help="write a run directory as lm-eval results/samples, a HF model-index block or parquet",
        description=(
            "Write a run directory in another format: lm-eval (lm-evaluation-harness's results and "
            "samples files), model-index (the Hugging Face model-card eval results block, in a README.md "
            "front matter and model-index.yaml) or parquet (samples.parquet and results.parquet, the "
            "DataFrames of evals.load_run)."
        ),
        epilog=(
            "examples:\n"
            "  evals export runs/gemma-4-12b --to model-index --model-name google/gemma-4-12B-it\n"
            "  evals export runs/gemma-4-12b --to parquet --out exports/gemma\n"
            "  evals export runs/gemma-4-12b --to lm-eval"
        ),
    )
    parser.add_argument(
        "run", type=Path, metavar="RUN", help="a run directory written by `evals run` or `evals score`"
    )
    parser.add_argument("--to", required=True, choices=FORMAT_NAMES, help="the format to write")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="folder for the files (default: RUN/exports/FORMAT)"
    )
    parser.add_argument(
        "--model-name",
        metavar="NAME",
        help="model-index only: the model's name (default: the model each row ran on, e.g. its hub id)",
    )
    parser.add_argument(
        "--source-url",
        metavar="URL",
        help="model-index only: where the results can be checked (e.g. the run's published folder); "
        "adds each result's `source` (the hub wants a url with it)",
    )
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from evals.export import export_run

    for flag, value in (("--model-name", args.model_name), ("--source-url", args.source_url)):
        if value is not None and args.to != "model-index":
            raise ValueError(f"{flag} applies to --to model-index only; drop it or use --to model-index")
    for path in export_run(
        args.run, args.to, args.out, model_name=args.model_name, source_url=args.source_url
    ):
        print(path)
    return 0
