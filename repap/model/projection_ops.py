"""Torch custom ops over the compiled kernels: ``torch.ops.repap.project``, ``project_out`` and
``bin_index``. They dispatch by device (CPU: OpenMP kernel, CUDA: kernel on the current stream)
and have fake implementations, so they work under ``torch.compile``.
"""

from __future__ import annotations

import torch

from repap import _C
from repap._checks import (
    check_frac_shape,
    check_n_bins,
    check_out_shape,
    check_periodic,
    check_sigma,
    raise_for_status,
)
from repap.errors import InputError


def _launch(
    kernel: str, frac: torch.Tensor, out: torch.Tensor, *args: object, check: bool = True
) -> None:
    """Run ``_C.<kernel>_cpu`` or ``_C.<kernel>_cuda`` on contiguous tensors, then check status.
    ``check=False`` skips the status read on CUDA, which waits for the kernel (a host sync)."""
    frac = frac.contiguous()
    if frac.device.type == "cpu":
        status = getattr(_C, f"{kernel}_cpu")(frac.detach().numpy(), *args, out.detach().numpy())
    elif frac.device.type == "cuda":
        flag = torch.zeros(1, dtype=torch.int32, device=frac.device)
        stream = torch.cuda.current_stream(frac.device).cuda_stream
        n_bins, *rest = args
        getattr(_C, f"{kernel}_cuda")(
            frac.data_ptr(), frac.dtype == torch.float64, frac.numel(), n_bins, *rest,
            out.data_ptr(), flag.data_ptr(), frac.device.index, stream,
        )  # fmt: skip
        if not check:
            return
        status = int(flag.item())  # waits for the kernel: bad input must not pass silently
    else:
        raise InputError(f"frac: unsupported device {frac.device}")
    raise_for_status(status)


@torch.library.custom_op("repap::project", mutates_args=())
def _project(frac: torch.Tensor, n_bins: int, sigma: list[float], periodic: bool) -> torch.Tensor:
    out = torch.empty(
        (frac.shape[0], 3 * frac.shape[1], n_bins), dtype=torch.float32, device=frac.device
    )
    _launch("project", frac, out, n_bins, sigma, periodic)
    return out


@_project.register_fake
def _(frac: torch.Tensor, n_bins: int, sigma: list[float], periodic: bool) -> torch.Tensor:
    return frac.new_empty((frac.shape[0], 3 * frac.shape[1], n_bins), dtype=torch.float32)


@torch.library.custom_op("repap::project_out", mutates_args=("out",))
def _project_out(
    frac: torch.Tensor, n_bins: int, sigma: list[float], periodic: bool, out: torch.Tensor
) -> None:
    _launch("project", frac, out, n_bins, sigma, periodic)


@_project_out.register_fake
def _(frac: torch.Tensor, n_bins: int, sigma: list[float], periodic: bool, out: torch.Tensor):
    return None


@torch.library.custom_op("repap::bin_index", mutates_args=())
def _bin_index(frac: torch.Tensor, n_bins: int, periodic: bool) -> torch.Tensor:
    out = torch.empty((frac.shape[0], 3 * frac.shape[1]), dtype=torch.int64, device=frac.device)
    _launch("bin_index", frac, out, n_bins, periodic)
    return out


@_bin_index.register_fake
def _(frac: torch.Tensor, n_bins: int, periodic: bool) -> torch.Tensor:
    return frac.new_empty((frac.shape[0], 3 * frac.shape[1]), dtype=torch.int64)


def _as_coordinates(frac: torch.Tensor) -> torch.Tensor:
    if frac.is_complex() or not (frac.is_floating_point() or frac.dtype in _INTEGER_DTYPES):
        raise InputError(f"frac: expected real numbers, got dtype {frac.dtype}")
    if frac.dtype not in (torch.float32, torch.float64):
        frac = frac.to(torch.float64 if frac.dtype in _INTEGER_DTYPES else torch.float32)
    check_frac_shape(frac.shape)
    return frac


_INTEGER_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def project(
    frac: torch.Tensor,
    n_bins: int,
    sigma: float | tuple[float, float, float],
    periodic: bool = True,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Torch path of :func:`repap.project` (same arguments and result)."""
    frac = _as_coordinates(frac)
    n_bins = check_n_bins(n_bins)
    sigmas = check_sigma(sigma)
    periodic = check_periodic(periodic)
    if out is None:
        return torch.ops.repap.project(frac, n_bins, sigmas, periodic)
    if not isinstance(out, torch.Tensor):
        raise InputError(f"out: expected a torch tensor like frac, got {type(out).__name__}")
    check_out_shape(out.shape, (frac.shape[0], 3 * frac.shape[1], n_bins))
    if out.dtype != torch.float32 or not out.is_contiguous():
        raise InputError("out: must be a contiguous float32 tensor")
    if out.device != frac.device:
        raise InputError(f"out: on {out.device}, but frac is on {frac.device}")
    torch.ops.repap.project_out(frac, n_bins, sigmas, periodic, out)
    return out


def project_validated(frac: torch.Tensor, n_bins: int, sigma: list[float]) -> torch.Tensor:
    """Periodic projection densities of coordinates already known to be finite (training data,
    validated once when its bins were computed): on CUDA no host synchronisation per call."""
    out = torch.empty(
        (frac.shape[0], 3 * frac.shape[1], n_bins), dtype=torch.float32, device=frac.device
    )
    _launch("project", frac, out, n_bins, sigma, True, check=False)
    return out


def bin_index(frac: torch.Tensor, n_bins: int, periodic: bool = True) -> torch.Tensor:
    """Torch path of :func:`repap.bin_index`."""
    frac = _as_coordinates(frac)
    return torch.ops.repap.bin_index(frac, check_n_bins(n_bins), check_periodic(periodic))
