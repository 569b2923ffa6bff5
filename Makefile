PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL := 3
export KERAS_HOME := $(CURDIR)/.keras
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install test test-fast demo bench bench-quick clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

demo: $(STAMP)
	$(PY) -m nas.demo

bench: $(STAMP)
	$(PY) benchmarks/bench_cost.py
	$(PY) benchmarks/bench_spaces.py
	$(PY) benchmarks/bench_engine.py --trials 200
	$(PY) benchmarks/bench_ray.py --trials 8

bench-quick: $(STAMP)
	$(PY) benchmarks/bench_cost.py --quick
	$(PY) benchmarks/bench_spaces.py
	$(PY) benchmarks/bench_engine.py --quick
	$(PY) benchmarks/bench_ray.py --trials 4

clean:
	rm -rf $(VENV) .keras runs .pytest_cache
