"""Credentials never reach a record or a log: a run given an API key on the command line (both
spellings argparse accepts) and hub tokens in its environment writes none of them to the run
directory, the cache or its output, while the key still reaches the server. About 5 s."""

from __future__ import annotations

from pathlib import Path

import pytest
from model_server import ModelServer
from tally import Tally

from runs import evals, run_args

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

SECRETS = ("sk-cmdline-secret-1", "sk-cmdline-secret-2", "hf_environment_secret", "hf_hub_secret")


def test_no_credential_in_records_or_logs(
    model_server: ModelServer, smoke_data: Path, tmp_path: Path, tally: Tally, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", SECRETS[2])
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", SECRETS[3])
    out, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    args = run_args(model_server.base_url, out, cache, smoke_data, tasks="gpqa_diamond")
    done = evals([*args, "--backend-opt", f"api_key={SECRETS[0]}"])
    assert done.returncode == 0, done.stderr
    again = evals([*args, f"--backend-opt=api_key={SECRETS[1]}", "--output", str(tmp_path / "again"),
                   "--cache", str(tmp_path / "second.sqlite")])  # fmt: skip
    assert again.returncode == 0, again.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in written) and {cache, tmp_path / "second.sqlite"} <= set(written)
    for path in written:
        blob = path.read_bytes()
        leaked = [s for s in SECRETS if s.encode() in blob]
        assert not leaked, f"{path} holds {leaked}"
    for output in (done.stdout, done.stderr, again.stdout, again.stderr):
        assert not [s for s in SECRETS if s in output]
    assert "<redacted>" in (tmp_path / "again" / "run.json").read_text()
    assert {f"Bearer {SECRETS[0]}", f"Bearer {SECRETS[1]}"} <= model_server.auth  # used, not recorded
    tally.fault("credentials on the command line and in the environment")
