"""Save a randomly initialised Gemma 4 (gemma4_unified) with the text shape of bench/gpu_throughput.py
(`--config 12b`: the published 12B text config; `tiny`: its scaled-down twin) in a form llama.cpp's
GGUF converter accepts: the multimodal classes with a tiny vision/audio tower (the converter's
text model ignores it), the tiny Gemma 4 tokenizer padded with unused tokens to the model's vocab
size (the converter rejects an embedding larger than the vocabulary), and config.json patched as
runners.tiny_gemma4 does. The weights are random: for speed measurements only.

Usage: python scripts/gpu_random_gemma4.py OUT_DIR [--config 12b|tiny] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import torch
from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

from runners.tiny_gemma4 import build_config, build_tokenizer, patch_config_for_llama_cpp

ROOT = Path(__file__).resolve().parents[1]


def bench_text_config(name: str) -> Any:
    spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "bench" / "gpu_throughput.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.text_config(name)


def save(out: Path, config_name: str, device: str) -> dict[str, Any]:
    tokenizer = build_tokenizer()
    text = bench_text_config(config_name)
    base = len(tokenizer)
    tokenizer.add_tokens([f"<unused{i}>" for i in range(text.vocab_size - base)])
    if len(tokenizer) != text.vocab_size:
        raise SystemExit(f"tokenizer has {len(tokenizer)} tokens, the model {text.vocab_size}")
    tiny = build_config(build_tokenizer())  # vision/audio towers and special ids of the tiny model
    ids = tokenizer.convert_tokens_to_ids
    text.pad_token_id, text.bos_token_id, text.eos_token_id = (
        ids("<pad>"),
        ids("<bos>"),
        [ids("<eos>"), ids("<turn|>")],
    )
    config = Gemma4UnifiedConfig(
        text_config=text, vision_config=tiny.vision_config, audio_config=tiny.audio_config,
        boi_token_id=tiny.boi_token_id, eoi_token_id=tiny.eoi_token_id, image_token_id=tiny.image_token_id,
        video_token_id=tiny.video_token_id, boa_token_id=tiny.boa_token_id,
        eoa_token_index=tiny.eoa_token_index, audio_token_id=tiny.audio_token_id,
    )  # fmt: skip
    start = time.perf_counter()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    default = torch.get_default_dtype()
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Gemma4UnifiedForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    settings_path = out / "tokenizer_config.json"
    settings = json.loads(settings_path.read_text())
    from runners.tiny_gemma4 import SPECIALS

    settings["extra_special_tokens"] = [t for t in SPECIALS]
    settings_path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    patch_config_for_llama_cpp(out)
    parameters = sum(p.numel() for p in model.parameters())
    return {"parameters": parameters, "dtype": str(dtype), "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--config", default="12b", choices=["12b", "tiny"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    info = save(args.out, args.config, args.device)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
