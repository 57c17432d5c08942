"""The CUDA projection kernel's arithmetic and tile walk, on any machine: the host harness
(tests/projection_tile_harness.cpp, built here with the C++ compiler) against the CPU kernel,
to 1e-6, points at bin edges included (where the fast exponent cancels: an H200 run caught a
7.7e-5 error there for Gaussians of 0.008 bins before the narrow form existed)."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import repap

ROOT = Path(__file__).resolve().parents[1]
CXX = shutil.which("c++") or shutil.which("g++")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if CXX is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path_factory.mktemp("tile") / "harness"
    subprocess.run([CXX, "-std=c++17", "-O1", f"-I{ROOT / 'csrc'}", "-o", str(exe),
                    str(ROOT / "tests" / "projection_tile_harness.cpp")], check=True)  # fmt: skip
    return exe


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize(
    ("n_bins", "sigma", "width"),
    [
        (50, 0.0237, 2),
        (50, 0.0237, 1),
        (200, 0.005, 4),
        (100, 0.0059, 4),
        (77, 0.0001, 1),
        (2, 0.3, 2),
        (1024, 0.01, 4),
        (50, 0.004, 2),
        (100, 0.003, 4),
        (50, 1e-30, 2),  # sigma far below a bin: c capped, one-hot rows, never NaN
    ],
)
def test_tile_arithmetic_equals_the_cpu_kernel(harness, n_bins, sigma, width, periodic):
    rng = np.random.default_rng(n_bins)
    n = 3 * 333  # rows: four tiles, the last partial
    k = rng.integers(0, n_bins, n)
    edge = rng.choice([1e-7, 1e-5, 1e-3, 0.5, 1 - 1e-3, 1 - 1e-5, 1 - 1e-7], n)
    x = np.minimum((k + edge) / n_bins, 1 - 2**-24).astype(np.float32)
    x[::7] = rng.random(len(x[::7]))
    if periodic:
        x[:4] = [1.0 - 1e-8, -0.3, 1.7, 0.0]
    run = subprocess.run([str(harness), str(n_bins), repr(sigma), str(int(periodic)), str(width)],
                         input=x.tobytes(), capture_output=True, check=True)  # fmt: skip
    got = np.frombuffer(run.stdout, dtype=np.float32).reshape(n, n_bins)
    frac = torch.from_numpy(x).reshape(1, -1, 3)
    want = repap.project(frac, n_bins, sigma, periodic=periodic).reshape(n, n_bins).numpy()
    assert not (got == -7).any(), "elements left unwritten"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
