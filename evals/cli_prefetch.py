"""The `evals prefetch` command line: fetch a card's model and datasets into one folder for an
air-gapped machine (evals/prefetch.py does the work; `evals run --offline DIR` reads the folder).

Parses arguments and prints what was fetched, what was already there and the command to run
offline. A bad card, task, variant or an unreachable hub is one line and exit code 2.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from evals import registry

EPILOG = """\
examples:
  evals prefetch --card gemma-4-12b-it --to /mnt/usb/gemma-4-12b
  evals prefetch --card gemma-4-12b-it --tasks mmlu_pro,gpqa_diamond --to /mnt/usb/gemma-4-12b
  evals prefetch --card gemma-4-12b-it --backend hf --model google/gemma-4-12B-it --to /mnt/usb/gemma-4-12b
then, on the machine without network:
  evals run --card gemma-4-12b-it --offline /mnt/usb/gemma-4-12b

The folder holds manifest.json (each item: repo, revision requested and commit resolved, every
file's size and sha256), datasets/ORG/NAME/ and models/ORG/NAME/ as on the hub. Running prefetch
again into the same folder adds what is missing; items already there at the same commit are kept.
The hub is huggingface_hub's (HF_ENDPOINT, HF_TOKEN for gated repositories such as GPQA)."""


def add_prefetch(sub: Any) -> None:
    """Register `evals prefetch` on the `evals` subcommands."""
    parser = sub.add_parser(
        "prefetch",
        help="download a card's model and datasets into one folder for `evals run --offline`",
        description="Download the model and every dataset a card needs, at their pinned revisions, into "
        "one folder with a manifest, to carry to a machine without network.",
        epilog=EPILOG,
    )
    parser.add_argument("--card", metavar="NAME", help="card name or .toml path (default: the smoke card)")
    parser.add_argument("--tasks", metavar="TASK,...",
                        help="only these rows of the card (or, without --card, these tasks on --model)")  # fmt: skip
    parser.add_argument("--variant", metavar="NAME", help="task variant, overriding the card's")
    parser.add_argument("--backend", choices=sorted(registry.BACKENDS),
                        help="the backend the run will use (default: the card's)")  # fmt: skip
    parser.add_argument("--model", metavar="MODEL",
                        help="the model the run will use instead of the card's: a hub id is downloaded, "
                             "a local path recorded (or copied with --copy-local)")  # fmt: skip
    parser.add_argument("--to", required=True, type=Path, metavar="DIR", help="the folder to fill")
    parser.add_argument("--copy-local", action="store_true",
                        help="copy local model paths into DIR/models/local/ (default: record where they are)")  # fmt: skip
    parser.set_defaults(handler=_cmd_prefetch)


def _cmd_prefetch(args: argparse.Namespace) -> int:
    from evals.planning import RunOptions
    from evals.prefetch import PrefetchOptions, prefetch

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else []
    for name in tasks:
        registry.task_class(name)  # an unknown task: one line
    run = RunOptions(
        card=args.card, tasks=tasks, variant=args.variant, backend=args.backend, model=args.model
    )
    outcome = prefetch(PrefetchOptions(folder=args.to, run=run, copy_local=args.copy_local))
    for line in outcome.fetched:
        print(f"fetched: {line}")
    for line in outcome.kept:
        print(f"already there: {line}")
    folder = outcome.manifest.folder
    print(f"manifest: {folder / 'manifest.json'}")
    words = ["evals", "run"]
    for flag, value in (("--card", args.card), ("--tasks", args.tasks), ("--variant", args.variant),
                        ("--backend", args.backend), ("--model", args.model)):  # fmt: skip
        if value:
            words += [flag, value]
    print(f"run it offline with: {shlex.join([*words, '--offline', str(folder)])}")
    return 0
