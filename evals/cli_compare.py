"""The `evals compare` command line: compare runs of the same rows against a reference run.

Reads the run directories, calls evals.compare and prints the Markdown of reports/comparison.py;
writes the Markdown and HTML files only where asked. Bad input (fewer than two runs, a missing or
old-format run directory, no common samples, a protocol difference) is one line, exit code 2,
through evals.cli's main.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_compare(sub: Any) -> None:
    """Register `evals compare` on the `evals` subcommands."""
    parser = sub.add_parser(
        "compare",
        help="compare runs of the same rows sample by sample (paired CIs, McNemar, flips, cost)",
        description=(
            "Compare runs of the same card or tasks (from any backends) against a reference run: per row "
            "each run's value, the paired difference with a bootstrap 95% CI, McNemar's exact test (or a "
            "sign-flip test with repeats), flipped samples, agreement, unparsed/truncated change; and "
            "each run's cost (tokens/s, time, memory, size on disk, quantization)."
        ),
        epilog=(
            "examples:\n"
            "  evals compare runs/bf16 runs/q8_0 runs/q4_k_m\n"
            "  evals compare runs/q4_k_m runs/q8_0 --reference runs/bf16 --markdown compare.md --html compare.html\n"
            "  evals compare runs/a runs/b --allow-protocol-diff   # compare anyway, flagged in the report"
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories (two or more)")
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="RUN",
        help="the run the others are compared to (default: the first)",
    )
    parser.add_argument(
        "--allow-protocol-diff",
        action="store_true",
        help="compare rows whose protocol differs (task version, variant, prompt, extractor, sampling, "
        "targets); the report flags them",
    )
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown to FILE")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="write the HTML page (forest plot, flips) to FILE"
    )
    parser.add_argument(
        "--redact-questions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="question text and outputs in the HTML: redact always / never "
        "(default: as each task asks; GPQA redacts)",
    )
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from evals.compare import compare  # heavy (numpy, scipy): only when the command runs
    from evals.run_dir import load_run_dir
    from reports.comparison import render_comparison_html, render_markdown

    paths: list[Path] = list(args.runs)
    if args.reference is not None and all(p.resolve() != args.reference.resolve() for p in paths):
        paths = [args.reference, *paths]
    if len({p.resolve() for p in paths}) < 2:
        raise ValueError("compare needs at least two different run directories; pass two or more")
    runs = [load_run_dir(p) for p in paths]
    reference = None
    if args.reference is not None:
        wanted = args.reference.resolve()
        reference = next(run for run, path in zip(runs, paths, strict=True) if path.resolve() == wanted)
    comparison = compare(runs, reference, allow_protocol_diff=args.allow_protocol_diff)
    markdown = render_markdown(comparison)
    print(markdown, end="")
    written = []
    if args.markdown is not None:
        args.markdown.write_text(markdown)
        written.append(str(args.markdown))
    if args.html is not None:
        args.html.write_text(render_comparison_html(comparison, redact=args.redact_questions))
        written.append(str(args.html))
    if written:
        print("\nwritten: " + "  ".join(written))
    return 0
