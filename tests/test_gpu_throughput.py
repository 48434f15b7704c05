"""The GPU benchmarks' CPU self-tests: bench/gpu_throughput.py (its 12B config has the published
shape and size; the self-test, the same code as the device run on a scaled-down config, runs end to
end and writes the table's fields), bench/gpu_refill.py, and the llama.cpp device script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bench_scripts import load_bench
from transformers import Gemma4UnifiedForCausalLM

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_throughput.py"


def test_12b_config_has_the_published_size_and_attention_pattern() -> None:
    config = load_bench("gpu_throughput").text_config("12b")
    with torch.device("meta"):
        model = Gemma4UnifiedForCausalLM(config)
    parameters = sum(p.numel() for p in model.parameters())
    assert 11.85e9 < parameters < 11.95e9  # published: 11.93 B (the text model)
    assert 23.7e9 < 2 * parameters < 23.9e9  # bf16 bytes: the weight-read bound's numerator
    assert config.layer_types[:6] == ["sliding_attention"] * 5 + ["full_attention"]
    assert config.layer_types.count("full_attention") == 8
    full = config.per_layer_config[5]
    assert (full.head_dim, full.num_key_value_heads) == (512, 1)
    sliding = config.per_layer_config[0]
    assert (sliding.head_dim, sliding.num_key_value_heads, config.sliding_window) == (256, 8, 1024)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied embeddings
    assert config.final_logit_softcapping == 30.0


def test_a_saved_random_model_is_reused_only_for_the_same_config_and_dtype(tmp_path: Path) -> None:
    bench = load_bench("gpu_throughput")
    tiny, path = bench.text_config("tiny"), tmp_path / "model"
    count = bench.save_random_model(tiny, "cpu", torch.float32, path)
    weights = path / "model.safetensors"
    first = weights.stat().st_mtime_ns
    assert bench.save_random_model(tiny, "cpu", torch.float32, path) == count
    assert weights.stat().st_mtime_ns == first  # reused, not written again
    bench.save_random_model(tiny, "cpu", torch.bfloat16, path)  # another dtype: built again
    assert weights.stat().st_mtime_ns != first
    assert json.loads((path / "bench-model.json").read_text())["dtype"] == "torch.bfloat16"


@pytest.mark.subprocess
def test_self_test_runs_every_path_and_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "gpu_throughput.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--self-test", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["config"] == "tiny" and report["dtype"] == "float32"
    rows = report["rows"]
    assert [(r["path"], r["batch"]) for r in rows] == [
        ("raw generate", 1), ("harness", 1), ("raw generate", 4), ("harness", 4)
    ]  # fmt: skip
    for row in rows:
        assert row["tokens_per_s"] > 0 and len(row["tokens_per_s_each"]) == row["repeats"] == 2
        assert row["peak_memory_gb"] > 0 and row["new_tokens"] == 8
    assert all(r["vs_raw"] == 1.0 for r in rows if r["path"] == "raw generate")
    decode = report["decode"]
    assert decode["weight_read_bound_ms"] == pytest.approx(report["weight_bytes"] / 4.8e12 * 1e3)
    assert decode["batch1_ms_per_token"] > 0 and decode["x_bound"] > 1
    profile = report["profile"]
    assert profile["wall_ms"] > 0 and profile["cpu_ops"] > 0 and "aten::" in profile["table"]
    assert [s["batch"] for s in report["static"]] == [1, 4] and report["skipped"] == []
    assert "| harness" in done.stdout and "batch-1 decode:" in done.stdout


@pytest.mark.subprocess
def test_refill_benchmark_self_test_matches_the_simulator(tmp_path: Path) -> None:
    """bench/gpu_refill.py --self-test: static and refilled batches on the tiny config with budgets
    drawn from the published MMLU-Pro lengths; the same tokens either way, and each path's decode
    steps exactly what bench/batching_waste.py's simulator predicts for those budgets."""
    out = tmp_path / "gpu_refill.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_refill.py"), "--self-test", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    static, refill = report["paths"]["static"], report["paths"]["refill-4"]
    assert len(static) == len(refill) == 2 and report["identical"] == 12
    assert static[0]["ended_early"] == 0  # random weights: every row runs to its drawn budget
    assert {r["tokens"] for r in static + refill} == {report["budgets"]["total"]}
    assert {r["decode_steps"] for r in static} == {report["predicted"]["static_steps"]}
    assert {r["decode_steps"] for r in refill} == {report["predicted"]["refill_steps"]}
    assert report["predicted"]["refill_steps"] < report["predicted"]["static_steps"]
    assert refill[0]["calls"] > static[0]["calls"] and report["refill_vs_static"] > 0
    exchange = report["prefill_exchange"]
    assert (
        exchange["step_ms"] > 0 and exchange["prefilled_again"] == report["predicted"]["prefilled_again"] > 0
    )
    assert "refill / static (tok/s)" in done.stdout


@pytest.mark.server
def test_llamacpp_gpu_script_cpu_selftest(tmp_path: Path, llama_server_binary: Path) -> None:
    """scripts/gpu_llamacpp_bench.sh --cpu-selftest: the device script's steps (save the random model
    for llama.cpp, convert to bf16 GGUF, quantize to Q8_0, harness vs direct llama-server for each)
    on the tiny config; every step timed and every figure written."""
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "EVALS_WORK": str(tmp_path / "work"),
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        [str(ROOT / "scripts" / "gpu_llamacpp_bench.sh"), "--cpu-selftest"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]
    steps = (tmp_path / "out" / "steps.txt").read_text().splitlines()
    assert [line.split(":")[0] for line in steps] == [
        "build llama.cpp (cpu)", "save random tiny model", "convert to GGUF bf16",
        "bench bf16", "quantize Q8_0", "bench Q8_0",
    ]  # fmt: skip
    for kind in ("bf16", "Q8_0"):
        report = json.loads((tmp_path / "out" / f"llamacpp_{kind}.json").read_text())
        assert report["parallel"] == 2 and report["identical"] == report["prompts"] == 4
        assert set(report["paths"]) == {"harness", "direct"} and report["ratio"] > 0


def test_llamacpp_gpu_script_dry_run_names_the_cuda_build(tmp_path: Path) -> None:
    env = {**os.environ, "EVALS_CUDA_ARCH": "90", "OUT": str(tmp_path / "out")}
    done = subprocess.run(
        [str(ROOT / "scripts" / "gpu_llamacpp_bench.sh"), "--dry-run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90" in done.stderr
    assert "--gpu-layers 99" in done.stdout and "--parallel 64" in done.stdout
    assert "model.Q8_0.gguf Q8_0" in done.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
