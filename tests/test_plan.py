"""`evals plan` on the real cards: requests per row from each dataset's known size (checked against
the sizes the tasks enforce on load), budgets from the card, totals that add up, times at a given
or measured throughput, counting local data, bad input as one line; and (real data) the typical
lengths recomputed from the published outputs they come from."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from realdata import GPT4O_GLOB, REALDATA

from evals import plan as planmod
from evals.cli import main
from evals.plan import make_plan, render_plan
from tasks import covost2, gpqa_diamond, livecodebench, mmlu_pro, mmmu_pro
from tasks.aime import AIME
from tasks.mmlu_pro import MMLUPro


def plan_json(capsys: Any, *args: str) -> dict[str, Any]:
    assert main(["plan", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_gemma_card_requests_budgets_and_totals(capsys: Any) -> None:
    plan = plan_json(capsys, "--card", "gemma-4-12b-it", "--tok-per-s", "2500")
    rows = {r["task"]: r for r in plan["rows"]}
    covost_pairs = covost2.VARIANT_PAIRS["x-en-no-zh"]
    # the sizes each task checks its hub data against, times the card's repeats
    expected = {
        "mmlu_pro": (sum(mmlu_pro.TEST_CATEGORY_SIZES.values()), 1),
        "aime": (30, 4),
        "livecodebench": (livecodebench.SHARD_ROWS[6], 8),
        "gpqa_diamond": (gpqa_diamond.HUB_ROWS, 4),
        "mmmu_pro": (2 * mmmu_pro.HUB_ROWS, 1),
        "covost2": (sum(planmod.COVOST2_TEST[p] for p in covost_pairs), 1),
    }
    assert {t: (r["items"], r["repeats"]) for t, r in rows.items()} == expected
    assert rows["mmlu_pro"]["requests"] == 12_032 and rows["livecodebench"]["requests"] == 1_400
    assert rows["gpqa_diamond"]["requests"] == 792 and rows["aime"]["requests"] == 120
    assert len(covost_pairs) == 20 and "zh-CN_en" not in covost_pairs
    for pair, size in covost2.KNOWN_TEST_SIZES.items():  # the sizes the task itself knows agree
        assert planmod.COVOST2_TEST.get(pair, planmod.COVOST2_EN_X_TEST) == size
    assert rows["aime"]["max_tokens"] == 65_536 and rows["mmlu_pro"]["max_tokens"] == 32_768
    assert rows["covost2"]["thinking"] is False and rows["mmlu_pro"]["thinking"] is True
    assert rows["aime"]["typical_tokens"] == 12_090  # the published reasoning length
    assert rows["mmlu_pro"]["typical_tokens"] == 468 * planmod.REASONING_FACTOR
    assert rows["covost2"]["typical_tokens"] == 42  # thinking off: the plain answer length
    for r in plan["rows"]:
        assert r["requests"] == r["items"] * r["repeats"]
        assert r["expected_tokens"] == r["requests"] * r["typical_tokens"]
        assert r["budget_tokens"] == r["requests"] * r["max_tokens"]
        assert r["expected_seconds"] == pytest.approx(r["expected_tokens"] / 2500)
    totals = plan["totals"]
    for key in ("requests", "expected_tokens", "budget_tokens", "expected_seconds", "budget_seconds"):
        assert totals[key] == pytest.approx(sum(r[key] for r in plan["rows"]))


def test_plain_table_names_every_row_the_totals_and_the_sources() -> None:
    plan = make_plan("gemma-4-12b-it", tok_per_s=2500)
    text = render_plan(plan)
    for row in plan.rows:
        assert row.label in text and row.typical_source in text and row.items_source in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert f"{plan.requests:,}" in total and "66.3M" in total and "h" in total
    assert "2500 generated tokens/s (--tok-per-s)" in text


def test_limit_and_tasks_select(capsys: Any) -> None:
    plan = plan_json(capsys, "--card", "gemma-4-12b-it", "--tasks", "mmlu_pro,aime", "--limit", "100")
    assert [(r["task"], r["items"], r["requests"]) for r in plan["rows"]] == [
        ("mmlu_pro", 100, 100),
        ("aime", 30, 120),  # 30 problems: the limit does not bind
    ]
    assert plan["rows"][0]["items_source"].startswith("--limit 100 of")


def test_local_data_is_counted(capsys: Any) -> None:
    plan = plan_json(capsys, "--card", "gemma-4-12b-it", "--tasks", "mmlu_pro,aime", "--data", "builtin")
    counts = {r["task"]: (r["items"], r["requests"]) for r in plan["rows"]}
    n_mmlu, n_aime = len(MMLUPro().load("builtin")), len(AIME("2026").load("builtin"))
    assert counts == {"mmlu_pro": (n_mmlu, n_mmlu), "aime": (n_aime, 4 * n_aime)}
    assert all(r["items_source"] == "counted in builtin" for r in plan["rows"])


def test_measured_throughput_for_a_backend(capsys: Any) -> None:
    plan = plan_json(capsys, "--card", "ci-gate", "--backend", "llamacpp")
    assert {r["tok_per_s"] for r in plan["rows"]} == {22.8}
    assert plan["totals"]["expected_seconds"] == pytest.approx(plan["totals"]["expected_tokens"] / 22.8)
    # the ci-gate card's budget (64) is below every typical length: estimates equal the bound
    assert plan["totals"]["expected_tokens"] == plan["totals"]["budget_tokens"]
    none = plan_json(capsys, "--card", "gemma-4-12b-it", "--backend", "vllm")
    assert all(r["tok_per_s"] is None and "give --tok-per-s" in r["tok_per_s_source"] for r in none["rows"])
    assert none["totals"]["expected_seconds"] is None
    assert main(["plan", "--card", "gemma-4-12b-it"]) == 0
    assert "give --tok-per-s" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--card", "nope"], "card 'nope' not found"),
        (["--card", "gemma-4-12b-it", "--tasks", "foo"], "unknown task 'foo'"),
        (["--card", "gemma-4-12b-it", "--tasks", "covost2"], None),  # a valid row: no error
        (["--card", "gemma-4-12b-it", "--backend", "foo"], "unknown backend 'foo'"),
        (["--card", "gemma-4-12b-it", "--data", "mmlu_pro=/no/such/dir"], "/no/such/dir does not exist"),
    ],
)
def test_bad_input_is_one_line(capsys: Any, args: list[str], expected: str | None) -> None:
    code = main(["plan", *args])
    err = capsys.readouterr().err.strip()
    if expected is None:
        assert code == 0 and err == ""
        return
    assert code == 2 and expected in err and "\n" not in err


@pytest.mark.parametrize("value", ["0", "-5", "abc", "nan", "inf"])
def test_bad_throughput_is_one_line(capsys: Any, value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "--card", "gemma-4-12b-it", "--tok-per-s", value])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and "--tok-per-s: must be a positive number" in err and "\n" not in err
    with pytest.raises(ValueError, match="--tok-per-s must be a positive number"):
        make_plan("gemma-4-12b-it", tok_per_s=float(value) if value != "abc" else -1.0)


AIME_TABLE = REALDATA / "aime" / "matharena_ai_aime2025I_per_problem_accuracy_table.json"


@pytest.mark.realdata(AIME_TABLE)
def test_aime_lengths_follow_from_matharenas_published_cost() -> None:
    cost = next(row for row in json.loads(AIME_TABLE.read_text()) if row["question"] == "Cost")
    completions = 15 * 4
    o3_mini_high = cost["o3-mini (high)"] / completions / 4.40e-6  # $ per output token
    gpt_4o = (cost["gpt-4o"] - 0.0225) / completions / 10e-6  # less the input: ~150 tokens x 60 at $2.50/M
    assert planmod.THINKING_TOKENS["aime"][0] == pytest.approx(o3_mini_high, rel=0.01)
    assert planmod.NO_THINKING_TOKENS["aime"][0] == pytest.approx(gpt_4o, rel=0.01)


LCB = REALDATA / "livecodebench" / "lcb_submissions_O1-Mini-2024-09-12_codegeneration_1_0.2_eval_all.json"
MMMU = [REALDATA / "mmmu_pro" / f"gpt-4o_{s}_cot.jsonl" for s in ("standard10opt", "vision")]


@pytest.mark.slow
@pytest.mark.realdata(Path(GPT4O_GLOB).parent, LCB, *MMMU)
def test_typical_lengths_are_the_published_outputs_means(smollm2_gguf: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)

    def mean_tokens(texts: list[str]) -> float:
        return statistics.mean(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])

    gpt4o = [
        r["response"]
        for p in sorted(Path(GPT4O_GLOB).parent.glob("*_result.json"))
        for r in json.loads(p.read_text())
    ]
    assert len(gpt4o) == 12_032
    assert round(mean_tokens(gpt4o)) == planmod.NO_THINKING_TOKENS["mmlu_pro"][0]
    lcb = [r["output_list"][0] for r in json.loads(LCB.read_text())]
    assert round(mean_tokens(lcb)) == planmod.NO_THINKING_TOKENS["livecodebench"][0]
    mmmu = [json.loads(line)["response"] for path in MMMU for line in path.read_text().splitlines()]
    assert round(mean_tokens(mmmu)) == planmod.NO_THINKING_TOKENS["mmmu_pro"][0]
