"""The dataset changes under a cached run (a new revision of the same file): never silently mixed.

Run MMLU-Pro on a data file, then edit that file in place (one question reworded, one gold answer
changed, as a new dataset revision would) and run the same command on the same cache: only the
reworded question is generated again (its prompt, hence its cache key, changed; the old
completion is not served for the new question), the changed answer is scored against the new
target, the row's data fingerprint differs, and `evals compare` of the two runs refuses in one
line naming the changed sample and both data fingerprints (with --allow-protocol-diff the changed
target and the changed prompt are both recorded as protocol differences). About 12 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_server import ModelServer
from tally import Tally

from evals.compare import pair_runs
from evals.run_dir import load_run_dir
from runs import evals, generation, mmlu_with_duplicates, run_args

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def row_protocol(out: Path) -> dict:
    return dict(json.loads((out / "results.json").read_text())["rows"][0]["protocol"])


def samples(out: Path) -> dict[tuple[str, int], dict]:
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {(r["id"], r["repeat"]): r for r in records}


def test_changed_dataset_is_named_not_mixed(model_server: ModelServer, tmp_path: Path, tally: Tally) -> None:
    data = mmlu_with_duplicates(tmp_path)
    cache = tmp_path / "cache.sqlite"
    first = evals(run_args(model_server.base_url, tmp_path / "old", cache, data, tasks="mmlu_pro"))
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    reworded, new_answer = rows[1], rows[2]  # ids 900002 and 900003 (neither is duplicated)
    reworded["question"] += " Give the sum in base ten."
    new_answer["answer"], new_answer["answer_index"] = "A", 0
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))

    second = evals(run_args(model_server.base_url, tmp_path / "new", cache, data, tasks="mmlu_pro"))
    assert second.returncode == 0, second.stderr
    stats = generation(tmp_path / "new")
    assert stats["generated"] == 2 and stats["cached"] == stats["requested"] - 2  # its two repeats
    old, new = samples(tmp_path / "old"), samples(tmp_path / "new")
    for repeat in (0, 1):
        changed = ("900002", repeat)
        assert new[changed]["prompt_id"] != old[changed]["prompt_id"]
        assert new[changed]["answer"] != old[changed]["answer"], "an old completion answered a new question"
        assert (old[("900003", repeat)]["target"], new[("900003", repeat)]["target"]) == ("D", "A")
    assert (
        row_protocol(tmp_path / "old")["data_fingerprint"]
        != row_protocol(tmp_path / "new")["data_fingerprint"]
    )

    compared = evals(["compare", str(tmp_path / "old"), str(tmp_path / "new")])
    assert compared.returncode == 2
    line = compared.stderr.strip()
    assert "\n" not in line and "--allow-protocol-diff" in line
    assert "sample 900003" in line and "data_fingerprint" in line
    assert row_protocol(tmp_path / "old")["data_fingerprint"][:12] in line
    allowed = pair_runs(
        load_run_dir(tmp_path / "old"), load_run_dir(tmp_path / "new"), allow_protocol_diff=True
    )
    named = " ".join(allowed[0].protocol_differences)
    assert "target of sample 900003" in named and "prompt of sample 900002 differs" in named  # flagged
    tally.fault("dataset changed under a cached run")
