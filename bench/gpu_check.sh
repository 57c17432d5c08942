#!/usr/bin/env bash
# `make gpu-check`: build, CUDA tests, memcheck and GPU benchmarks on a CUDA machine, every
# stage run even when one before it failed; the exit status says whether all passed.
# Uses the machine's own python (its CUDA build of torch), not the CPU venv.
set -uo pipefail
PYTHON=${PYTHON:-python3}
OUT=${GPU_RESULTS:-bench-results/gpu}
mkdir -p "$OUT"
failed=()
stage() {  # stage NAME LOG COMMAND...
  local name=$1 log=$2
  shift 2
  echo "== $name"
  if ! "$@" 2>&1 | tee "$OUT/$log"; then failed+=("$name"); fi
}
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: no CUDA device')" || exit 2
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/device.txt"
# the kernels for this GPU's architecture only (REPAP_GPU_ARCH=80 for another): half the nvcc time
arch=${REPAP_GPU_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)}
export SKBUILD_CMAKE_DEFINE="REPAP_CUDA_ARCHITECTURES=$arch"
stage build build.log "$PYTHON" -m pip install --no-build-isolation --no-deps -v -e .
[ ${#failed[@]} -eq 0 ] || { echo "gpu-check: the build failed (see $OUT/build.log)"; exit 1; }
"$PYTHON" -m repap info | tee -a "$OUT/device.txt"
# a short lease can narrow the stages: GPU_CHECK_TESTS (test files), GPU_CHECK_BENCH (-k filter)
read -ra tests <<<"${GPU_CHECK_TESTS:-tests/test_cuda.py tests/test_projection_torch.py tests/test_sampling.py}"
stage tests tests.log "$PYTHON" -m pytest "${tests[@]}" -m "not slow" -p no:randomly \
  -p no:cacheprovider -q -s -rs
stage bench bench.log "$PYTHON" -m pytest bench/bench_gpu.py -p no:randomly -p no:cacheprovider \
  -k "${GPU_CHECK_BENCH:-}" --benchmark-json="$OUT/bench.json" --benchmark-columns=min,mean,rounds \
  --benchmark-sort=name
"$PYTHON" bench/gpu_table.py "$OUT/bench.json" | tee "$OUT/table.md"
stage memcheck memcheck.log compute-sanitizer --tool memcheck --error-exitcode 1 \
  "$PYTHON" bench/gpu_memcheck.py
stage profile profile.txt "$PYTHON" bench/gpu_profile.py
if [ ${#failed[@]} -ne 0 ]; then echo "gpu-check: failed: ${failed[*]}"; exit 1; fi
echo "gpu-check: all passed"
