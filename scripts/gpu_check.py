"""GPU check of the transformers backend: a tiny Gemma 4 built on the spot, run on the device in
float32 and bfloat16, compared token by token with the CPU float32 reference; MTP drafting and
seeded sampling on the device; then vLLM's GPU tests when vLLM is importable.

Criterion (why not plain token equality): the weights are random, so the gap between the best and
second-best logit is often small, and any numeric difference (another kernel, bf16 rounding,
batched left padding) may pick the runner-up where the two nearly tie; after that the sequences
diverge and equality says nothing more. So each device output is teacher-forced through the CPU
float32 reference, and at every step we take the "regret": the reference's best logit minus its
logit for the token the device chose. A correct implementation only ever picks tokens the
reference considers (near-)best: regret <= 1e-3 in float32 (identical in practice) and <= 10% of
the step's largest |logit| in bfloat16 (bf16 keeps 8 significant bits and the weights themselves
are rounded; on the CPU the worst bf16 regret seen was about 3% of it). A wrong model, mask,
position, pad or media scatter gives regrets of about the size of the logits themselves (a model
with other weights: 100-160%). Also printed: how many requests are token-identical to the
reference and the token agreement rate (agreeing prefix tokens / tokens). MTP runs must meet the
same criterion and the drafter must have run; "same as plain" compares them with the device's
plain output of the same dtype.

Prints one line per check and a PASS/FAIL summary; writes the summary as JSON to $OUT/gpu_check.json
(or --json). `--device cpu` runs every check on the CPU (a self-test where no GPU is present).
It does not download anything; scripts/gpu_check.sh installs the wheels it needs first.

Usage: python scripts/gpu_check.py [--device cuda|cpu] [--max-tokens 16] [--json PATH] [--no-vllm]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' synthetic media
from synthetic_media import noise_png, noise_wav

from evals.schema import AudioPart, ImagePart, Message, Part, Request, Sampling
from runners.hf import HFBackend
from runners.hf_media import collate, has_media
from runners.outputs import error_message
from runners.tiny_gemma4 import save_tiny_gemma4, save_tiny_gemma4_assistant

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = {"float32": (1e-3, 0.0), "bfloat16": (0.0, 0.10)}  # (absolute, share of max |logit|)
VLLM_TIMEOUT_S = 300
SENTENCE = "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat"
WORDS = SENTENCE.split(" ")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float
    figures: dict[str, Any] = field(default_factory=dict)


# --- requests -------------------------------------------------------------------------------


def request(key: str, *parts: Part | str, sampling: Sampling) -> Request:
    return Request(key=key, sample_id=key, repeat=0, sampling=sampling, messages=(Message.user(*parts),))


def request_groups(max_tokens: int) -> dict[str, list[Request]]:
    """Each group is one `generate` call: a lone text prompt, a batch of four text prompts of
    different lengths (left padding), an image prompt and an audio prompt."""
    greedy = Sampling(max_tokens=max_tokens)
    return {
        "text": [request("text", " ".join(WORDS[:6]), sampling=greedy)],
        "batch": [request(f"batch{n}", " ".join(WORDS[:n]), sampling=greedy) for n in (2, 5, 9, 16)],
        "image": [request("image", ImagePart(data=noise_png(1)), "describe the picture", sampling=greedy)],
        "audio": [
            request("audio", AudioPart(data=noise_wav(0.8, seed=2)), "transcribe this clip", sampling=greedy)
        ],
    }


# --- running and comparing ------------------------------------------------------------------


def generated_ids(backend: HFBackend, groups: dict[str, list[Request]]) -> dict[str, list[int]]:
    """Token ids per request key, one `generate` call per group; errors raise."""
    backend.generated_ids = {}
    for requests in groups.values():
        for completion in backend.generate(requests):
            if completion.error:
                raise RuntimeError(f"{completion.key}: {completion.error}")
    ids, backend.generated_ids = backend.generated_ids, None
    return ids


@torch.inference_mode()
def reference_logits(reference: HFBackend, item: Request, ids: list[int]) -> torch.Tensor:
    """The reference's next-token logits at each of the `len(ids)` generated steps, teacher-forced.
    Generated media placeholders (a random model emits them) are fed as pad, which is how the
    model embeds them while decoding; as placeholders they would ask for media features."""
    if has_media(item):
        inputs = collate([reference.render_media(item)], reference.pad_id)
    else:
        prompt = torch.tensor([reference.render(item)], dtype=torch.long)
        inputs = {"input_ids": prompt, "attention_mask": torch.ones_like(prompt)}
    prompt_len = inputs["input_ids"].shape[1]
    config = reference.model.config
    placeholders = {getattr(config, f"{kind}_token_id", None) for kind in ("image", "audio", "video")}
    extra = torch.tensor([[reference.pad_id if t in placeholders else t for t in ids]], dtype=torch.long)
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(extra)], dim=1)
    if "mm_token_type_ids" in inputs:
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(extra)], dim=1)
    inputs = {key: value.to(reference.model.device) for key, value in inputs.items()}
    logits = reference.model(**inputs).logits[0, prompt_len - 1 : prompt_len - 1 + len(ids)]
    return logits.float().cpu()


def regrets(logits: torch.Tensor, ids: list[int]) -> tuple[list[float], list[float]]:
    """Per step: best logit minus the chosen token's logit, and the largest |logit|."""
    chosen = logits[torch.arange(len(ids)), torch.tensor(ids, dtype=torch.long)]
    return (logits.max(dim=-1).values - chosen).tolist(), logits.abs().max(dim=-1).values.tolist()


def compare(
    reference: HFBackend,
    groups: dict[str, list[Request]],
    expected: dict[str, list[int]],
    got: dict[str, list[int]],
    dtype: str,
) -> tuple[bool, dict[str, Any]]:
    """Per request: token agreement with the reference's own output and the worst regret (see the
    module docstring); ok when every step is within the dtype's tolerance."""
    absolute, share = TOLERANCE[dtype]
    per_request, ok = {}, True
    for item in (r for requests in groups.values() for r in requests):
        ids, want = got[item.key], expected[item.key]
        agree = next(
            (i for i, (a, b) in enumerate(zip(ids, want, strict=False)) if a != b), min(len(ids), len(want))
        )
        regret, scale = regrets(reference_logits(reference, item, ids), ids) if ids else ([], [])
        within = all(r <= absolute + share * s for r, s in zip(regret, scale, strict=True))
        ok &= within
        per_request[item.key] = {
            "tokens": len(ids),
            "identical": ids == want,
            "agreeing_prefix": agree,
            "max_regret": round(max(regret, default=0.0), 6),
            "within_tolerance": within,
        }
    return ok, per_request


def agreement(per_request: dict[str, Any]) -> str:
    identical = sum(v["identical"] for v in per_request.values())
    agreeing = sum(v["agreeing_prefix"] for v in per_request.values())
    tokens = max(1, sum(v["tokens"] for v in per_request.values()))
    worst = max(v["max_regret"] for v in per_request.values())
    return (
        f"identical {identical}/{len(per_request)} requests, token agreement {agreeing / tokens:.0%}, "
        f"worst regret {worst:.2e}"
    )


# --- the checks -----------------------------------------------------------------------------


class Checker:
    """Runs the checks in order, records each as a `Check`; a crash in one is its failure."""

    def __init__(self, device: str, max_tokens: int, scratch: Path):
        self.device = device
        self.groups = request_groups(max_tokens)
        self.target = str(save_tiny_gemma4(scratch / "target"))
        self.draft = str(save_tiny_gemma4_assistant(scratch / "draft", self.target))
        self.checks: list[Check] = []
        self.reference = HFBackend(self.target, device="cpu", dtype="float32", batch_size=4, progress=False)
        self.expected = generated_ids(self.reference, self.groups)
        self.device_ids: dict[str, dict[str, list[int]]] = {}  # plain greedy ids per dtype

    def run(self, name: str, body: Callable[[], tuple[bool, str, dict[str, Any]]]) -> None:
        start = time.perf_counter()
        try:
            ok, detail, figures = body()
        except Exception as exc:
            ok, detail, figures = False, error_message(exc), {}
        check = Check(name, ok, detail, round(time.perf_counter() - start, 2), figures)
        self.checks.append(check)
        print(f"{'PASS' if ok else 'FAIL'}  {name:<28} {check.seconds:6.1f} s  {detail}", flush=True)

    def backend(self, dtype: str, **kwargs: Any) -> HFBackend:
        return HFBackend(self.target, device=self.device, dtype=dtype, batch_size=4, progress=False, **kwargs)

    def greedy(self, dtype: str) -> tuple[bool, str, dict[str, Any]]:
        backend = self.backend(dtype)
        got = generated_ids(backend, self.groups)
        self.device_ids[dtype] = got
        ok, per_request = compare(self.reference, self.groups, self.expected, got, dtype)
        backend.close()
        return ok, agreement(per_request), {"requests": per_request, "model_dtype": str(backend.dtype)}

    def mtp(self, dtype: str) -> tuple[bool, str, dict[str, Any]]:
        """Greedy with the drafter: within tolerance of the reference, the same as plain generation
        on the device (printed), and the drafter actually drafted."""
        backend = self.backend(dtype, draft_model=self.draft, draft_tokens=3)
        calls = [0]
        backend.draft.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        got = generated_ids(backend, self.groups)
        backend.close()
        plain = self.device_ids.get(dtype) or generated_ids(self.backend(dtype), self.groups)
        same = sum(got[key] == plain[key] for key in plain)
        ok, per_request = compare(self.reference, self.groups, self.expected, got, dtype)
        ok &= calls[0] > 0
        detail = f"same as plain {same}/{len(plain)}, {agreement(per_request)}, drafter calls {calls[0]}"
        return ok, detail, {"same_as_plain": same, "draft_calls": calls[0], "requests": per_request}

    def sampling(self) -> tuple[bool, str, dict[str, Any]]:
        """Seeded sampling on the device: repeatable, and the same with and without the drafter."""
        sampled = {
            "text": [
                request(
                    f"s{seed}",
                    " ".join(WORDS[: 4 + seed]),
                    sampling=Sampling(temperature=1.0, max_tokens=12, seed=seed),
                )
                for seed in range(3)
            ]
        }
        plain = self.backend("float32")
        first, again = generated_ids(plain, sampled), generated_ids(plain, sampled)
        drafted = generated_ids(self.backend("float32", draft_model=self.draft), sampled)
        repeat = sum(first[k] == again[k] for k in first)
        with_draft = sum(first[k] == drafted[k] for k in first)
        distinct = len({tuple(v) for v in first.values()})
        ok = repeat == with_draft == len(first) and distinct == len(first)
        detail = f"repeatable {repeat}/3, same with drafter {with_draft}/3, distinct seeds {distinct}/3"
        return ok, detail, {"repeatable": repeat, "same_with_drafter": with_draft, "distinct": distinct}

    def parity_hook(self) -> tuple[bool, str, dict[str, Any]]:
        """greedy_ids on the device continues each rendered text prompt as generate() did (end
        token excluded); ok when its tokens are within float32 tolerance of the reference."""
        backend = self.backend("float32")
        plain = self.device_ids.get("float32") or generated_ids(backend, self.groups)
        texts = {"text": self.groups["text"], "batch": self.groups["batch"]}
        got, same = {}, 0
        for item in (r for requests in texts.values() for r in requests):
            want = [t for t in plain[item.key] if t not in backend.stop_ids]
            got[item.key] = backend.greedy_ids(backend.render(item), item.sampling.max_tokens)
            same += got[item.key] == want
        ok, per_request = compare(self.reference, texts, self.expected, got, "float32")
        detail = f"greedy_ids == generate ids {same}/{len(got)}, vs reference: {agreement(per_request)}"
        return ok, detail, {"same_as_generate": same, "requests": per_request}


def vllm_tests() -> tuple[bool, str, dict[str, Any]]:
    """`pytest -m gpu tests/test_vllm_gpu.py` in a subprocess (its output tail is printed)."""
    path = ROOT / "tests" / "test_vllm_gpu.py"
    if not path.is_file():
        return False, f"{path.relative_to(ROOT)} is missing", {}
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", str(path)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=VLLM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {VLLM_TIMEOUT_S} s", {}
    tail = (done.stdout + done.stderr).strip().splitlines()
    print("\n".join(tail[-15:]))
    summary = tail[-1] if tail else ""
    return done.returncode == 0, summary, {"returncode": done.returncode}


def environment(device: str) -> dict[str, Any]:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "cuda": torch.version.cuda,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--json", help="summary path (default: $OUT/gpu_check.json when OUT is set)")
    parser.add_argument("--no-vllm", action="store_true", help="do not run tests/test_vllm_gpu.py")
    args = parser.parse_args()
    start = time.perf_counter()
    transformers.utils.logging.disable_progress_bar()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("FAIL  CUDA is not available to torch (use --device cpu for the self-test)")
        return 1
    env = environment(args.device)
    print("environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), flush=True)

    with tempfile.TemporaryDirectory() as scratch:
        checker = Checker(args.device, args.max_tokens, Path(scratch))
        checker.run("greedy float32 vs CPU", lambda: checker.greedy("float32"))
        checker.run("greedy bfloat16 vs CPU", lambda: checker.greedy("bfloat16"))
        checker.run("MTP drafter float32", lambda: checker.mtp("float32"))
        checker.run("MTP drafter bfloat16", lambda: checker.mtp("bfloat16"))
        checker.run("seeded sampling", checker.sampling)
        checker.run("greedy_ids parity hook", checker.parity_hook)
        if not args.no_vllm:
            if importlib.util.find_spec("vllm") is None or args.device != "cuda":
                print(f"skip  {'vLLM GPU tests':<28} vllm is not importable or the device is not CUDA")
            else:
                checker.run("vLLM GPU tests", vllm_tests)

    checks = checker.checks
    passed = all(c.ok for c in checks)
    seconds = time.perf_counter() - start
    print(
        f"{'PASS' if passed else 'FAIL'}: {sum(c.ok for c in checks)}/{len(checks)} checks in {seconds:.1f} s"
    )
    if args.device == "cpu":
        print("note: --device cpu is the self-test; the CUDA path was not run")
    out = args.json or (str(Path(os.environ["OUT"]) / "gpu_check.json") if os.environ.get("OUT") else None)
    if out:
        summary = {"passed": passed, "seconds": round(seconds, 1), "environment": env}
        summary["checks"] = [asdict(c) for c in checks]
        Path(out).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"summary: {out}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
