"""`evals run --backend openai` end to end against a real llama-server on loopback (started here,
not managed by the harness): the report comes out, the fingerprint names the served model, and a
second run is served entirely from the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.run_dir import load_run_dir
from runners.llama_server import LlamaServer

pytestmark = pytest.mark.slow


def test_run_through_an_openai_compatible_server(
    tmp_path: Path, llama_server_binary: Path, smollm2_gguf: Path
) -> None:
    with LlamaServer(smollm2_gguf, parallel=2, ctx_size=4096, binary=str(llama_server_binary)) as server:
        server.start()
        args = [sys.executable, "-m", "evals.cli", "run", "--backend", "openai", "--tasks", "mmlu_pro,aime",
                "--model", "smollm2", "--data", "builtin", "--limit", "3", "--max-tokens", "32",
                "--backend-opt", f"base_url={server.base_url}/v1", "--backend-opt", "concurrency=2",
                "--backend-opt", "api_key=sk-test-secret", "--no-progress"]  # fmt: skip
        env = {**os.environ, "EVALS_CACHE": str(tmp_path / "cache.sqlite")}
        first = subprocess.run([*args, "--output", str(tmp_path / "a")], capture_output=True, text=True,
                               env=env, timeout=600)  # fmt: skip
        assert first.returncode == 0, first.stderr[-2000:]
        second = subprocess.run([*args, "--output", str(tmp_path / "b")], capture_output=True, text=True,
                                env=env, timeout=600)  # fmt: skip
        assert second.returncode == 0, second.stderr[-2000:]
    first_run = load_run_dir(tmp_path / "a")
    generation = first_run.run.generation
    assert (generation.generated, generation.failed) == (6, 0)
    (model,) = first_run.run.models
    fingerprint = model.fingerprint
    assert fingerprint["backend"] == "openai"
    assert fingerprint["server"]["served_model"]["owned_by"] == "llamacpp"
    assert "base_url" in json.dumps(fingerprint["location"])
    assert "mmlu_pro" in first.stdout and "aime" in first.stdout
    for name in ("run.json", "results.json", "samples.jsonl", "report.md", "report.html"):
        assert "sk-test-secret" not in (tmp_path / "a" / name).read_text(), name  # credentials stay out
    assert first_run.run.options["backend_options"]["api_key"] == "<redacted>"
    rerun = load_run_dir(tmp_path / "b").run.generation
    assert (rerun.cached, rerun.generated) == (6, 0)
    assert all(s.output and s.completion_tokens > 0 for s in first_run.samples)
