# Two entry points for a newcomer: `make demo` and `make test`. Each sets up .venv when missing
# (the CPU build of torch first, so that pip never pulls the multi-GB CUDA build on a CPU
# machine), rebuilds repap only when its sources changed, and is safe to run again.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
SOURCES := pyproject.toml CMakeLists.txt $(shell find repap csrc -type f -not -name '*.pyc')

.PHONY: demo test bench lint clean

demo: $(VENV)/.installed
	$(VENV)/bin/repap demo --out repap-demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check repap tests bench
	$(VENV)/bin/pytest tests

bench: $(VENV)/.installed
	$(PIP) install "freud-analysis>=3" "MDAnalysis>=2.7"  # the RDF peers (the [bench] extra)
	$(VENV)/bin/pytest bench/bench_*.py --benchmark-columns=min,mean,stddev,rounds \
		--benchmark-sort=mean -p no:randomly

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check repap tests bench
	$(VENV)/bin/ruff format --check repap tests bench

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch only when the environment has none: an existing (e.g. CUDA) build is kept.
$(VENV)/.torch: | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install "torch==$(TORCH_VERSION)"
	touch $@

# Build requirements live in the venv so that rebuilds are incremental (build/ is kept).
$(VENV)/.installed: $(VENV)/.torch $(SOURCES)
	$(PIP) install "scikit-build-core>=0.10" "pybind11>=2.12"
	$(PIP) install --no-build-isolation ".[test]"
	touch $@

clean:
	rm -rf build $(VENV) repap-demo .pytest_cache .benchmarks
