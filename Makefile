# Two entry points for a newcomer: `make demo` and `make test`. Each sets up .venv when missing
# (the CPU build of torch first, so that pip never pulls the multi-GB CUDA build on a CPU
# machine), rebuilds repap only when its sources changed, and is safe to run again.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0
# -march of the CPU kernels: x86-64-v3 runs on any AVX2 CPU; "native" tunes for this host
# (opt-in: `make test REPAP_ARCH=native`); the module refuses to import where it cannot run.
REPAP_ARCH ?= x86-64-v3
export REPAP_ARCH
# What the build was made for; for native, what -march=native means on this CPU, so that a
# venv carried to another CPU is rebuilt rather than reused.
ARCH_KEY := $(REPAP_ARCH)$(if $(filter native,$(REPAP_ARCH)), $(shell $(CXX) -march=native -E -dM -x c++ /dev/null 2>/dev/null | sha256sum | cut -c1-16))
ARCH_STAMP := $(VENV)/.arch
$(shell [ -d $(VENV) ] && [ "$$(cat $(ARCH_STAMP) 2>/dev/null)" != "$(ARCH_KEY)" ] && echo "$(ARCH_KEY)" > $(ARCH_STAMP))
NATIVE_PKG := build/native-pkg
# sources of the build; not __pycache__ (Numba's cache files appear there at run time)
SOURCES := pyproject.toml CMakeLists.txt $(shell find repap csrc -type f -not -path '*/__pycache__/*')

.PHONY: demo test test-all bench gpu-check lint clean

demo: $(VENV)/.installed
	$(VENV)/bin/repap demo --out repap-demo --overwrite

test: $(VENV)/.installed
	$(VENV)/bin/ruff check repap tests bench research
	$(VENV)/bin/pytest tests -m "not slow"

# everything, the slow end-to-end tests too (the README's snippets run as written: ~6 min)
test-all: $(VENV)/.installed
	$(VENV)/bin/ruff check repap tests bench research
	$(VENV)/bin/pytest tests

bench: $(VENV)/.installed $(NATIVE_PKG)/.built
	$(PIP) install "freud-analysis>=3" "MDAnalysis>=2.7"  # the RDF peers (the [bench] extra)
	# one process per file: Numba's OpenMP threads, left spinning after the RDF, made the
	# pure-torch generation peer 36x slower in a shared process (120.7 s against 3.4 s alone)
	mkdir -p bench-results/cpu
	for f in bench/bench_*.py; do \
		[ "$$f" = bench/bench_gpu.py ] && continue; \
		REPAP_BENCH_NATIVE=$(NATIVE_PKG) $(VENV)/bin/pytest $$f -p no:randomly \
			--benchmark-columns=min,mean,stddev,rounds --benchmark-sort=mean \
			--benchmark-json=bench-results/cpu/$$(basename $$f .py).json || exit 1; \
	done

# A second copy of the kernels tuned for this host, measured beside the portable default.
$(NATIVE_PKG)/.built: $(VENV)/.installed
	rm -rf $(NATIVE_PKG)
	REPAP_ARCH=native REPAP_CUDA=OFF $(PIP) install --no-build-isolation --no-deps \
		--target $(NATIVE_PKG) -C build-dir=build/native .
	touch $@

# On a CUDA machine, in one command: build against that machine's own CUDA build of torch (no
# venv: its python holds it), the CUDA tests, memcheck of every kernel, the GPU benchmarks.
# Every stage runs; it fails at the end if any did. Results: bench-results/gpu/.
gpu-check:
	PYTHON=$(PYTHON) bash bench/gpu_check.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check repap tests bench research
	$(VENV)/bin/ruff format --check repap tests bench research

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch only when the environment has none: an existing (e.g. CUDA) build is kept. The CPU
# build is named by its local version (+cpu), which PyPI's CUDA wheel cannot match: first from
# the configured indexes (a local wheel where there is one; PyPI answers at once that it has
# none), then from PyTorch's CPU index.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
$(VENV)/.torch: | $(PY)
	$(PY) -c "import torch" 2>/dev/null \
		|| $(PIP) install "torch==$(TORCH_VERSION)+cpu" \
		|| $(PIP) install --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)+cpu"
	touch $@

# Build requirements live in the venv so that rebuilds are incremental (build/ is kept).
$(ARCH_STAMP): | $(PY)
	echo "$(ARCH_KEY)" > $@

# Editable: `python` and `pytest` started in the checkout import the built package, not the bare
# source folder (which has no compiled module); a change of sources reinstalls (rebuilds).
$(VENV)/.installed: $(VENV)/.torch $(SOURCES) $(ARCH_STAMP)
	$(PIP) install "scikit-build-core>=0.10" "pybind11>=2.12"
	$(PIP) install --no-build-isolation -e ".[test,judge]"
	touch $@

clean:
	rm -rf build $(VENV) repap-demo .pytest_cache .benchmarks
