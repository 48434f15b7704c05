#!/usr/bin/env bash
# One-command GPU check for a machine that has PyTorch but no package registry: installs the wheels
# that scripts/gpu_wheels.sh downloaded (into a private folder, --no-index --no-deps), then runs
# scripts/gpu_check.py from this checkout (tiny Gemma 4 on CUDA in fp32 and bf16 vs the CPU fp32
# reference, MTP drafting, seeded sampling, the greedy_ids hook, and vLLM's GPU tests when vLLM is
# importable). Prints PASS/FAIL per check and a summary; the JSON summary goes to $OUT if set.
#
# Usage: scripts/gpu_check.sh [--device cuda|cpu] [other gpu_check.py options]
#   EVALS_WHEELS  wheel folder (default: .whl in the checkout); wheels are for Python 3.12 and are
#                 skipped, with a note, under another Python (e.g. the CPU self-test here)
#   PYTHON        interpreter (default: python3)
#   EVALS_SITE    where the wheels are installed (default: a fresh temporary folder)
# It does not touch the interpreter's own site-packages and downloads nothing.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
wheels="${EVALS_WHEELS:-$root/.whl}"
path="$root"

if compgen -G "$wheels/*.whl" > /dev/null; then
    version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    if [ "$version" = "3.12" ]; then
        site="${EVALS_SITE:-$(mktemp -d /tmp/evals-site.XXXXXX)}"
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" "$wheels"/*.whl
        path="$site:$root"
        echo "wheels: $(ls "$wheels"/*.whl | wc -l) installed from $wheels into $site"
    else
        echo "wheels: skipped (they are for Python 3.12, this is $version); using $python's packages"
    fi
else
    echo "wheels: none in $wheels; using $python's packages (run scripts/gpu_wheels.sh where pip works)"
fi

cd "$root"
PYTHONPATH="$path${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 exec "$python" scripts/gpu_check.py "$@"
