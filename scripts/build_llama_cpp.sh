#!/usr/bin/env bash
# Build llama-server and llama-quantize (and keep llama.cpp's GGUF converter) from the
# llama-cpp-python sdist on PyPI,
# which vendors the whole llama.cpp tree. No GitHub access is needed. The result is cached per
# version under $EVALS_LLAMA_CPP_HOME (default ~/.cache/evals/llama.cpp/<version>); a machine that
# already has the build reuses it in well under a second.
#
#   scripts/build_llama_cpp.sh            # build or reuse; prints the directory
#   EVALS_LLAMA_CPP_VERSION=0.3.36 ...    # another sdist version
#   scripts/build_llama_cpp.sh --cuda     # (or EVALS_LLAMA_CPP_CUDA=1) CUDA build for the GPU present only:
#                                         # CMAKE_CUDA_ARCHITECTURES from nvidia-smi's compute capability
#                                         # (EVALS_CUDA_ARCH=90 overrides), cached apart in <version>-cuda-sm<arch>
#   scripts/build_llama_cpp.sh --dry-run  # print what would be built and where; build nothing
#
# Layout of the result: bin/llama-server, bin/llama-quantize, src/ (convert_hf_to_gguf.py,
# conversion/, gguf-py/). A cached build made before llama-quantize was kept is completed in place
# (only the missing binaries are built). Needs cmake, ninja (or make) and a C++17 compiler; ~6 min on
# 2 cores.
set -euo pipefail
cuda="${EVALS_LLAMA_CPP_CUDA:-0}"
dry=0
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=1 ;;
    --dry-run) dry=1 ;;
    *) echo "llama.cpp: unknown argument '$arg'; use --cuda and/or --dry-run" >&2; exit 2 ;;
  esac
done
version="${EVALS_LLAMA_CPP_VERSION:-0.3.36}"
root="${EVALS_LLAMA_CPP_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/evals/llama.cpp}"
dest="$root/$version"
gpu_flags=()
if [ "$cuda" = 1 ]; then
  arch="${EVALS_CUDA_ARCH:-}"
  if [ -z "$arch" ] && command -v nvidia-smi >/dev/null; then
    arch="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
  fi
  [ -n "$arch" ] || { echo "llama.cpp: --cuda needs nvidia-smi (or EVALS_CUDA_ARCH=90 for an H100/H200)" >&2; exit 1; }
  nvcc="$(command -v nvcc || true)"
  [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
  [ -n "$nvcc" ] || [ "$dry" = 1 ] || { echo "llama.cpp: --cuda needs nvcc (the CUDA toolkit); not found" >&2; exit 1; }
  gpu_flags=(-DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$arch")
  [ -n "$nvcc" ] && gpu_flags+=("-DCMAKE_CUDA_COMPILER=$nvcc")
  dest="$root/$version-cuda-sm$arch"  # never mixed with the CPU build (cached_builds() picks the newest)
fi
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
if [ "$dry" = 1 ]; then
  echo "llama.cpp: would build ${targets[*]} ${gpu_flags[*]:-(CPU)} into $dest" >&2
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
  -DBUILD_SHARED_LIBS=OFF "${gpu_flags[@]}" >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2; exit 1; }
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
