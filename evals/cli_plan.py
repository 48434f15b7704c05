"""The `evals plan` command line: requests, token budgets, expected generated tokens and wall time
of a card's rows before running it.

Parses the arguments and calls evals.plan (which loads no model, and data only for `--data`).
Bad input (an unknown card, task or backend, a throughput that is not a positive number) is one
line, exit code 2, through evals.cli's main.
"""

from __future__ import annotations

import argparse
import math
from typing import Any


def add_plan(sub: Any) -> None:
    """Register `evals plan` on the `evals` subcommands."""
    parser = sub.add_parser(
        "plan",
        help="requests, token budgets, expected tokens and wall time of a card, before running it",
        description=(
            "Plan a card's run: per row the items (each dataset's published size, or counted with --data), "
            "repeats, requests, the token budget, a typical completion length where one is known from "
            "published outputs, and the generated tokens and wall time at a throughput."
        ),
        epilog=(
            "examples:\n"
            "  evals plan --card gemma-4-12b-it --tok-per-s 2500\n"
            "  evals plan --card gemma-4-12b-it --tasks mmlu_pro,aime --limit 200 --tok-per-s 800 --json\n"
            "  evals plan --card ci-gate --backend llamacpp    # a throughput measured here\n"
            "  evals plan --card smoke --data builtin           # count the local data"
        ),
    )
    parser.add_argument("--card", required=True, metavar="NAME", help="card name or .toml path")
    parser.add_argument(
        "--tasks", metavar="TASK,...", help="comma-separated rows (tasks) of the card to plan"
    )
    parser.add_argument(
        "--backend",
        metavar="NAME",
        help="the backend the run will use (a throughput measured for its model on it is used)",
    )
    parser.add_argument(
        "--tok-per-s",
        type=_positive_float,
        metavar="N",
        help="aggregate generated tokens per second of the whole run (all concurrent requests together)",
    )
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="first N items of each row")
    parser.add_argument("--data", action="append", default=[], metavar="[TASK=]PATH",
                        help="count the items in local data (loads it) instead of the dataset's known size")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    import json

    from evals.cli import _data_overrides, _task_list
    from evals.plan import make_plan, render_plan

    plan = make_plan(
        args.card,
        tasks=_task_list(args.tasks),
        backend=args.backend,
        tok_per_s=args.tok_per_s,
        limit=args.limit,
        data=_data_overrides(args.data),
    )
    print(json.dumps(plan.to_json(), indent=2) if args.json else render_plan(plan))
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{text}'") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{text}'")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{text}'")
    return value
