"""Projection densities at the paper's size: repap against the ways a user would write it.

Run: ``make bench`` (or ``.venv/bin/pytest bench/bench_projection.py``); set REPAP_BENCH_FRAMES
to shrink the problem. Groups are per grid size; compare each row with ``fill floor`` (the time to
merely write an output of the same size) and the torch/numpy peers. ``repap`` is the installed,
portable build (x86-64-v3); ``repap native`` is the same kernel built with -march=native, loaded
from REPAP_BENCH_NATIVE (a folder holding such a build; ``make bench`` makes one).
"""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import repap

FRAMES = int(os.environ.get("REPAP_BENCH_FRAMES", 40_000))
ATOMS = 30
SIGMA = 0.2 / 8.4366  # the poster's 0.2 Angstrom in the 30-atom a-Si cell
THREADS = [1, 2]


def _native_module():
    """The compiled module of a -march=native build, loaded beside the installed one."""
    folder = os.environ.get("REPAP_BENCH_NATIVE")
    if not folder:
        return None
    path = next(iter(sorted(Path(folder, "repap").glob("_C.*.so"))), None)
    if path is None:
        raise FileNotFoundError(f"REPAP_BENCH_NATIVE={folder}: no repap/_C.*.so inside")
    spec = importlib.util.spec_from_file_location("repap_native._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NATIVE = _native_module()


def native_project(frac, n_bins, sigma, out):
    status = NATIVE.project_cpu(frac, n_bins, [sigma] * 3, True, out)
    assert status == 0
    return out


def naive_torch(x, n_bins, sigma):
    """What one writes first: broadcasting, then normalise."""
    centres = (torch.arange(n_bins, dtype=x.dtype) + 0.5) / n_bins
    d = x.reshape(x.shape[0], -1)[..., None] - centres
    d = d - torch.round(d)
    w = torch.exp(-(d**2) / (2 * sigma**2))
    return w / w.sum(-1, keepdim=True)


def best_torch(x, n_bins, sigma, out):
    """The best plain torch found: every step in place in `out`, exponent clamped."""
    centres = (torch.arange(n_bins, dtype=x.dtype, device=x.device) + 0.5) / n_bins
    torch.sub(x.reshape(x.shape[0], -1, 1), centres, out=out)
    out.add_(0.5).remainder_(1.0).sub_(0.5)  # minimum image
    out.square_().mul_(-0.5 / sigma**2).clamp_(min=-87.0).exp_()
    out.div_(out.sum(-1, keepdim=True))
    return out


def functional_torch(x, n_bins: int, sigma: float):
    centres = (torch.arange(n_bins, dtype=x.dtype, device=x.device) + 0.5) / n_bins
    d = x.reshape(x.shape[0], -1, 1) - centres
    d = torch.remainder(d + 0.5, 1.0) - 0.5
    w = torch.exp(torch.clamp(-(d * d) * (0.5 / sigma**2), min=-87.0))
    return w / w.sum(-1, keepdim=True)


compiled_torch = torch.compile(functional_torch, dynamic=False)


def numpy_reference(x, n_bins, sigma):
    centres = ((np.arange(n_bins) + 0.5) / n_bins).astype(np.float32)
    d = x.reshape(x.shape[0], -1)[..., None] - centres
    d -= np.round(d)
    w = np.exp(d * d * np.float32(-0.5 / sigma**2))
    w /= w.sum(-1, keepdims=True)
    return w


@pytest.fixture(scope="module")
def frac():
    return np.random.default_rng(0).random((FRAMES, ATOMS, 3), dtype=np.float32)


def _out(n_bins):
    out = torch.empty(FRAMES, 3 * ATOMS, n_bins)
    out.fill_(0.0)  # touch the pages outside the timed region
    return out


PEERS = [
    "repap",
    pytest.param(
        "repap native",
        marks=pytest.mark.skipif(NATIVE is None, reason="REPAP_BENCH_NATIVE not set"),
    ),
    "repap torch",
    "fill floor",
    "best torch",
    "torch.compile",
    "naive torch",
    "numpy",
]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n_bins", [50, 200])
@pytest.mark.parametrize("peer", PEERS)
def test_projection(benchmark, frac, n_bins, peer, threads):
    torch.set_num_threads(threads)
    repap.set_num_threads(threads)
    if NATIVE is not None:
        NATIVE.set_num_threads(threads)
    benchmark.group = f"project F={FRAMES} N={ATOMS} G={n_bins}, {threads} thread(s)"
    benchmark.extra_info["bytes_written"] = FRAMES * 3 * ATOMS * n_bins * 4
    x = torch.from_numpy(frac)
    slow = peer in ("naive torch", "numpy")
    rounds = {"rounds": 2 if slow else 5, "iterations": 1, "warmup_rounds": 0 if slow else 1}
    if peer == "repap":
        out = _out(n_bins).numpy()
        result = benchmark.pedantic(repap.project, (frac, n_bins, SIGMA), {"out": out}, **rounds)
    elif peer == "repap native":
        out = _out(n_bins).numpy()
        result = benchmark.pedantic(native_project, (frac, n_bins, SIGMA, out), **rounds)
        benchmark.extra_info["cxx_arch"] = NATIVE.build_info()["cxx_arch"]
    elif peer == "repap torch":
        out = _out(n_bins)
        result = benchmark.pedantic(repap.project, (x, n_bins, SIGMA), {"out": out}, **rounds)
    elif peer == "fill floor":
        out = _out(n_bins)
        benchmark.pedantic(out.fill_, (0.5,), **rounds)
        return
    elif peer == "best torch":
        out = _out(n_bins)
        result = benchmark.pedantic(best_torch, (x, n_bins, SIGMA, out), **rounds)
    elif peer == "torch.compile":
        compiled_torch(x, n_bins, SIGMA)  # compile outside the timing
        result = benchmark.pedantic(compiled_torch, (x, n_bins, SIGMA), **rounds)
    elif peer == "naive torch":
        result = benchmark.pedantic(naive_torch, (x, n_bins, SIGMA), **rounds)
    else:
        result = benchmark.pedantic(numpy_reference, (frac, n_bins, SIGMA), **rounds)
    # every peer computes the same densities
    check = np.asarray(result[:50])
    want = repap.project(frac[:50], n_bins, SIGMA)
    np.testing.assert_allclose(check, want, rtol=0, atol=1e-5)
