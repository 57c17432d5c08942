"""The benchmarks stay runnable: every bench/bench_*.py imports and collects (a refactor once
removed a name bench_generate imported, and `make bench` failed at collection unnoticed)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_benchmark_file_collects():
    files = sorted(str(p) for p in (ROOT / "bench").glob("bench_*.py"))
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:randomly", *files], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    for f in files:  # each file holds benchmarks (the GPU ones collect and skip without CUDA)
        assert any(line.startswith(f"bench/{Path(f).name}::") for line in collected), f
