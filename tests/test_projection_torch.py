"""The torch path: custom ops, opcheck, torch.compile, and CUDA against CPU where a GPU exists."""

import numpy as np
import pytest
import torch
from reference import bin_reference, projection_reference

import repap

needs_cuda = pytest.mark.skipif(
    not (torch.cuda.is_available() and repap.cuda_available()),
    reason="no CUDA device usable by torch and repap's build "
    f"(repap cuda_compiled={repap.build_info()['cuda_compiled']}, "
    f"devices={repap.build_info()['cuda_device_count']})",
)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("periodic", [True, False])
def test_torch_matches_reference(rng, dtype, periodic):
    for n_bins, sigma in [(2, 0.3), (50, 0.0237), (200, 0.005), (13, 0.0001)]:
        frac = torch.as_tensor(rng.random((4, 9, 3)), dtype=dtype)
        got = repap.project(frac, n_bins, sigma, periodic=periodic)
        assert isinstance(got, torch.Tensor)
        assert got.dtype == torch.float32
        assert got.device == frac.device
        want = projection_reference(frac.numpy(), n_bins, sigma, periodic)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)
        bins = repap.bin_index(frac, n_bins, periodic=periodic)
        assert bins.dtype == torch.int64
        np.testing.assert_array_equal(bins.numpy(), bin_reference(frac.numpy(), n_bins, periodic))


def test_torch_out_in_place_without_copy(rng):
    frac = torch.as_tensor(rng.random((3, 5, 3)), dtype=torch.float32)
    out = torch.full((3, 15, 20), float("nan"))
    pointer = out.data_ptr()
    result = repap.project(frac, 20, (0.01, 0.02, 0.03), out=out)
    assert result is out and out.data_ptr() == pointer
    want = projection_reference(frac.numpy(), 20, (0.01, 0.02, 0.03))
    np.testing.assert_allclose(out.numpy(), want, rtol=0, atol=1e-6)


def test_torch_non_contiguous_and_requires_grad(rng):
    base = torch.as_tensor(rng.random((3, 6, 3)), dtype=torch.float64)
    frac = base.transpose(0, 1)  # (6, 3, 3), not contiguous
    got = repap.project(frac, 16, 0.04)
    np.testing.assert_allclose(
        got.numpy(), projection_reference(frac.numpy(), 16, 0.04), rtol=0, atol=1e-6
    )
    leaf = base.clone().requires_grad_(True)
    assert repap.project(leaf, 16, 0.04).shape == (3, 18, 16)


def test_torch_bad_input():
    good = torch.full((1, 2, 3), 0.25)
    with pytest.raises(ValueError, match="^frac: contains NaN"):
        repap.project(torch.full((1, 2, 3), float("nan")), 10, 0.05)
    with pytest.raises(ValueError, match=r"^frac: .*outside \[0, 1\)"):
        repap.project(torch.full((1, 2, 3), 1.5), 10, 0.05, periodic=False)
    with pytest.raises(ValueError, match=r"^frac: expected shape \(F, N, 3\)"):
        repap.project(torch.zeros(2, 3), 10, 0.05)
    with pytest.raises(ValueError, match="^frac: expected real numbers"):
        repap.project(torch.zeros(1, 1, 3, dtype=torch.complex64), 10, 0.05)
    with pytest.raises(ValueError, match="^out: expected a torch tensor"):
        repap.project(good, 10, 0.05, out=np.zeros((1, 6, 10), np.float32))
    with pytest.raises(ValueError, match="^out: must be a contiguous float32"):
        repap.project(good, 10, 0.05, out=torch.zeros(1, 6, 10, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^out: expected shape \(1, 6, 10\)"):
        repap.project(good, 10, 0.05, out=torch.zeros(1, 6, 11))
    with pytest.raises(ValueError, match="^out: must be a numpy array"):
        repap.project(good.numpy(), 10, 0.05, out=torch.zeros(1, 6, 10))


def test_opcheck(rng):
    frac = torch.as_tensor(rng.random((3, 4, 3)), dtype=torch.float32)
    torch.library.opcheck(torch.ops.repap.project.default, (frac, 20, [0.02, 0.03, 0.04], True))
    torch.library.opcheck(
        torch.ops.repap.project_out.default,
        (frac.double(), 20, [0.02, 0.02, 0.02], False, torch.empty(3, 12, 20)),
    )
    torch.library.opcheck(torch.ops.repap.bin_index.default, (frac, 20, True))


def test_works_under_torch_compile(rng):
    def one_hot_and_targets(frac):
        targets = repap.project(frac, 32, 0.03)
        bins = repap.bin_index(frac, 32)
        return targets * 2.0, torch.nn.functional.one_hot(bins, 32).float()

    frac = torch.as_tensor(rng.random((5, 7, 3)), dtype=torch.float32)
    compiled = torch.compile(one_hot_and_targets, fullgraph=True, backend="eager")
    got_targets, got_hot = compiled(frac)
    want_targets, want_hot = one_hot_and_targets(frac)
    torch.testing.assert_close(got_targets, want_targets)
    torch.testing.assert_close(got_hot, want_hot)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("periodic", [True, False])
def test_cuda_equals_cpu(rng, dtype, periodic):
    for n_bins, sigma in [(2, 0.3), (50, 0.0237), (200, (0.005, 0.01, 0.2)), (77, 0.0001),
                          (50, 1e-30)]:  # fmt: skip
        frac = torch.as_tensor(rng.random((16, 30, 3)), dtype=dtype)
        cpu = repap.project(frac, n_bins, sigma, periodic=periodic)
        gpu = repap.project(frac.cuda(), n_bins, sigma, periodic=periodic)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-6)
        bins = repap.bin_index(frac.cuda(), n_bins, periodic=periodic)
        torch.testing.assert_close(bins.cpu(), repap.bin_index(frac, n_bins, periodic=periodic))


@needs_cuda
def test_cuda_out_stream_and_errors(rng):
    frac = torch.as_tensor(rng.random((8, 5, 3)), dtype=torch.float32, device="cuda")
    out = torch.empty(8, 15, 40, device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        repap.project(frac, 40, 0.02, out=out)
    stream.synchronize()
    torch.testing.assert_close(out.cpu(), repap.project(frac.cpu(), 40, 0.02), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="^frac: contains NaN"):
        repap.project(torch.full((1, 1, 3), float("nan"), device="cuda"), 10, 0.05)
    with pytest.raises(ValueError, match="^out: on cpu"):
        repap.project(frac, 40, 0.02, out=torch.empty(8, 15, 40))
    torch.library.opcheck(torch.ops.repap.project.default, (frac, 20, [0.02, 0.03, 0.04], True))


def test_without_cuda_build_says_so():
    if repap.build_info()["cuda_compiled"]:
        pytest.skip("this build has CUDA kernels")
    with pytest.raises(RuntimeError, match="built without CUDA"):
        repap._C.project_cuda(0, False, 1, 10, [0.1] * 3, True, 0, 0, 0, 0)
