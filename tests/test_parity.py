"""`evals parity`: the same requests on two backends, compared at prompt-id, greedy-token and answer
level. Real backends only: HF against itself (batched vs one at a time), the tiny Gemma 4 on HF
against the same weights converted to GGUF and served by llama-server, and SmolLM2 dequantized in
transformers against its Q4_1 GGUF in llama.cpp."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.parity import ParityOptions, Rate, Side, _first_difference, render_parity, run_parity

TEXT_TASKS = ["mmlu_pro", "aime", "gpqa_diamond"]


def test_rate_wilson_interval() -> None:
    assert Rate(0, 0).rate is None and Rate(0, 0).wilson() is None
    assert Rate(8, 10).wilson() == pytest.approx((0.490, 0.943), abs=1e-3)
    assert Rate(10, 10).wilson() == pytest.approx((0.722, 1.0), abs=1e-3)


def test_first_difference() -> None:
    assert _first_difference([1, 2, 3], [1, 2, 4]) == 2
    assert _first_difference([1, 2], [1, 2, 3]) == 2
    assert _first_difference([], [5]) == 0


@pytest.mark.slow
def test_hf_against_itself_is_identical_at_every_level(tmp_path: Path) -> None:
    """Batched vs one-at-a-time HF on the tiny Gemma 4: everything must agree, through the CLI."""
    out = tmp_path / "parity.json"
    result = subprocess.run(
        [sys.executable, "-m", "evals.cli", "parity", "--a-backend", "hf", "--a-model", "builtin:tiny-gemma4",
         "--b-backend", "hf", "--b-model", "builtin:tiny-gemma4", "--b-backend-opt", "batch_size=1",
         "--tasks", ",".join(TEXT_TASKS), "--data", "builtin", "--limit", "3", "--max-tokens", "12", "--answer-max-tokens", "12", "--no-progress",
         "--require-match", "--json", str(out)],
        capture_output=True, text=True, timeout=600, env={**_env(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert [r["task"] for r in data["rows"]] == TEXT_TASKS
    for row in data["rows"]:
        assert row["prompt_ids_identical"]["agree"] == row["prompt_ids_identical"]["total"] == 3
        assert row["greedy_identical"]["agree"] == 3
        assert row["exactly_one_bos"]["A"]["agree"] == 3
        assert row["answers_agree"]["agree"] == 3
        assert row["greedy_diverged"] == row["greedy_diverged_at_near_tie"] == 0
    assert "greedy tokens identical" in result.stdout


@pytest.mark.slow
def test_tiny_gemma4_hf_and_llama_cpp_greedy_tokens_identical(tmp_path: Path, tiny_gemma4_gguf) -> None:
    """Same f32 weights on both sides. The random tiny model's next-token logits are nearly flat, so
    a greedy path may cross a step whose top-2 gap is below llama.cpp's rounding (its GELU goes
    through an fp16 table): such divergences must all be near-ties, none at a clear margin, and
    most continuations identical token for token."""
    report = run_parity(
        ParityOptions(
            a=Side("hf", str(tiny_gemma4_gguf.hf_dir)),
            b=Side("llamacpp", str(tiny_gemma4_gguf.model), {"parallel": 2}),
            tasks=TEXT_TASKS,
            data={"*": "builtin"},
            limit=3,
            max_tokens=16,
            answer_max_tokens=16,
            cache=tmp_path / "cache.sqlite",
        )
    )
    text = render_parity(report)
    print(text)
    assert report.consistent, text
    for row in report.rows:
        assert row.prompts.agree == row.prompts.total == 3, text
        assert row.one_bos["A"].agree == row.one_bos["B"].agree == 3, text
        assert row.greedy_diverged == 0, text
        assert row.answers.total == 3
    identical = sum(row.greedy.agree for row in report.rows)
    assert identical >= 6, text  # of 9; the rest diverged at near-ties only
    assert report.fingerprints["B"]["quantization"]["type"] == "F32"


@pytest.mark.slow
def test_smollm2_hf_dequantized_against_llama_cpp_q4_1(
    tmp_path: Path, smollm2_gguf: Path, llama_server_binary
) -> None:
    """Same GGUF: transformers dequantizes Q4_1 to float32, llama.cpp computes in Q4_1. Prompts must
    be identical; tokens and answers agree only partly, and the rates are printed."""
    report = run_parity(
        ParityOptions(
            a=Side("hf", str(smollm2_gguf)),
            b=Side("llamacpp", str(smollm2_gguf), {"parallel": 2}),
            tasks=["mmlu_pro", "gpqa_diamond"],
            data={"*": "builtin"},
            limit=4,
            max_tokens=16,
            answer_max_tokens=48,
            cache=tmp_path / "cache.sqlite",
        )
    )
    text = render_parity(report)
    print(text)  # the agreement rates (pytest -s shows them)
    for row in report.rows:
        assert row.prompts.agree == row.prompts.total == 4, text
        # SmolLM2 adds no BOS (its GGUF says add_bos_token false): nothing to count on either side
        assert row.one_bos["A"].total == row.one_bos["B"].total == 0, text
        assert row.greedy.total == 4 and row.answers.total == 4
        assert row.mean_prefix is not None and row.mean_prefix > 0.0, text  # same model: starts alike
    assert report.fingerprints["B"]["quantization"]["type"] == "Q4_1"


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**os.environ, "EVALS_CACHE": str(tmp_path / "cache.sqlite")}


@pytest.mark.slow
def test_answers_only_against_an_openai_compatible_server(
    tmp_path: Path, smollm2_gguf: Path, llama_server_binary: Path
) -> None:
    """A backend without prompt ids (openai) is compared on answers only, and the report says so."""
    from runners.llama_server import LlamaServer

    with LlamaServer(smollm2_gguf, parallel=1, binary=str(llama_server_binary)) as server:
        server.start()
        report = run_parity(
            ParityOptions(
                a=Side("llamacpp", str(smollm2_gguf), {"parallel": 1}),
                b=Side("openai", "smollm2", {"base_url": f"{server.base_url}/v1", "concurrency": 1}),
                tasks=["mmlu_pro"],
                data={"*": "builtin"},
                limit=4,
                answer_max_tokens=48,
                cache=tmp_path / "cache.sqlite",
            )
        )
    text = render_parity(report)
    print(text)
    assert not report.token_level and "answers only" in text
    (row,) = report.rows
    assert row.prompts.total == row.greedy.total == 0
    assert row.answers.total == 4
    # the same GGUF on the same llama-server build, one slot each, greedy: the same answers
    assert row.answers.agree == 4, text
