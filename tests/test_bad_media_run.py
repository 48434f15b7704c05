"""Bad media through `evals run` with a tiny random Gemma4Unified (real processor): a corrupt
clip, a missing file, an over-long clip and a corrupt image each become that sample's error; a
clip at the wrong sample rate is resampled; the run finishes and the report counts the errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

from evals.cli import main
from evals.run_dir import load_run_dir


def wav(path: Path, seconds: float, rate: int) -> str:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path.name


def test_bad_clips_are_counted_errors_and_the_run_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "covost"
    data.mkdir()
    (data / "corrupt.wav").write_bytes(b"RIFF but not really a wav file")
    clips = {
        "good": wav(data / "good.wav", 1.0, 16000),
        "rate": wav(data / "rate.wav", 1.0, 44100),
        "long": wav(data / "long.wav", 31.0, 16000),
        "corrupt": "corrupt.wav",
        "missing": "missing.wav",
    }
    rows = [{"id": k, "audio": v, "sentence": "Bonjour.", "translation": "Hello."} for k, v in clips.items()]
    (data / "fr_en.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    args = ["run", "--tasks", "covost2", "--task-opt", "languages=fr", "--model", "builtin:tiny-gemma4",
            "--data", str(data), "--max-tokens", "4", "--cache", str(tmp_path / "c.sqlite"), "--output", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    run = load_run_dir(out)
    records = {r.id: r for r in run.samples}
    errors = {k.split("/")[-1]: r.error for k, r in records.items() if r.outcome == "error"}
    assert set(errors) == {"long", "corrupt", "missing"}
    assert "31.0 s" in str(errors["long"]) and "missing.wav" in str(errors["missing"])
    assert records["fr_en/good"].error is None and records["fr_en/rate"].error is None
    # 1 s of audio is 25 soft tokens whatever the file's rate: the same prompt length for both
    assert records["fr_en/good"].prompt_tokens == records["fr_en/rate"].prompt_tokens
    summary = run.results.scored[0].summary
    assert summary.outcomes["error"] == 3 and abs(summary.rate("error") - 0.6) < 1e-9
    assert "| 60.0% |" in (out / "report.md").read_text()  # the errors column of the card table


def test_a_corrupt_image_is_that_sample_s_error(tmp_path: Path) -> None:
    data = tmp_path / "mmmu"
    data.mkdir()
    good = io.BytesIO()
    Image.new("RGB", (32, 24), "blue").save(good, format="PNG")
    (data / "good.png").write_bytes(good.getvalue())
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    rows = [
        {"id": f"test_Art_{i}", "question": "<image 1> Which colour is shown?", "options": "['red', 'blue']",
         "answer": "B", "subject": "Art", "image_1": name}
        for i, name in enumerate(("good.png", "bad.png"))
    ]  # fmt: skip
    (data / "standard.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    args = ["run", "--tasks", "mmmu_pro", "--variant", "standard-10", "--model", "builtin:tiny-gemma4",
            "--data", str(data / "standard.jsonl"), "--max-tokens", "4", "--cache", str(tmp_path / "c.sqlite"),
            "--output", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    records = {r.id: r for r in load_run_dir(out).samples}
    assert records["test_Art_1"].outcome == "error" and "image" in str(records["test_Art_1"].error)
    assert records["test_Art_0"].error is None and records["test_Art_0"].prompt_tokens > 20
