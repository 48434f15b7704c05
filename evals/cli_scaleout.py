"""Command line of scale-out: `evals run --shard I/N`, `evals run --executor ray`, `evals merge`.

The `run` flags are added here and `evals.cli._cmd_run` hands a run that uses them to
`run_scaleout`; `evals merge` is its own subcommand. Parsing and printing only: sharding is
evals.sharding, merging evals.merge, the Ray driver evals.ray_executor (Ray is imported only there,
only when `--executor ray` runs).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.planning import RunOptions

EXECUTORS = ("local", "ray")


def add_scaleout_flags(run: argparse.ArgumentParser) -> None:
    """The `run` flags that split a run into shards or run them on Ray."""
    run.add_argument("--shard", metavar="I/N",
                     help="run only shard I of N (requests split by a hash of each prompt) and write a shard "
                          "directory; combine all N with `evals merge`")  # fmt: skip
    run.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="local: this process (default); ray: every shard as a Ray task, then merged")  # fmt: skip
    run.add_argument("--ray-address", metavar="ADDR",
                     help="with --executor ray: an existing cluster (e.g. auto or ray://head:10001); "
                          "default: start a local one")  # fmt: skip
    run.add_argument("--shards", type=_count, metavar="N",
                     help="with --executor ray: how many shards (default: the cluster's GPUs / GPUs per shard, "
                          "else its CPUs)")  # fmt: skip


def uses_scaleout(args: argparse.Namespace) -> bool:
    return bool(args.shard) or args.executor != "local" or args.shards is not None or bool(args.ray_address)


def run_scaleout(args: argparse.Namespace, options: RunOptions) -> int:
    """`evals run` with --shard or --executor ray."""
    if args.executor != "ray":
        if args.shards is not None or args.ray_address:
            flag = "--shards" if args.shards is not None else "--ray-address"
            raise ValueError(f"{flag} needs --executor ray (one --shard I/N runs here without Ray)")
        return _run_one_shard(args.shard, options)
    if args.shard:
        raise ValueError("--shard runs one shard here and --executor ray runs them all: give one of the two")
    from evals.ray_executor import ShardFailed, run_on_ray

    try:
        outcome = run_on_ray(options, shards=args.shards, address=args.ray_address)
    except ShardFailed as exc:  # the run failed, not the input: exit 1; the same command resumes
        print(f"evals: error: {exc}; run the same command again to resume from the caches", file=sys.stderr)
        return 1
    _print_run(outcome.run.results, outcome.run.out_dir)
    info = outcome.run.run_info.generation
    print(
        f"completions: {info.cached} cached, {info.generated} generated, {info.failed} failed, "
        f"{info.shared} shared with an identical prompt; {len(outcome.shards)} shards, "
        f"{sum(s.attempts for s in outcome.shards) - len(outcome.shards)} retried"
    )
    return 0


def _run_one_shard(text: str, options: RunOptions) -> int:
    from evals.pipeline import run
    from evals.sharding import parse_shard

    index, count = parse_shard(text)
    outcome = run(replace(options, shard=(index, count)))
    info = outcome.run_info.generation
    print(
        f"shard {index}/{count}: {info.requested} requests ({info.cached} cached, {info.generated} generated, "
        f"{info.failed} failed, {info.shared} shared with an identical prompt)"
    )
    print(f"shard directory: {outcome.out_dir}")
    print(f"when all {count} shards are done: evals merge SHARD_DIR... --out DIR")
    return 0


def add_merge(sub: Any) -> None:
    merge = sub.add_parser(
        "merge",
        help="combine the shard directories of one run (evals run --shard I/N) into one run directory",
        description=(
            "Check that the shards are all N shards of one run (same card, model fingerprints, protocols "
            "and options), then score the whole set and write one run directory, equal to an unsharded "
            "run's except for times, memory and the output path. Loads the data, not the model."
        ),
        epilog=(
            "example:\n"
            "  evals run --card smoke --shard 1/2 --output runs/s1\n"
            "  evals run --card smoke --shard 2/2 --output runs/s2\n"
            "  evals merge runs/s1 runs/s2 --out runs/smoke-merged"
        ),
    )
    merge.add_argument("shard_dirs", nargs="+", type=Path, metavar="SHARD_DIR",
                       help="the shard directories, all N of them, in any order")  # fmt: skip
    merge.add_argument("--out", type=Path, metavar="DIR", help="run directory (default: runs/CARD-TIMESTAMP)")
    merge.add_argument("--redact-questions", action=argparse.BooleanOptionalAction, default=None,
                       help="question text in report.html: redact always / never (default: as each task asks)")  # fmt: skip
    merge.set_defaults(handler=_cmd_merge)


def _cmd_merge(args: argparse.Namespace) -> int:
    from evals.merge import merge

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; pass a directory for the merged run")
    outcome = merge(args.shard_dirs, args.out, redact=args.redact_questions)
    _print_run(outcome.results, outcome.out_dir)
    return 0


def _print_run(results: Any, out_dir: Path) -> None:
    from reports.markdown import render_summary

    print(render_summary(results))
    print(f"run directory: {out_dir}")
    print(f"reports: {out_dir / 'report.md'}  {out_dir / 'report.html'}")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value
