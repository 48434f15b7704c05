#!/usr/bin/env bash
# One prepared device run of the llama.cpp continuous-batching path on a randomly initialised Gemma 4
# of the published 12B text shape: build llama.cpp with CUDA for the GPU present, save the model,
# convert it to GGUF (bf16) and quantize it (Q8_0), then for each: the harness (LlamaCppBackend
# through evals.generation) against a direct client of the same llama-server, many slots, all
# layers on the GPU. Every step prints its wall time and appends it to $OUT/steps.txt; the figures
# go to $OUT/llamacpp_<type>.json. Estimates per step (H200 machine, 16 cores): docs/performance.md.
#
#   scripts/gpu_llamacpp_bench.sh              # the device run (needs nvidia-smi, nvcc, cmake)
#   scripts/gpu_llamacpp_bench.sh --dry-run    # print the steps and commands, run nothing
#   scripts/gpu_llamacpp_bench.sh --cpu-selftest  # the same steps on the CPU with the tiny config
#
# Environment: OUT (results, default /tmp/gpu-llamacpp-out), EVALS_WORK (model files, default
# /tmp/gpu-llamacpp-work; ~50 GB for 12b), PARALLEL (slots, default 64), PROMPTS (default 128),
# NEW_TOKENS (default 128), TYPES (default "bf16 Q8_0"), PYTHON (default python3).
# The CUDA build lands in ~/.cache/evals/llama.cpp/<version>-cuda-sm<arch>; copying its bin/ back
# (it is in $OUT/llama-cpp-cuda-bin when small enough) lets a later session skip the build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode=cuda
dry=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    --cpu-selftest) mode=cpu ;;
    *) echo "gpu_llamacpp_bench: unknown argument '$arg'; use --dry-run or --cpu-selftest" >&2; exit 2 ;;
  esac
done
python="${PYTHON:-python3}"
out="${OUT:-/tmp/gpu-llamacpp-out}"
work="${EVALS_WORK:-/tmp/gpu-llamacpp-work}"
if [ "$mode" = cpu ]; then
  config=tiny; parallel="${PARALLEL:-2}"; prompts="${PROMPTS:-4}"; new_tokens="${NEW_TOKENS:-8}"
  build_args=(); gpu_args=(--threads 1); repeats=2
else
  config=12b; parallel="${PARALLEL:-64}"; prompts="${PROMPTS:-128}"; new_tokens="${NEW_TOKENS:-128}"
  build_args=(--cuda); gpu_args=(--gpu-layers 99); repeats=3
fi
types="${TYPES:-bf16 Q8_0}"
[ "$dry" = 1 ] || mkdir -p "$out" "$work"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

step() {  # step NAME COMMAND...: run (or, with --dry-run, print) and time it
  local name="$1" start=$SECONDS
  shift
  echo "== $name: $*"
  if [ "$dry" = 1 ]; then return 0; fi
  "$@"
  echo "$name: $((SECONDS - start)) s" | tee -a "$out/steps.txt"
}

if [ "$dry" = 1 ]; then
  home="$("$root/scripts/build_llama_cpp.sh" "${build_args[@]}" --dry-run)"
else
  start=$SECONDS
  home="$("$root/scripts/build_llama_cpp.sh" "${build_args[@]}")"
  echo "build llama.cpp ($mode): $((SECONDS - start)) s" | tee -a "$out/steps.txt"
  bin_size="$(du -sm "$home/bin" | cut -f1)"
  if [ "$mode" = cuda ] && [ "$bin_size" -lt 200 ]; then cp -r "$home/bin" "$out/llama-cpp-cuda-bin"; fi
fi
export EVALS_LLAMA_SERVER="$home/bin/llama-server"
step "save random $config model" "$python" "$root/scripts/gpu_random_gemma4.py" "$work/model" --config "$config"
step "convert to GGUF bf16" "$python" -m runners.gguf_convert "$work/model" "$work/model.bf16.gguf" --outtype bf16
if [ "$dry" = 0 ]; then rm -rf "$work/model"; fi  # the HF copy is not needed any more (24 GB for 12b)
for type in $types; do
  gguf="$work/model.bf16.gguf"
  if [ "$type" != bf16 ]; then
    gguf="$work/model.$type.gguf"
    step "quantize $type" "$python" -m runners.gguf_quantize "$work/model.bf16.gguf" "$gguf" "$type"
  fi
  step "bench $type: harness vs direct llama-server" "$python" "$root/bench/llamacpp_throughput.py" \
    --model "$gguf" --parallel "$parallel" --prompts "$prompts" --new-tokens "$new_tokens" \
    --repeats "$repeats" --ctx-size $((512 + new_tokens)) "${gpu_args[@]}" --json "$out/llamacpp_$type.json"
done
echo "done; figures in $out (steps.txt, llamacpp_*.json)"
