"""The `evals` command line: run, score, report, parity, tasks, cards.

Parses arguments and calls evals.pipeline; user errors become one line on stderr and exit code 2.
Set EVALS_DEBUG=1 to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from evals import registry
from evals.cards import card_names, load_card

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, OSError, KeyError) as exc:
        if os.environ.get("EVALS_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"evals: error: {message}", file=sys.stderr)
        return EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evals", description="Reproduce a model card's benchmark table.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="generate, score and report a card or a list of tasks")
    run.add_argument(
        "--card", default="smoke", help="card name or .toml path (default: the offline smoke card)"
    )
    run.add_argument("--tasks", help="comma-separated task names to run instead of a card (needs --model)")
    run.add_argument("--variant", help="task variant (overrides the card's)")
    run.add_argument("--model", help="hub id, local directory, .gguf file, or pkg:PACKAGE/FILE")
    run.add_argument("--backend", help=f"one of: {', '.join(sorted(registry.BACKENDS))}")
    run.add_argument("--limit", type=_positive_int, help="first N samples of each task")
    run.add_argument("--repeats", type=_positive_int, help="completions per sample")
    run.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="[TASK=]PATH",
        help="local data instead of the hub: file, directory or glob; 'builtin' for the smoke set",
    )
    run.add_argument("--output", type=Path, help="run directory (default runs/CARD-TIMESTAMP)")
    run.add_argument(
        "--cache", type=Path, help="SQLite completion cache (default $EVALS_CACHE or ~/.cache/evals)"
    )
    run.add_argument("--max-tokens", type=_positive_int)
    run.add_argument("--temperature", type=float)
    run.add_argument("--seed", type=int)
    run.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None)
    run.add_argument("--extractor", help="answer extractor of the task (e.g. tiger, tiger-2024-05, card)")
    _add_task_opt(run)
    run.add_argument("--batch-size", help="backend batch size: an integer or 'auto'")
    run.add_argument(
        "--backend-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra backend option, e.g. dtype=bfloat16",
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_redact_option(run)
    run.set_defaults(handler=_cmd_run)

    score = sub.add_parser(
        "score", help="score existing generations (JSONL of {id, response[, repeat, answer]})"
    )
    score.add_argument("predictions", type=Path)
    score.add_argument("--task", required=True)
    score.add_argument("--variant")
    score.add_argument("--extractor")
    _add_task_opt(score)
    score.add_argument(
        "--guess-unparsed",
        action="store_true",
        help="also report accuracy with the official random-guess credit for unparsed answers",
    )
    score.add_argument("--data", help="local data instead of the hub: file, directory or glob")
    score.add_argument("--output", type=Path, help="write a run directory here")
    _add_redact_option(score)
    score.set_defaults(handler=_cmd_score)

    report = sub.add_parser("report", help="render report.md and report.html of a run directory again")
    report.add_argument("run_dir", type=Path)
    _add_redact_option(report)
    report.set_defaults(handler=_cmd_report)

    parity = sub.add_parser(
        "parity", help="run the same requests on two backends: prompt ids, greedy tokens, answers"
    )
    parity.add_argument("--a", required=True, metavar="BACKEND:MODEL", help="e.g. hf:path/to/model")
    parity.add_argument("--b", required=True, metavar="BACKEND:MODEL", help="e.g. llamacpp:model.Q4_1.gguf")
    parity.add_argument(
        "--a-opt", action="append", default=[], metavar="KEY=VALUE", help="backend option of A"
    )
    parity.add_argument(
        "--b-opt", action="append", default=[], metavar="KEY=VALUE", help="backend option of B"
    )
    parity.add_argument("--card", default="smoke", help="card whose rows give the requests (default smoke)")
    parity.add_argument("--tasks", help="comma-separated tasks instead of a card")
    parity.add_argument("--variant")
    parity.add_argument("--data", action="append", default=[], metavar="[TASK=]PATH")
    parity.add_argument("--limit", type=_positive_int, default=8, help="samples per row (default 8)")
    parity.add_argument(
        "--max-tokens", type=_positive_int, default=32, help="greedy continuation length (default 32)"
    )
    parity.add_argument("--answer-max-tokens", type=_positive_int, help="answer budget (default: the card's)")
    parity.add_argument("--json", type=Path, help="also write the comparison as JSON here")
    parity.add_argument(
        "--tie-margin",
        type=float,
        default=5e-3,
        help="top-2 logit gap under which a greedy divergence counts as a near-tie (default 0.005)",
    )
    parity.add_argument(
        "--require-match",
        action="store_true",
        help="exit 1 unless prompts are identical and greedy tokens identical up to near-ties (CI gates)",
    )
    parity.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parity.set_defaults(handler=_cmd_parity)

    tasks = sub.add_parser("tasks", help="list tasks")
    tasks.set_defaults(handler=_cmd_tasks)
    cards = sub.add_parser("cards", help="list model cards")
    cards.set_defaults(handler=_cmd_cards)
    return parser


def _add_task_opt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="task option, e.g. last_chance=true (aime), strict=true (aime), shuffle_seed=1 (gpqa)")  # fmt: skip


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    options = dict(_key_value(item, "--task-opt") for item in args.task_opt)
    if args.extractor:
        options["extractor"] = args.extractor
    return options


def _add_redact_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redact-questions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="question text in report.html: redact always / never (default: as each task asks; GPQA redacts)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from evals.pipeline import RunOptions, run

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else []
    for name in tasks:
        registry.task_class(name)  # unknown task: one clear line before any model loads
    sampling: dict[str, Any] = {}
    for name in ("max_tokens", "temperature", "seed", "thinking"):
        if getattr(args, name) is not None:
            sampling[name] = getattr(args, name)
    backend_options = dict(_key_value(item, "--backend-opt") for item in args.backend_opt)
    if args.batch_size is not None:
        backend_options["batch_size"] = _batch_size(args.batch_size)
    options = RunOptions(
        card=args.card,
        tasks=tasks,
        variant=args.variant,
        model=args.model,
        backend=args.backend,
        backend_options=backend_options,
        task_options=_task_options(args),
        data=_data_overrides(args.data),
        limit=args.limit,
        repeats=args.repeats,
        sampling=sampling,
        output=args.output,
        cache=args.cache,
        show_progress=not args.no_progress,
        redact=args.redact_questions,
    )
    out_dir, _results, report = run(options)
    print(report)
    print(f"run directory: {out_dir}", file=sys.stderr)
    stats = _read_generation(out_dir)
    if stats:
        print(f"completions: {stats}", file=sys.stderr)
    return 0


def _read_generation(out_dir: Path) -> str:
    import json

    info = json.loads((out_dir / "run.json").read_text())["generation"]
    return f"{info['cached']} cached, {info['generated']} generated, {info['failed']} failed"


def _cmd_score(args: argparse.Namespace) -> int:
    from evals.pipeline import ScoreOptions, score

    task_options = _task_options(args)
    if args.guess_unparsed:
        task_options["guess_unparsed"] = True
    outcome = score(
        ScoreOptions(
            task=args.task,
            predictions=args.predictions,
            variant=args.variant,
            task_options=task_options,
            data=args.data,
            output=args.output,
            redact=args.redact_questions,
        )
    )
    print(outcome.report)
    if outcome.missing_samples:
        print(
            f"note: {outcome.missing_samples} dataset samples have no prediction and were not scored",
            file=sys.stderr,
        )
    if outcome.gold_mismatches:
        ids = ", ".join(f"{i} (predictions: {a}, dataset: {b})" for i, a, b in outcome.gold_mismatches)
        print(
            f"gold answer differs from the loaded dataset for {len(outcome.gold_mismatches)} question(s): {ids}"
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from evals.records import rewrite_reports

    print(rewrite_reports(args.run_dir, redact=args.redact_questions))
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    import json

    from evals.parity import ParityOptions, Side, render_parity, run_parity

    a = Side.parse(args.a, dict(_key_value(item, "--a-opt") for item in args.a_opt))
    b = Side.parse(args.b, dict(_key_value(item, "--b-opt") for item in args.b_opt))
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else []
    for name in tasks:
        registry.task_class(name)
    report = run_parity(
        ParityOptions(
            a=a,
            b=b,
            card=None if tasks else args.card,
            tasks=tasks,
            variant=args.variant,
            data=_data_overrides(args.data),
            limit=args.limit,
            max_tokens=args.max_tokens,
            tie_margin=args.tie_margin,
            answer_max_tokens=args.answer_max_tokens,
            show_progress=not args.no_progress,
        )
    )
    print(render_parity(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2, default=str))
    if args.require_match and not report.token_level:
        print(
            "parity: --require-match needs two backends that render prompt ids (hf, llamacpp)",
            file=sys.stderr,
        )
        return 1
    if args.require_match and not report.consistent:
        print(
            "parity: prompts differ or greedy tokens diverge at a clear margin (see above)", file=sys.stderr
        )
        return 1
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    for name in sorted(registry.TASKS):
        cls = registry.task_class(name)
        variants = ", ".join(getattr(cls, "VARIANTS", ()))
        print(f"{name}  v{cls.version}  variants: {variants}")
    return 0


def _cmd_cards(args: argparse.Namespace) -> int:
    for name in card_names():
        card = load_card(name)
        rows = ", ".join(
            f"{r.label}{'' if r.task in registry.TASKS else ' (not yet available)'}" for r in card.rows
        )
        print(f"{name}: {card.title} [{card.model}]\n    {rows}")
    return 0


def _key_value(item: str, flag: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"{flag} expects KEY=VALUE, got '{item}'")
    return key.replace("-", "_"), _scalar(value)


def _scalar(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    value = _scalar(text)
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"--batch-size must be a positive integer or 'auto', got '{text}'")
    return value


def _data_overrides(items: list[str]) -> dict[str, str]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key in registry.TASKS:
            overrides[key] = value
        elif sep and key.isidentifier() and not Path(item).exists():
            raise ValueError(
                f"--data {item}: unknown task '{key}'; use TASK=PATH with one of {', '.join(registry.TASKS)}"
            )
        else:
            overrides["*"] = item
    return overrides


if __name__ == "__main__":
    raise SystemExit(main())
