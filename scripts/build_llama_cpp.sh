#!/usr/bin/env bash
# Build llama-server and llama-quantize (and keep llama.cpp's GGUF converter) from the
# llama-cpp-python sdist on PyPI,
# which vendors the whole llama.cpp tree. No GitHub access is needed. The result is cached per
# version under $EVALS_LLAMA_CPP_HOME (default ~/.cache/evals/llama.cpp/<version>); a machine that
# already has the build reuses it in well under a second.
#
#   scripts/build_llama_cpp.sh            # build or reuse; prints the directory
#   EVALS_LLAMA_CPP_VERSION=0.3.36 ...    # another sdist version
#
# Layout of the result: bin/llama-server, bin/llama-quantize, src/ (convert_hf_to_gguf.py,
# conversion/, gguf-py/). A cached build made before llama-quantize was kept is completed in place
# (only the missing binaries are built). Needs cmake, ninja (or make) and a C++17 compiler; ~6 min on
# 2 cores.
set -euo pipefail
version="${EVALS_LLAMA_CPP_VERSION:-0.3.36}"
root="${EVALS_LLAMA_CPP_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/evals/llama.cpp}"
dest="$root/$version"
binaries=(llama-server llama-quantize)
cached=0
[ -f "$dest/src/convert_hf_to_gguf.py" ] && [ -f "$dest/.complete" ] && cached=1
targets=()
for binary in "${binaries[@]}"; do
  [ "$cached" = 1 ] && [ -x "$dest/bin/$binary" ] || targets+=("$binary")
done
if [ "${#targets[@]}" = 0 ]; then
  echo "llama.cpp: reusing $dest ($("$dest/bin/llama-server" --version 2>&1 | grep -m1 version || true))" >&2
  echo "$dest"
  exit 0
fi
for tool in cmake c++; do
  command -v "$tool" >/dev/null || { echo "llama.cpp: '$tool' not found; install it (apt-get install cmake g++)" >&2; exit 1; }
done
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/llama-cpp-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "llama.cpp: downloading llama-cpp-python==$version sdist" >&2
"$python" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$work" >&2
tar -xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
tree="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
echo "llama.cpp: building ${targets[*]} from $tree" >&2
start=$SECONDS
cmake -S "$tree" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
  -DBUILD_SHARED_LIBS=OFF >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2; exit 1; }
cmake --build "$work/build" --target "${targets[@]}" -j"$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; exit 1; }
echo "llama.cpp: built in $((SECONDS - start)) s" >&2
if [ "$cached" = 1 ]; then
  # Complete the cached build in place: the sources are there already, add what was missing.
  for binary in "${targets[@]}"; do
    cp "$work/build/bin/$binary" "$dest/bin/$binary.partial"
    mv "$dest/bin/$binary.partial" "$dest/bin/$binary"
  done
  echo "$dest"
  exit 0
fi
rm -rf "$dest.partial"
mkdir -p "$dest.partial/bin" "$dest.partial/src"
for binary in "${binaries[@]}"; do cp "$work/build/bin/$binary" "$dest.partial/bin/"; done
cp "$tree/convert_hf_to_gguf.py" "$dest.partial/src/"
[ -d "$tree/conversion" ] && cp -r "$tree/conversion" "$dest.partial/src/"
cp -r "$tree/gguf-py" "$dest.partial/src/"
[ -d "$tree/models/templates" ] && mkdir -p "$dest.partial/src/models" && cp -r "$tree/models/templates" "$dest.partial/src/models/"
touch "$dest.partial/.complete"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest"
