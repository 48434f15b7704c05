"""Typed run records: every record type round-trips through JSON, other major format versions are
refused in one line, and prompts are stored once with their shared text stored once."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evals.cli import main
from evals.prompt_store import PromptStore, prompt_id, read_prompts
from evals.records import (
    FORMAT_VERSION,
    FollowupRecord,
    GenerationStats,
    MetricValue,
    ModelRecord,
    RecordFormatError,
    ReportHeader,
    Results,
    RowCost,
    RowProtocol,
    RowResult,
    RunInfo,
    SampleRecord,
    Setting,
    TaskInfo,
    UnavailableRow,
    VerdictRecord,
)
from evals.run_dir import load_run_dir, write_run
from evals.schema import ImagePart, Message, Request, Sampling

METRIC = MetricValue(
    value=0.5,
    stderr=0.1,
    ci95=(0.3, 0.7),
    n_samples=4,
    n_scores=8,
    outcomes={"correct": 4, "wrong": 3, "unparsed": 1},
    rates={"correct": 0.5, "wrong": 0.375, "unparsed": 0.125},
    flags={"last_integer_fallback": 1},
)
PROTOCOL = RowProtocol(
    task="aime",
    task_version="3",
    variant="2026",
    config={"extractor": "boxed", "data_fingerprint": "abc"},
    sampling={"temperature": 1.0, "top_p": 0.95, "stop": []},
    repeats=2,
    data_fingerprint="abc",
)
ROW = RowResult(
    label="AIME 2026",
    task="aime",
    metric="accuracy",
    summary=METRIC,
    verdict=VerdictRecord("below", -3.2, ""),
    protocol=PROTOCOL,
    published=77.5,
    per_category={"I": METRIC},
    extra_metrics={"pass@2": METRIC},
    corpus_metrics=None,
    accuracy_with_guess_credit=None,
    public_text=True,
    settings={"repeats": Setting(2, "inferred", "fits the published value")},
    cost=RowCost(
        "m", GenerationStats(requested=8, cached=2, generated=6, completion_tokens=600, seconds=3.0)
    ),
)
RESULTS = Results(
    ReportHeader(title="t", model="m", backend="hf", card="c", started="2026-01-01T00:00:00", harness="x"),
    [ROW, UnavailableRow("CoVoST", "covost2", 38.5, "task 'covost2' is not implemented yet")],
)
RUN = RunInfo(
    kind="run",
    started="2026-01-01T00:00:00",
    finished="2026-01-01T00:01:00",
    environment={"python": "3.11"},
    card={"name": "c"},
    models=[
        ModelRecord(
            spec="pkg:x/y.gguf",
            resolved="/tmp/y.gguf",
            backend="llamacpp",
            rows=["AIME 2026"],
            fingerprint={"quantization": {"file_type": "Q4_1"}},
            quantization={"file_type": "Q4_1"},
            size_bytes=123,
            load_seconds=1.5,
            peak_rss_bytes=1 << 30,
            peak_gpu_bytes=None,
        )
    ],
    options={"limit": 4},
    tasks=[TaskInfo(label="AIME 2026", task="aime", version="3", samples=4, requests=8)],
    generation=GenerationStats(requested=8, cached=2, generated=6, completion_tokens=600, seconds=3.0),
    wall_seconds=60.0,
)
SAMPLE = SampleRecord(
    row="AIME 2026",
    task="aime",
    variant="2026",
    id="2026-I-1",
    repeat=1,
    request_key="aime/2026/2026-I-1/1",
    prompt_id="p1",
    category="I",
    raw="<|channel>thought\nhm<channel|>\\boxed{73}",
    reasoning="hm",
    answer="\\boxed{73}",
    extracted="73",
    target="73",
    outcome="correct",
    value=1.0,
    finish_reason="stop",
    flags=("last_chance",),
    details={"reason": None},
    followup=FollowupRecord(raw="x", answer="x", finish_reason="stop", completion_tokens=1),
)


def _roundtrip(record: object) -> object:
    return json.loads(json.dumps(record.to_json()))  # type: ignore[attr-defined]


def test_every_record_type_round_trips() -> None:
    assert Results.from_json(_roundtrip(RESULTS)) == RESULTS
    assert RunInfo.from_json(_roundtrip(RUN)) == RUN
    assert SampleRecord.from_json(_roundtrip(SAMPLE)) == SAMPLE
    assert RESULTS.to_json()["format_version"] == RUN.to_json()["format_version"] == FORMAT_VERSION


def test_nan_metrics_survive_as_nan() -> None:
    empty = MetricValue(math.nan, math.nan, (math.nan, math.nan), 0, 0)
    row = RowResult(**{**ROW.__dict__, "summary": empty})
    back = Results.from_json(_roundtrip(Results(RESULTS.header, [row]))).scored[0].summary
    assert math.isnan(back.value) and math.isnan(back.ci95[0]) and back.n_samples == 0


@pytest.mark.parametrize("version", [None, "1.0", "3.1"])
def test_other_major_versions_are_refused_in_one_line(version: str | None) -> None:
    data = RESULTS.to_json()
    data.pop("format_version")
    if version is not None:
        data["format_version"] = version
    with pytest.raises(RecordFormatError) as error:
        Results.from_json(data, "runs/x/results.json")
    message = str(error.value)
    assert "\n" not in message and "runs/x/results.json" in message and "format 2.x" in message
    assert (version or "1 (unversioned)") in message


def test_a_newer_minor_version_is_read() -> None:
    assert Results.from_json({**RESULTS.to_json(), "format_version": "2.7"}).rows == RESULTS.rows


def test_protocol_differences_name_each_field() -> None:
    other = RowProtocol(**{**PROTOCOL.__dict__, "sampling": {**PROTOCOL.sampling, "temperature": 0.0}})
    assert PROTOCOL.differences(PROTOCOL) == []
    assert PROTOCOL.differences(other) == ["sampling.temperature: 1.0 vs 0.0"]


def _request(key: str, text: str, *, image: bytes | None = None) -> Request:
    parts = (ImagePart(data=image), text) if image else (text,)
    return Request(key=key, sample_id=key, repeat=0, sampling=Sampling(), messages=(Message.user(*parts),))


def test_prompts_are_stored_once_and_shared_paragraphs_once() -> None:
    shots = "".join(f"Example {i}: a long worked answer.\n\n" for i in range(5))
    requests = [_request(f"k{i}", f"{shots}Question {i}?") for i in range(50)]
    requests.append(Request(key="raw", sample_id="raw", repeat=0, sampling=Sampling(), prompt=shots + "Q?"))
    requests.append(_request("img", "What is shown?", image=b"\x89PNG fake"))
    store = PromptStore()
    ids = [store.add(r) for r in requests]
    store.add(_request("k0-again", f"{shots}Question 0?"))  # the same prompt under another key
    lines = list(store.lines())
    blocks = [line for line in lines if "block" in line]
    assert len(blocks) == 5 + 50 + 1 + 1  # five shared examples once, each question, "Q?", the image text
    prompts = read_prompts(json.loads(json.dumps(line)) for line in lines)
    assert len(prompts) == 52 and ids[0] == prompt_id(_request("other-key", f"{shots}Question 0?"))
    assert prompts[ids[3]] == [{"role": "user", "content": [f"{shots}Question 3?"]}]
    assert prompts[ids[50]] == shots + "Q?"
    assert prompts[ids[51]][0]["content"][0].startswith("<image ")


def test_run_directory_round_trips_and_old_format_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = PromptStore()
    request = _request("aime/2026/2026-I-1/1", "Find x.")
    sample = SampleRecord(**{**SAMPLE.__dict__, "prompt_id": store.add(request)})
    write_run(tmp_path, RUN, RESULTS, [sample], store)
    loaded = load_run_dir(tmp_path)
    assert (loaded.run, loaded.results, loaded.samples) == (RUN, RESULTS, [sample])
    assert loaded.prompts[sample.prompt_id] == [{"role": "user", "content": ["Find x."]}]
    assert main(["report", str(tmp_path)]) == 0
    assert "| AIME 2026 | accuracy | 77.5 | 50.0 |" in capsys.readouterr().out
    old = json.loads((tmp_path / "results.json").read_text())
    del old["format_version"]
    (tmp_path / "results.json").write_text(json.dumps(old))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "format 1 (unversioned)" in err and "2.x" in err
