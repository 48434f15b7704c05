"""`evals prefetch` against a local stand-in for the hub (tests/hub_stub.py, real HTTP, the real
huggingface_hub client), and `evals run --offline` reading only the prefetched folder.

The stub serves the repositories a small test card needs, filled with the built-in smoke data in
each hub's own layout (MMLU-Pro parquet at its pinned commit, GPQA's CSV on `main`, AIME's parquet,
LiveCodeBench's shard file) and a model repo. The end-to-end test prefetches the card, stops the
stub and runs the card offline on the tiny random Gemma 4 it downloaded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_stub import HubStub

from evals.cli import main
from evals.offline import MANIFEST, OfflineError, card_needs, offline_options, prefetch_command
from evals.planning import RunOptions, card_for, plan_row
from evals.prefetch import PrefetchOptions, prefetch, select_files
from tasks import livecodebench, mmlu_pro
from tasks.data import SMOKE_DIR
from tasks.readers import read_jsonl

MODEL_REPO = "test-org/tiny-gemma4"
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
CARD = """\
[card]
name = "offline-test"
title = "Offline test card (tiny random Gemma 4, smoke questions in the hub layouts)"
model = "test-org/tiny-gemma4"
backend = "hf"

[defaults.thinking]
value = false
evidence = "confirmed"
[defaults.temperature]
value = 0.0
evidence = "confirmed"
[defaults.max_tokens]
value = 4
evidence = "confirmed"
[defaults.repeats]
value = 1
evidence = "confirmed"

[[rows]]
label = "MMLU Pro"
task = "mmlu_pro"
variant = "card"

[[rows]]
label = "GPQA Diamond"
task = "gpqa_diamond"
variant = "card"

[[rows]]
label = "AIME 2026"
task = "aime"
variant = "2026"

[[rows]]
label = "LiveCodeBench v6"
task = "livecodebench"
variant = "v6"
"""


# --- the stub's content ---------------------------------------------------------------------------


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def _smoke(task: str) -> list[dict[str, Any]]:
    return read_jsonl(SMOKE_DIR / f"{task}.jsonl")


def serve_card_data(hub: HubStub) -> dict[str, str]:
    """The card's four datasets in their hub layouts (plus files the card does not need); returns
    the commit each repo serves."""
    mmlu = _smoke("mmlu_pro")
    lcb = (SMOKE_DIR / "livecodebench.jsonl").read_bytes()
    return {
        "mmlu_pro": hub.add_repo(
            "dataset",
            mmlu_pro.HUB_DATASET,
            {
                "data/test-00000-of-00001.parquet": _parquet(mmlu),
                "data/validation-00000-of-00001.parquet": _parquet(mmlu[:3]),
                "README.md": b"# MMLU-Pro (test copy)\n",
            },
            commit=mmlu_pro.HUB_REVISION,
        ),
        "gpqa_diamond": hub.add_repo(
            "dataset",
            "Idavidrein/gpqa",
            {
                "gpqa_diamond.csv": _csv(_smoke("gpqa_diamond")),
                "gpqa_main.csv": _csv(_smoke("gpqa_diamond")[:2]),
            },
        ),
        "aime": hub.add_repo(
            "dataset",
            "MathArena/aime_2026",
            {
                "data/train-00000-of-00001.parquet": _parquet(_smoke("aime")),
            },
        ),
        "livecodebench": hub.add_repo(
            "dataset",
            livecodebench.HUB_DATASET,
            {
                "test6.jsonl": lcb,
                "test.jsonl": b"{}\n",
            },
            commit=livecodebench.HUB_REVISION,
        ),
    }


def serve_model(hub: HubStub, folder: Path | None = None) -> str:
    """A model repo: the files of `folder`, or small stand-ins, plus weights in formats not loaded."""
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} if folder else {
        "config.json": b'{"model_type": "test"}', "model.safetensors": b"\0" * 4096,
    }  # fmt: skip
    files.update({"pytorch_model.bin": b"unused", "model.Q4_K_M.gguf": b"unused"})
    return hub.add_repo("model", MODEL_REPO, files)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub access on for this test; the offline switches `evals run --offline` sets are undone after."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in OFFLINE_VARIABLES:
        monkeypatch.setenv(name, "0")  # restored (unset) after the test
        monkeypatch.delenv(name)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def hub(online: None) -> Iterator[HubStub]:
    with HubStub() as stub:
        yield stub


@pytest.fixture
def card(tmp_path: Path) -> Path:
    path = tmp_path / "offline-test.toml"
    path.write_text(CARD)
    return path


def fetch(hub: HubStub, folder: Path, card: Path, **run: Any) -> Any:
    return prefetch(
        PrefetchOptions(folder, RunOptions(card=str(card), **run), endpoint=hub.url, log=lambda _: None)
    )


def items(folder: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((folder / MANIFEST).read_text())
    return {item["repo"]: item for item in manifest["items"] if "repo" in item}


# --- prefetch ---------------------------------------------------------------------------------------


def test_prefetch_fetches_the_pinned_files_and_records_them(hub: HubStub, card: Path, tmp_path: Path) -> None:
    commits = serve_card_data(hub)
    model_commit = serve_model(hub)
    folder = tmp_path / "carry"
    outcome = fetch(hub, folder, card)
    assert len(outcome.fetched) == 5 and outcome.kept == []
    found = items(folder)
    mmlu = found[mmlu_pro.HUB_DATASET]
    assert mmlu["revision"] == mmlu["resolved"] == mmlu_pro.HUB_REVISION and mmlu["pinned"]
    assert [f["path"] for f in mmlu["files"]] == [
        "data/test-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"
    ]  # fmt: skip
    served = hub.repos[("dataset", mmlu_pro.HUB_DATASET)].files
    for entry in mmlu["files"]:
        content = (folder / mmlu["path"] / entry["path"]).read_bytes()
        assert content == served[entry["path"]]
        assert entry == {
            "path": entry["path"],
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    # unpinned sources ("main") record the commit they resolved to
    gpqa = found["Idavidrein/gpqa"]
    assert gpqa["revision"] == "main" and gpqa["resolved"] == commits["gpqa_diamond"] and not gpqa["pinned"]
    assert [f["path"] for f in gpqa["files"]] == ["gpqa_diamond.csv"]
    assert found["MathArena/aime_2026"]["resolved"] == commits["aime"]
    assert [f["path"] for f in found[livecodebench.HUB_DATASET]["files"]] == ["test6.jsonl"]
    model = found[MODEL_REPO]
    assert model["kind"] == "model" and model["resolved"] == model_commit
    assert [f["path"] for f in model["files"]] == ["config.json", "model.safetensors"]  # no .bin, no .gguf
    # the folder holds the data only: no client bookkeeping, nothing that was not asked for
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert on_disk == sorted(
        [MANIFEST] + [f"{item['path']}/{f['path']}" for item in found.values() for f in item["files"]]
    )
    # the pinned revision is the one asked for, never a branch
    assert f"GET /api/datasets/{mmlu_pro.HUB_DATASET}/revision/{mmlu_pro.HUB_REVISION}" in hub.requests
    assert not any("MMLU-Pro/revision/main" in line for line in hub.requests)


def test_prefetch_again_keeps_what_is_there_and_adds_what_is_missing(
    hub: HubStub, card: Path, tmp_path: Path
) -> None:
    serve_card_data(hub)
    serve_model(hub)
    folder = tmp_path / "carry"
    first = fetch(hub, folder, card, tasks=["mmlu_pro"])
    assert [line.split()[1].split("@")[0] for line in first.fetched] == [mmlu_pro.HUB_DATASET, MODEL_REPO]
    second = fetch(hub, folder, card)
    assert len(second.kept) == 2 and len(second.fetched) == 3
    assert not any(mmlu_pro.HUB_DATASET in line for line in second.fetched)
    # the two MMLU-Pro files were downloaded once, by the first call
    assert len([line for line in hub.requests if line.startswith("GET") and "MMLU-Pro/resolve/" in line]) == 2
    manifest = json.loads((folder / MANIFEST).read_text())
    assert len(manifest["requests"]) == 2 and len(manifest["items"]) == 5


def test_select_files_prefers_safetensors_and_drops_other_formats() -> None:
    names = ["config.json", "model.safetensors", "pytorch_model.bin", "x.gguf", "original/consolidated.pth"]
    assert select_files(names, ["*"], ["*.gguf", "original/*"]) == ["config.json", "model.safetensors"]
    assert select_files(["config.json", "pytorch_model.bin"], ["*"]) == ["config.json", "pytorch_model.bin"]


# --- evals run --offline: the mapping --------------------------------------------------------------


def test_offline_options_read_every_row_from_the_folder(hub: HubStub, card: Path, tmp_path: Path) -> None:
    serve_card_data(hub)
    serve_model(hub)
    folder = tmp_path / "carry"
    fetch(hub, folder, card)
    hub.stop()
    options = offline_options(RunOptions(card=str(card), limit=3), folder)
    root = folder.resolve()
    assert options.data == {
        "mmlu_pro": str(root / "datasets" / mmlu_pro.HUB_DATASET),
        "gpqa_diamond": str(root / "datasets/Idavidrein/gpqa/gpqa_diamond.csv"),
        "aime": str(root / "datasets/MathArena/aime_2026"),
        "livecodebench": str(root / "datasets" / livecodebench.HUB_DATASET),
    }
    assert options.model_paths == {MODEL_REPO: str(root / "models" / MODEL_REPO)}
    assert card_for(options).model == str(root / "models" / MODEL_REPO)
    assert all(os.environ[name] == "1" for name in OFFLINE_VARIABLES)
    # every row loads its prefetched rows through the task's own --data path
    loaded = {row.task: plan_row(row, options) for row in card_for(options).rows}
    assert {task: len(plan.samples) for task, plan in loaded.items()} == dict.fromkeys(loaded, 3)
    assert loaded["mmlu_pro"].samples[0].inputs["question"] == _smoke("mmlu_pro")[0]["question"]
    # the folder, moved elsewhere as when carried to another machine, maps to its new place
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    assert offline_options(RunOptions(card=str(card)), moved).model_paths == {
        MODEL_REPO: str(moved.resolve() / "models" / MODEL_REPO)
    }
    folder = moved
    # data given with --data wins over the folder
    mine = offline_options(RunOptions(card=str(card), data={"aime": "builtin"}), folder)
    assert mine.data["aime"] == "builtin" and mine.data["mmlu_pro"].startswith(str(moved.resolve()))


def test_run_offline_names_a_missing_item_and_the_command_that_fetches_it(
    hub: HubStub, card: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_card_data(hub)
    serve_model(hub)
    folder = tmp_path / "carry"
    fetch(hub, folder, card, tasks=["mmlu_pro", "aime"])
    with pytest.raises(OfflineError) as error:
        offline_options(RunOptions(card=str(card)), folder)
    message = str(error.value)
    assert "\n" not in message
    assert "dataset Idavidrein/gpqa@main (gpqa_diamond.csv)" in message and "row 'GPQA Diamond'" in message
    assert message.endswith(f"fetch it with: evals prefetch --card {card} --to {folder.resolve()}")
    # on the command line: one line, exit 2, nothing loaded
    capsys.readouterr()
    assert main(["run", "--card", str(card), "--offline", str(folder), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("evals: error: --offline ")
    # the rows that were fetched run; a variant that was not is named with its --variant
    options = offline_options(RunOptions(card=str(card), tasks=["aime"]), folder)
    assert options.data["aime"].endswith("MathArena/aime_2026")
    with pytest.raises(OfflineError, match=r"MathArena/aime_2025.*--variant 2025"):
        offline_options(RunOptions(card=str(card), tasks=["aime"], variant="2025"), folder)


def test_run_offline_refuses_a_bad_or_incomplete_folder(
    hub: HubStub, card: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_card_data(hub)
    serve_model(hub)
    cases = {
        tmp_path / "nowhere": "no such directory",
        tmp_path: f"no {MANIFEST} (not a prefetch folder)",
    }
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / MANIFEST).write_text('{"format": "evals-prefetch", "items": [')
    cases[broken] = f"{MANIFEST} is unreadable"
    other = tmp_path / "other"
    other.mkdir()
    (other / MANIFEST).write_text('{"format": "something-else", "items": []}')
    cases[other] = "is not an evals prefetch manifest"
    capsys.readouterr()
    for folder, reason in cases.items():
        assert main(["run", "--card", str(card), "--offline", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and reason in err and "evals prefetch --card NAME --to" in err, err
    folder = tmp_path / "carry"
    fetch(hub, folder, card)
    (folder / "datasets/Idavidrein/gpqa/gpqa_diamond.csv").unlink()
    with pytest.raises(
        OfflineError, match=r"incomplete \(.*gpqa_diamond.csv is missing\); fetch it again with"
    ):
        offline_options(RunOptions(card=str(card)), folder)


def test_prefetch_errors_are_one_line(
    hub: HubStub,
    card: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import huggingface_hub.constants

    serve_card_data(hub)  # no model repo
    with pytest.raises(
        OfflineError, match=rf"cannot resolve model {MODEL_REPO}@main .*RepositoryNotFoundError"
    ):
        fetch(hub, tmp_path / "a", card)
    hub.repos.pop(("dataset", mmlu_pro.HUB_DATASET))
    hub.add_repo("dataset", mmlu_pro.HUB_DATASET, {"data/test-0.parquet": b"x"})  # the pinned commit is gone
    with pytest.raises(
        OfflineError, match=r"cannot resolve dataset TIGER-Lab/MMLU-Pro@3373e0b32277 .*RevisionNotFound"
    ):
        fetch(hub, tmp_path / "b", card, tasks=["mmlu_pro"])
    hub.repos[("dataset", "Idavidrein/gpqa")].gated = True
    with pytest.raises(
        OfflineError, match=r"cannot download dataset Idavidrein/gpqa@main .* gated: accept its terms"
    ):
        fetch(hub, tmp_path / "b", card, tasks=["gpqa_diamond"])
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(OfflineError, match="cannot resolve dataset") as error:
        prefetch(PrefetchOptions(tmp_path / "c", RunOptions(card=str(card), tasks=["aime"]), endpoint=dead))
    assert time.monotonic() - start < 10 and "\n" not in str(error.value)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", dead)  # the command line's hub: HF_ENDPOINT
    capsys.readouterr()
    assert main(["prefetch", "--card", str(card), "--tasks", "aime", "--to", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "evals: error: cannot resolve dataset MathArena/aime_2026@main"
    )


def test_prefetch_records_local_models_without_the_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\1" * 100)
    folder = tmp_path / "carry"
    args = ["prefetch", "--card", "smoke", "--tasks", "mmlu_pro", "--model", str(model), "--to", str(folder)]
    assert main([*args, "--copy-local"]) == 0
    assert (
        f"run it offline with: evals run --card smoke --tasks mmlu_pro --model {model}"
        in capsys.readouterr().out
    )
    (item,) = json.loads((folder / MANIFEST).read_text())["items"]
    assert item["kind"] == "local-model" and item["source"] == str(model.resolve())
    assert item["model"] == item["path"] == "models/local/my-model"
    assert [f["path"] for f in item["files"]] == ["config.json", "model.safetensors"]
    # offline, the copy stands in for the original path, which the other machine does not have
    options = offline_options(RunOptions(card="smoke", tasks=["mmlu_pro"], model=str(model)), folder)
    assert options.model == str(folder.resolve() / "models/local/my-model")
    assert options.data == {}  # the smoke card's data is built in


def test_prefetch_command_repeats_the_run_selection(tmp_path: Path) -> None:
    options = RunOptions(card="gemma-4-12b-it", tasks=["mmlu_pro"], variant="card", backend="hf", model="a/b")
    assert prefetch_command(options, tmp_path / "my dir") == (
        f"evals prefetch --card gemma-4-12b-it --tasks mmlu_pro --variant card --backend hf --model a/b "
        f"--to '{tmp_path / 'my dir'}'"
    )


# --- end to end: prefetch, stop the hub, run offline ------------------------------------------------


@pytest.mark.subprocess
@pytest.mark.slow
def test_prefetch_then_run_offline_with_the_hub_gone(online: None, card: Path, tmp_path: Path) -> None:
    from evals.models import builtin_model
    from evals.run_dir import load_run_dir

    tiny = Path(builtin_model("tiny-gemma4"))
    folder, out = tmp_path / "carry", tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env["HF_HOME"] = str(tmp_path / "empty-hf-home")  # no hub cache to fall back on
    evals = [sys.executable, "-m", "evals.cli"]
    with HubStub() as hub:
        serve_card_data(hub)
        serve_model(hub, tiny)
        env["HF_ENDPOINT"] = hub.url  # the client reads it at import, in the child
        fetched = subprocess.run([*evals, "prefetch", "--card", str(card), "--to", str(folder)],
                                 env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr
    assert "run it offline with: evals run --card" in fetched.stdout
    args = [*evals, "run", "--card", str(card), "--offline", str(folder), "--limit", "2", "--output", str(out),
            "--cache", str(tmp_path / "cache.sqlite"), "--no-progress"]  # fmt: skip
    ran = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    run = load_run_dir(out)
    assert [row.task for row in run.results.scored] == ["mmlu_pro", "gpqa_diamond", "aime", "livecodebench"]
    assert all(row.summary.n_samples == 2 for row in run.results.scored)
    assert len(run.samples) == 8
    model = run.run.models[0]
    assert model.resolved == str(folder.resolve() / "models" / MODEL_REPO)
    data = run.run.options["data"]
    assert set(data) == {"mmlu_pro", "gpqa_diamond", "aime", "livecodebench"}
    assert all(path.startswith(str(folder.resolve())) for path in data.values())
    assert run.run.options["model_paths"] == {MODEL_REPO: model.resolved}


def test_the_gemma_card_needs_every_dataset_at_its_pinned_revision_and_the_model() -> None:
    from tasks import covost2, gpqa_diamond, mmmu_pro

    card = card_for(RunOptions(card="gemma-4-12b-it"))
    datasets, models = card_needs(card, RunOptions(card="gemma-4-12b-it"))
    found = {need.repo: (need.revision, need.patterns, need.data_path) for _, need in datasets}
    assert found == {
        mmlu_pro.HUB_DATASET: (mmlu_pro.HUB_REVISION, ("data/test-*", "data/validation-*"), ""),
        "MathArena/aime_2026": ("main", ("*.parquet",), ""),
        livecodebench.HUB_DATASET: (livecodebench.HUB_REVISION, ("test6.jsonl",), ""),
        gpqa_diamond.HUB_DATASET: ("main", ("gpqa_diamond.csv",), "gpqa_diamond.csv"),
        mmmu_pro.HUB_DATASET: (mmmu_pro.HUB_REVISION, ("standard (10 options)/test-*", "vision/test-*"), ""),
        covost2.HUB_DATASET: (
            covost2.HUB_REVISION,
            tuple(f"{pair}/test-*.parquet" for pair in covost2.VARIANT_PAIRS["x-en-no-zh"]),
            "",
        ),
    }
    assert {(need.repo, need.revision) for _, need in models} == {("google/gemma-4-12B-it", "main")}
    # rows whose data is local need nothing from the hub; a llama.cpp run needs a local file
    assert card_needs(card, RunOptions(card="gemma-4-12b-it", data={"*": "builtin"}))[0] == []
    with pytest.raises(OfflineError, match=r"llama\.cpp backend loads a local \.gguf file"):
        card_needs(card, RunOptions(card="gemma-4-12b-it", backend="llamacpp"))
    aime_2024 = RunOptions(card="gemma-4-12b-it", tasks=["aime"], variant="2024")
    needs = card_needs(card_for(aime_2024), aime_2024)[0]
    assert [(n.repo, n.data_path) for _, n in needs] == [
        ("MathArena/aime_2024_I", ".."),
        ("MathArena/aime_2024_II", ".."),
    ]


def test_aime_2024_two_hub_datasets_run_offline_numbered_as_online(hub: HubStub, tmp_path: Path) -> None:
    for half in ("I", "II"):
        rows = [{"problem_idx": n, "problem": f"AIME {half} problem {n}", "answer": n} for n in range(1, 16)]
        hub.add_repo(
            "dataset", f"MathArena/aime_2024_{half}", {"data/train-00000-of-00001.parquet": _parquet(rows)}
        )
    hub.add_repo("model", "google/gemma-4-12B-it", {"config.json": b"{}"})
    folder = tmp_path / "carry"
    chosen = RunOptions(card="gemma-4-12b-it", tasks=["aime"], variant="2024")
    prefetch(PrefetchOptions(folder, chosen, endpoint=hub.url, log=lambda _: None))
    options = offline_options(chosen, folder)
    assert options.data == {"aime": str(folder.resolve() / "datasets/MathArena")}
    (row,) = card_for(options).rows
    samples = plan_row(row, options).samples
    assert [s.id for s in samples] == [str(n) for n in range(1, 31)]
    assert samples[15].inputs["problem"] == "AIME II problem 1" and samples[15].target == 1
