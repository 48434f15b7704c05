"""The `evals` command line: run, score, report, parity, tasks, backends, cards.

Parses arguments and calls evals.pipeline (or evals.parity); it computes nothing itself. Every
subcommand refuses abbreviated flags, names a model on a backend as `--backend B --model M`, takes
task options as `--task-opt KEY=VALUE` and local data as `--data [TASK=]PATH`. User errors become one
line on stderr and exit code 2; set EVALS_DEBUG=1 to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals import registry
from evals.cards import card_names, load_card
from evals.cli_compare import add_compare
from evals.cli_export import add_export
from evals.cli_gate import add_gate
from evals.cli_plan import add_plan
from evals.cli_prefetch import add_prefetch
from evals.cli_scaleout import add_merge, add_scaleout_flags, run_scaleout, uses_scaleout

EXIT_USAGE = 2

PREDICTIONS_FORMAT = """\
predictions file: JSON Lines, one JSON object per line, e.g.
  {"id": "70", "response": "... The answer is (B).", "repeat": 0, "answer": "B"}
  id        the sample id in the task's dataset (required)
  response  the model's full output text (required)
  repeat    which completion of that sample it is, 0, 1, ... (optional, default 0)
  answer    the gold answer the predictions were made against (optional; each one that differs
            from the loaded dataset is reported)"""

CACHE_HELP = (
    "SQLite file of cached completions, shared by every run "
    "(default: $EVALS_CACHE or ~/.cache/evals/completions.sqlite)"
)
FRESH_HELP = "regenerate every completion, ignoring what the cache holds, and store the new ones"
DATA_HELP = (
    "local data instead of the hub for TASK (or every task when TASK= is left out): "
    "a file, directory or glob; 'builtin' for the offline smoke set (repeatable)"
)
TASK_OPT_HELP = (
    "task option (repeatable), e.g. extractor=tiger-2024-05 or guess_unparsed=true (mmlu_pro), "
    "strict=true (aime), shuffle_seed=1 (gpqa_diamond); `evals tasks` lists every task's options"
)
BACKEND_OPT_HELP = (
    "backend option (repeatable), e.g. dtype=bfloat16; `evals backends` lists every backend's options"
)


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
    """argparse that refuses abbreviated flags, keeps the epilog's layout, builds an expensive epilog
    only when help is asked for, and reports a bad option as one line (no usage dump), exit code 2."""

    def __init__(self, *args: Any, epilog_factory: Callable[[], str] | None = None, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self.epilog_factory is not None:
            self.epilog = self.epilog_factory()
        return super().format_help()

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="evals",
        description="Reproduce a model card's benchmark table.",
        epilog="example:\n  evals run --card smoke\n  evals score --help",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    _add_run(sub)
    _add_score(sub)
    _add_report(sub)
    _add_parity(sub)
    add_compare(sub)
    add_gate(sub)
    add_prefetch(sub)
    add_merge(sub)
    add_export(sub)
    add_plan(sub)
    _add_listing(sub, "tasks", "list tasks with their versions, variants (and what each means) and options")
    _add_listing(sub, "backends", "list backends with their options (name, type, default, meaning)")
    _add_listing(sub, "cards", "list model cards and their rows")
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="generate, score and report a card or a list of tasks",
        description="Generate what the completion cache lacks, score every row and write a run directory.",
        epilog_factory=lambda: (
            "examples:\n"
            "  evals run --card smoke\n"
            "  evals run --tasks mmlu_pro,aime --model path/to/model --backend hf --limit 8 --data builtin\n"
            "  evals run --tasks mmlu_pro --variant tiger-5shot --model model.gguf --backend llamacpp \\\n"
            "      --task-opt extractor=tiger-2024-05 --backend-opt parallel=4\n\n" + _task_summary()
        ),
    )
    run.add_argument(
        "--card", metavar="NAME", help="card name or .toml path (default: the offline smoke card)"
    )
    run.add_argument("--tasks", metavar="TASK,...", help="comma-separated tasks: the rows of --card to run, or without --card "
                                     "an ad-hoc run of these tasks (needs --model)")  # fmt: skip
    run.add_argument(
        "--variant", metavar="NAME", help="task variant, overriding the card's (`evals tasks` lists them)"
    )
    _add_model(run, "", "the model")
    run.add_argument("--limit", type=_positive_int, metavar="N", help="first N samples of each task")
    run.add_argument(
        "--repeats", type=_positive_int, metavar="K", help="completions per sample (default: the card's)"
    )
    _add_data(run)
    _add_task_opt(run)
    run.add_argument(
        "--output", type=Path, metavar="DIR", help="run directory (default: runs/CARD-TIMESTAMP)"
    )
    _add_cache(run)
    run.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        help="generation budget per completion (default: the card's)",
    )
    run.add_argument(
        "--temperature", type=float, metavar="T", help="sampling temperature (default: the card's)"
    )
    run.add_argument("--seed", type=int, metavar="N", help="sampling seed (default: the card's)")
    run.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                     help="turn the model's thinking mode on or off (default: the card's)")  # fmt: skip
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_redact_option(run)
    run.add_argument("--offline", type=Path, metavar="DIR",
                     help="read the model and data only from this `evals prefetch` folder (no hub access)")  # fmt: skip
    add_scaleout_flags(run)
    run.set_defaults(handler=_cmd_run)


def _add_score(sub: Any) -> None:
    score = sub.add_parser(
        "score",
        help="score existing generations (a JSONL file of predictions) with a task",
        description="Score predictions made by any harness with one task, against its dataset.",
        epilog_factory=lambda: (
            "examples:\n"
            "  evals score gpt4o.jsonl --task mmlu_pro --variant tiger-5shot \\\n"
            "      --task-opt extractor=tiger-2024-05 --data 'mmlu_pro/data/test-*.parquet' --output runs/gpt4o\n"
            "  evals score preds.jsonl --task gpqa_diamond --data builtin\n\n"
            + PREDICTIONS_FORMAT
            + "\n\n"
            + _task_summary()
        ),
    )
    score.add_argument("predictions", type=Path, help="JSONL file of predictions (format below)")
    score.add_argument("--task", required=True, help="the task to score with (listed below)")
    score.add_argument(
        "--variant", metavar="NAME", help="task variant (listed below; default: the task's first)"
    )
    _add_task_opt(score)
    score.add_argument("--data", action="append", default=[], metavar="[TASK=]PATH",
                       help="local data instead of the hub: a file, directory or glob, or 'builtin' for the "
                            "offline smoke set; TASK= may name the scored task")  # fmt: skip
    score.add_argument(
        "--output", type=Path, metavar="DIR", help="run directory (default: runs/score-TASK-TIMESTAMP)"
    )
    _add_redact_option(score)
    score.set_defaults(handler=_cmd_score)


def _add_report(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="render report.md and report.html of a run directory again",
        description="Render report.md and report.html of an existing run directory again.",
        epilog="example:\n  evals report runs/smoke-20250101-120000 --redact-questions",
    )
    report.add_argument("run_dir", type=Path, help="a run directory written by `evals run` or `evals score`")
    _add_redact_option(report)
    report.set_defaults(handler=_cmd_report)


def _add_parity(sub: Any) -> None:
    parity = sub.add_parser(
        "parity",
        help="run the same requests on two backends: prompt ids, greedy tokens, answers",
        description="Run the same requests on backend A and backend B and say where they differ.",
        epilog=(
            "example (one model on two backends):\n"
            "  evals parity --a-backend hf --a-model model.Q4_1.gguf \\\n"
            "      --b-backend llamacpp --b-model model.Q4_1.gguf --b-backend-opt parallel=2 \\\n"
            "      --tasks mmlu_pro --data builtin --limit 8"
        ),
    )
    for side in ("a", "b"):
        _add_model(parity, f"{side}-", f"side {side.upper()}'s model", required=True)
    parity.add_argument(
        "--card", default="smoke", metavar="NAME", help="card whose rows give the requests (default: smoke)"
    )
    parity.add_argument("--tasks", metavar="TASK,...", help="comma-separated tasks instead of a card")
    parity.add_argument("--variant", metavar="NAME", help="task variant, overriding the card's")
    _add_data(parity)
    _add_task_opt(parity)
    parity.add_argument(
        "--limit", type=_positive_int, default=8, metavar="N", help="samples per row (default: 8)"
    )
    parity.add_argument("--max-tokens", type=_positive_int, default=32, metavar="N",
                        help="greedy continuation length compared token by token (default: 32)")  # fmt: skip
    parity.add_argument("--answer-max-tokens", type=_positive_int, metavar="N",
                        help="generation budget of the answers compared (default: the card's)")  # fmt: skip
    _add_cache(parity)
    parity.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON here")
    parity.add_argument(
        "--tie-margin",
        type=float,
        metavar="GAP",
        default=5e-3,
        help="top-2 logit gap under which a greedy divergence counts as a near-tie (default: 0.005)",
    )
    parity.add_argument(
        "--require-match",
        action="store_true",
        help="exit 1 unless prompts are identical and greedy tokens identical up to near-ties (CI gates)",
    )
    parity.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parity.set_defaults(handler=_cmd_parity)


def _add_listing(sub: Any, name: str, help: str) -> None:
    listing = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                             epilog=f"example:\n  evals {name}")  # fmt: skip
    listing.set_defaults(handler=LISTINGS[name])


def _add_model(parser: argparse.ArgumentParser, prefix: str, what: str, required: bool = False) -> None:
    default = "" if required else " (default: the card's)"
    parser.add_argument(f"--{prefix}backend", required=required, choices=sorted(registry.BACKENDS),
                        help=f"backend that runs {what}{default}")  # fmt: skip
    parser.add_argument(f"--{prefix}model", required=required, metavar="MODEL",
                        help=f"{what}: hub id, local directory, .gguf file, pkg:PACKAGE/FILE or builtin:NAME{default}")  # fmt: skip
    parser.add_argument(f"--{prefix}backend-opt", action="append", default=[], metavar="KEY=VALUE",
                        help=BACKEND_OPT_HELP)  # fmt: skip


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", default=[], metavar="[TASK=]PATH", help=DATA_HELP)


def _add_task_opt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task-opt", action="append", default=[], metavar="KEY=VALUE", help=TASK_OPT_HELP)


def _add_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, metavar="FILE", help=CACHE_HELP)
    parser.add_argument("--fresh", action="store_true", help=FRESH_HELP)


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


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(_key_value(item, "--task-opt") for item in args.task_opt)


def _task_list(text: str | None) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()] if text else []
    for name in tasks:
        registry.task_class(name)  # unknown task: one clear line before any model loads
    return tasks


def _cmd_run(args: argparse.Namespace) -> int:
    from evals.pipeline import RunOptions, run

    tasks = _task_list(args.tasks)
    sampling: dict[str, Any] = {}
    for name in ("max_tokens", "temperature", "seed", "thinking"):
        if getattr(args, name) is not None:
            sampling[name] = getattr(args, name)
    backend_options = dict(_key_value(item, "--backend-opt") for item in args.backend_opt)
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
        fresh=args.fresh,
        show_progress=not args.no_progress,
        redact=args.redact_questions,
    )
    if args.offline is not None:
        from evals.offline import offline_options

        options = offline_options(options, args.offline)
    if uses_scaleout(args):
        return run_scaleout(args, options)
    outcome = run(options)
    info = outcome.run_info.generation
    _print_summary(
        outcome.results,
        outcome.out_dir,
        f"completions: {info.cached} cached, {info.generated} generated, {info.failed} failed, "
        f"{info.shared} shared with an identical prompt",
    )
    return 0


def _print_summary(results: Any, out_dir: Path, *notes: str) -> None:
    """The card table, then where the run directory and its reports are (details stay in the files)."""
    from reports.markdown import render_summary

    print(render_summary(results))
    for note in notes:
        print(note)
    print(f"run directory: {out_dir}")
    print(f"reports: {out_dir / 'report.md'}  {out_dir / 'report.html'}")


def _cmd_score(args: argparse.Namespace) -> int:
    from evals.rescore import ScoreOptions, score

    registry.task_class(args.task)
    outcome = score(
        ScoreOptions(
            task=args.task,
            predictions=args.predictions,
            variant=args.variant,
            task_options=_task_options(args),
            data=_score_data(args.data, args.task),
            output=args.output,
            redact=args.redact_questions,
        )
    )
    _print_summary(outcome.results, outcome.out_dir)
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
    from evals.run_dir import load_run_dir, rewrite_reports

    rewrite_reports(args.run_dir, redact=args.redact_questions)
    _print_summary(load_run_dir(args.run_dir).results, args.run_dir)
    return 0


def _cmd_parity(args: argparse.Namespace) -> int:
    import json

    from evals.parity import ParityOptions, Side, render_parity, run_parity

    a = Side(args.a_backend, args.a_model, dict(_key_value(i, "--a-backend-opt") for i in args.a_backend_opt))
    b = Side(args.b_backend, args.b_model, dict(_key_value(i, "--b-backend-opt") for i in args.b_backend_opt))
    tasks = _task_list(args.tasks)
    report = run_parity(
        ParityOptions(
            a=a,
            b=b,
            card=None if tasks else args.card,
            tasks=tasks,
            variant=args.variant,
            task_options=_task_options(args),
            data=_data_overrides(args.data),
            limit=args.limit,
            max_tokens=args.max_tokens,
            tie_margin=args.tie_margin,
            answer_max_tokens=args.answer_max_tokens,
            cache=args.cache,
            fresh=args.fresh,
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


# --- listings -----------------------------------------------------------------------------------


def _task_summary() -> str:
    """One line per task with its variants, for the epilogs of run and score."""
    lines = ["tasks and their variants (`evals tasks` says what each variant means):"]
    for name in sorted(registry.TASKS):
        variants = ", ".join(registry.task_class(name).variants) or "(none)"
        lines.append(f"  {name}: {variants}")
    return "\n".join(lines)


def task_option_defaults(name: str) -> list[str]:
    """`name: type = default` for each keyword-only constructor parameter of the task."""
    parameters = inspect.signature(registry.task_class(name)).parameters
    described = []
    for option in sorted(registry.task_options(name)):
        parameter = parameters[option]
        kind = "" if parameter.annotation is inspect.Parameter.empty else f": {parameter.annotation}"
        described.append(f"{option}{kind} = {parameter.default!r}")
    return described


def _cmd_tasks(args: argparse.Namespace) -> int:
    for name in sorted(registry.TASKS):
        cls = registry.task_class(name)
        print(f"{name}  v{cls.version}")
        variants = dict(cls.variants)
        width = max((len(v) for v in variants), default=0)
        print("  variants (--variant):" + ("" if variants else " none declared"))
        for variant, meaning in variants.items():
            print(f"    {variant.ljust(width)}  {meaning}")
        options = task_option_defaults(name)
        print("  options (--task-opt KEY=VALUE):" + ("" if options else " none"))
        for option in options:
            print(f"    {option}")
    return 0


def _cmd_backends(args: argparse.Namespace) -> int:
    from evals.schema import option_help

    for name in sorted(registry.BACKENDS):
        try:
            cls = registry.backend_class(name)
        except registry.MissingDependency:
            print(f"{name}  (not installed: pip install -e '.[{registry.EXTRAS.get(name, name)}]')")
            continue
        print(f"{name}  options (--backend-opt KEY=VALUE):")
        rows = [(o, t, repr(d), h) for o, t, d, h in option_help(cls.options_type)]
        widths = [max(len(row[i]) for row in rows) for i in range(3)] if rows else [0, 0, 0]
        for option, kind, default, meaning in rows:
            print(
                f"    {option.ljust(widths[0])}  {kind.ljust(widths[1])}  {default.ljust(widths[2])}  {meaning}"
            )
    return 0


def _cmd_cards(args: argparse.Namespace) -> int:
    for name in card_names():
        card = load_card(name)
        rows = ", ".join(
            f"{r.label}{'' if r.task in registry.TASKS else ' (not yet available)'}" for r in card.rows
        )
        print(f"{name}: {card.title} [{card.model}]\n    {rows}")
    return 0


LISTINGS: dict[str, Callable[[argparse.Namespace], int]] = {
    "tasks": _cmd_tasks,
    "backends": _cmd_backends,
    "cards": _cmd_cards,
}


# --- values -------------------------------------------------------------------------------------


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


def _data_overrides(items: list[str]) -> dict[str, str]:
    """`--data [TASK=]PATH` items as {task or "*": path}."""
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


def _score_data(items: list[str], task: str) -> str | None:
    """The one data source of the scored task: a bare PATH or `TASK=PATH` naming that task."""
    overrides = _data_overrides(items)
    for key in overrides:
        if key not in (task, "*"):
            raise ValueError(
                f"--data {key}=...: `evals score` scores only '{task}'; use --data PATH or --data {task}=PATH"
            )
    return overrides.get(task) or overrides.get("*")


if __name__ == "__main__":
    raise SystemExit(main())
