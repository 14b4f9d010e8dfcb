#!/usr/bin/env bash
# Install the GPU tier's venv from a wheelhouse (tests/gpu/wheelhouse.sh), without network:
#   tests/gpu/install.sh WHEELHOUSE VENV
# vLLM, DeepSpeed and Ray are optional: one missing from the wheelhouse (or failing to install)
# is reported, and its tests skip with a reason.
set -euo pipefail
house=${1:?usage: tests/gpu/install.sh WHEELHOUSE VENV}
venv=${2:?usage: tests/gpu/install.sh WHEELHOUSE VENV}
test -x "$venv/bin/python" || python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index --find-links "$house")
"${pip[@]}" "torch==2.13.0" "transformers<5.20" tokenizers safetensors pillow numpy pydantic PyYAML \
  jsonschema "math-verify[antlr4_13_2]" tqdm msgpack pytest pytest-timeout pytest-asyncio
"${pip[@]}" --no-deps eureka-rl
for part in "vllm==0.32.0" "deepspeed==0.19.8" "ray==2.60.0"; do
  "${pip[@]}" "$part" || echo "install: $part not installed; its GPU tests will skip"
done
touch "$venv/.installed"
