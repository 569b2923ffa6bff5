PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL := 3
export KERAS_HOME := $(CURDIR)/.keras
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install test test-fast demo bench bench-quick chaos accelerator-check clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	@echo "nas: installing into $(VENV) (TensorFlow, Keras, Optuna, Ray...: a few minutes on a fresh machine)"
	$(PY) -m pip install --quiet --upgrade pip
	@bash -o pipefail -c '$(PY) -m pip install --progress-bar off -e . | { grep -E "^(Collecting|Successfully installed)" || true; }'
	@touch $(STAMP) && echo "nas: installed"

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

demo: $(STAMP)
	$(PY) -m nas.demo

bench: $(STAMP)
	bash benchmarks/get_fashion_mnist.sh
	$(PY) benchmarks/run.py

bench-quick: $(STAMP)
	bash benchmarks/get_fashion_mnist.sh
	$(PY) benchmarks/run.py --quick

chaos: $(STAMP)
	$(PY) benchmarks/run.py --only chaos --update

accelerator-check: $(STAMP)
	$(PY) benchmarks/accelerator_check.py

clean:
	rm -rf $(VENV) .keras runs .pytest_cache
