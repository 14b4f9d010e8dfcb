#!/usr/bin/env bash
# Prepare a wheelhouse for the GPU tier on a machine WITH network, for a GPU machine without it:
#   tests/gpu/wheelhouse.sh DIR [PYTHON_VERSION]        (default: this python's, e.g. 3.11)
# Then, on the GPU machine (copy DIR and the repository there):
#   make test-gpu WHEELHOUSE=DIR
# Linux x86_64 wheels only (--only-binary): nothing is compiled. vLLM, DeepSpeed and Ray are
# downloaded in separate steps; one that fails is reported and left out, and the GPU tier then
# skips its tests with a reason.
set -euo pipefail
dir=${1:?usage: tests/gpu/wheelhouse.sh DIR [PYTHON_VERSION]}
py=${2:-$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$dir"
fetch() {
  python3 -m pip download --quiet --dest "$dir" --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version "$py" "$@"
}
# The core: CUDA torch from PyPI (torch 2.13's default build is CUDA 13, like vLLM 0.32's wheel),
# transformers at vLLM 0.32's bound, the test tools.
fetch -c "$root/constraints.txt" "torch==2.13.0" "transformers>=5.16.1,<5.20" "tokenizers>=0.22" \
  "safetensors>=0.6.2" "pillow>=12.3" "numpy>=1.26" "pydantic>=2.9,<3" "PyYAML>=6.0" \
  "jsonschema>=4.21" "math-verify[antlr4_13_2]==0.9.0" "tqdm>=4.66" "msgpack>=1.0" \
  "pytest>=8" "pytest-timeout>=2.3" "pytest-asyncio>=0.24" "setuptools>=69" "wheel"
for part in "vllm==0.32.0" "deepspeed==0.19.8" "ray==2.60.0"; do
  fetch -c "$root/constraints.txt" "torch==2.13.0" "$part" || echo "wheelhouse: $part left out"
done
python3 -m pip wheel --quiet --no-deps --wheel-dir "$dir" "$root"
echo "wheelhouse ready: $dir ($(ls "$dir" | wc -l) files)"
