#!/usr/bin/env bash
# Download, on a machine with a package registry, exactly the wheels that scripts/gpu_check.sh
# installs on a GPU machine that has none (Python 3.12, x86-64, PyTorch and most of the scientific
# stack preinstalled; see the README of the device notes). Newer transformers than the machine's
# (gemma4_unified and its MTP assistant), and the audio stack the backend decodes clips with.
# It does not install anything here, and fetches no dependencies beyond the list below.
#
# Usage: scripts/gpu_wheels.sh [DIR]     (default: $EVALS_WHEELS or .whl next to scripts/)
# The total must stay within 60 MB (what travels to the GPU machine is limited); it is printed.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-${EVALS_WHEELS:-$root/.whl}}"
python="${PYTHON:-python3}"
limit_mb=60

# name==version, one a line; --no-deps below, so every missing dependency is listed here.
wheels=(
    transformers==5.24.0   # gemma4_unified + Gemma4UnifiedAssistant (the machine has 5.17)
    soundfile==0.14.0      # audio decoding in runners/hf_media.py (bundles libsndfile)
    cffi==2.1.1            # needed by soundfile; not on the machine
    pycparser==3.12        # needed by cffi
    soxr==1.1.0            # resampling to 16 kHz in runners/hf_media.py
    regex==2026.11.19      # transformers 5.24 wants regex>=2025.10.22; the machine's version is unknown
)

mkdir -p "$dest"
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$dest" "${wheels[@]}"

# One version of each package only (two would stop the install there).
dupes="$(ls "$dest"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z' 'a-z' | sort | uniq -d)"
if [ -n "$dupes" ]; then
    echo "FAIL: several versions of: $dupes in $dest (remove the old ones)" >&2
    exit 1
fi

total=$(du -cb "$dest"/*.whl | tail -1 | cut -f1)
ls -l "$dest"/*.whl | awk '{printf "  %8.1f MB  %s\n", $5 / 1e6, $NF}'
count=$(ls "$dest"/*.whl | wc -l)
awk -v t="$total" -v n="$count" -v l="$limit_mb" -v d="$dest" \
    'BEGIN { printf "total: %.1f MB in %d wheels (limit %d MB) in %s\n", t / 1e6, n, l, d }'
if [ "$total" -gt $((limit_mb * 1000 * 1000)) ]; then
    echo "FAIL: wheels exceed $limit_mb MB" >&2
    exit 1
fi
