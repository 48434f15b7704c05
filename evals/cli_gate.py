"""The `evals gate` command line: gate a candidate run directory on a baseline one (for CI).

Parses arguments, reads both run directories, calls evals.gate and prints the Markdown summary
(also appended to $GITHUB_STEP_SUMMARY when set); `--junit FILE` writes JUnit XML. Exit code 0: every
row passes (or is inconclusive without --strict); 1: a regression (or, with --strict, an inconclusive
row); 2: a usage error (one line: missing or old-format run directory, no common samples, different
protocols, bad margin or alpha).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from evals.gate_records import DEFAULT_ALPHA

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"

EPILOG = """\
examples:
  evals gate --baseline ci/baseline --candidate runs/candidate --junit gate.xml
  evals gate --baseline runs/q8 --candidate runs/q4 --margin mmlu_pro=2 --margin 'AIME 2026 no tools=5' --strict

rule, per row (d = candidate - baseline in points; L, U = its one-sided 1-alpha confidence bounds,
i.e. the two-sided 1-2*alpha paired bootstrap interval; m = the row's margin):
  regression    U < 0 and d < -m      (exit 1)
  pass          L >= -m               (non-inferior within the margin)
  inconclusive  otherwise             (exit 1 only with --strict)"""


def add_gate(sub: Any) -> None:
    """Register `evals gate` on the `evals` subcommands."""
    gate = sub.add_parser(
        "gate",
        help="gate a candidate run on a baseline run: pass, regression or inconclusive per row (CI)",
        description="Compare a candidate run directory with a baseline one, row by row, and fail on a "
        "statistically supported drop larger than the row's margin.",
        epilog=EPILOG,
    )
    gate.add_argument(
        "--baseline", required=True, type=Path, metavar="RUN", help="the baseline run directory"
    )
    gate.add_argument(
        "--candidate", required=True, type=Path, metavar="RUN", help="the candidate run directory"
    )
    gate.add_argument("--margin", action="append", default=[], metavar="ROW=POINTS",
                      help="largest drop in points that still passes, for ROW (a row label, or a task that "
                           "one row has), e.g. mmlu_pro=2 (repeatable; default 0)")  # fmt: skip
    gate.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, metavar="A",
                      help=f"one-sided error level: bounds at 1-A (default {DEFAULT_ALPHA:g})")  # fmt: skip
    gate.add_argument("--strict", action="store_true", help="an inconclusive row fails the gate (exit 1)")
    gate.add_argument(
        "--junit", type=Path, metavar="FILE", help="also write JUnit XML, one test case per row"
    )
    gate.add_argument("--allow-protocol-diff", action="store_true",
                      help="gate rows whose protocol differs (task version, prompt, sampling...) and say so")  # fmt: skip
    gate.set_defaults(handler=_cmd_gate)


def parse_margin(item: str) -> tuple[str, float]:
    """`ROW=POINTS` (the last '=' splits, so a label may hold one) as (row, points)."""
    row, sep, value = item.rpartition("=")
    try:
        points = float(value)
    except ValueError:
        points = math.nan
    if not sep or not row or math.isnan(points) or points < 0:
        raise ValueError(f"--margin expects ROW=POINTS with POINTS a non-negative number, got '{item}'")
    return row, points


def _cmd_gate(args: argparse.Namespace) -> int:
    from evals.gate import check_alpha, gate_runs
    from evals.run_dir import load_run_dir
    from reports.gate import render_gate_markdown, render_junit

    margins = dict(parse_margin(item) for item in args.margin)
    check_alpha(args.alpha)
    report = gate_runs(
        load_run_dir(args.baseline),
        load_run_dir(args.candidate),
        margins=margins,
        alpha=args.alpha,
        strict=args.strict,
        allow_protocol_diff=args.allow_protocol_diff,
    )
    summary = render_gate_markdown(report)
    print(summary, end="")
    if os.environ.get(STEP_SUMMARY):
        with Path(os.environ[STEP_SUMMARY]).open("a", encoding="utf-8") as handle:
            handle.write(summary + "\n")
    if args.junit:
        args.junit.write_text(render_junit(report), encoding="utf-8")
    return report.exit_code
