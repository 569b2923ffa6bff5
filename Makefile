PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export TF_CPP_MIN_LOG_LEVEL := 3
export KERAS_HOME := $(CURDIR)/.keras
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install lint test test-fast demo docs bench bench-quick chaos accelerator-check lock clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (or set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml requirements.lock
	@echo "nas: installing the locked versions (requirements.lock) into $(VENV): TensorFlow, Keras, Optuna, Ray..."
	@echo "nas: 2-4 minutes on a fresh machine; each package is listed as it comes, then about 2 minutes of unpacking"
	$(PY) -m pip install --quiet --upgrade pip
	@bash -o pipefail -c '$(PY) -m pip install --progress-bar off -r requirements.lock | { grep -E "^(Collecting|Installing|Successfully installed)" || true; }'
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	@touch $(STAMP) && echo "nas: installed"

install: $(STAMP)

lint: $(STAMP)  # style, imports and likely bugs (ruff), then types (mypy: nas and search_spaces, see pyproject.toml)
	$(PY) -m ruff check nas search_spaces tests benchmarks
	$(PY) -m mypy

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q -m "not slow"

demo: $(STAMP)
	$(PY) -m nas.demo

docs: $(STAMP)  # the documentation site from docs/ into site/ (warnings are errors); open site/index.html
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site
	@echo "nas: documentation in site/: open site/index.html, or serve it for the search box:"
	@echo "  $(PY) -m http.server --directory site --bind 127.0.0.1 8000   # then http://127.0.0.1:8000"

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

lock:  # the exact versions of a fresh install of .[test,docs] within pyproject's ranges
	rm -rf /tmp/nas-lock-venv && $(PYTHON) -m venv /tmp/nas-lock-venv
	/tmp/nas-lock-venv/bin/pip install --quiet --upgrade pip && /tmp/nas-lock-venv/bin/pip install --quiet -e '.[test,docs]'
	{ echo "# Exact versions that make install and CI use (pip freeze of .[test,docs] on Python 3.11)."; \
	  echo "# Regenerate: make lock"; /tmp/nas-lock-venv/bin/pip freeze --exclude-editable | grep -v '^nas=='; } > requirements.lock

clean:
	rm -rf $(VENV) .keras runs .pytest_cache site .mypy_cache .ruff_cache
