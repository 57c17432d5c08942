"""Axis-projection densities: each coordinate becomes a normalised Gaussian on a grid.

The fused kernels live in ``csrc/projection``; this module checks arguments and dispatches
numpy arrays to the CPU kernel and torch tensors to the torch custom ops in
:mod:`repap.model.projection_ops`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

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

Array = Any  # numpy.ndarray or torch.Tensor


def _is_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    return torch is not None and isinstance(x, torch.Tensor)


def _as_coordinates(frac: object) -> np.ndarray:
    """C-contiguous float32/float64 view of ``frac``, copying only when needed."""
    x = np.asarray(frac)
    if x.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
            raise InputError(f"frac: expected real numbers, got dtype {x.dtype}")
        x = x.astype(np.float32 if x.dtype == np.float16 else np.float64)
    check_frac_shape(x.shape)
    return np.ascontiguousarray(x)


def project(
    frac: Array,
    n_bins: int,
    sigma: float | tuple[float, float, float],
    periodic: bool = True,
    out: Array | None = None,
) -> Array:
    r"""Discretised Gaussian density of every coordinate on a grid of ``n_bins`` bins.

    For coordinate :math:`r_i` (row :math:`i = 3n + a` for atom :math:`n`, axis :math:`a`) and
    bin centres :math:`g_k = (k + 1/2) / G`, eq. (1) of the RePAP poster with :math:`\sigma` a
    standard deviation:

    .. math:: M_{i,k} = \frac{1}{C_i} \exp\!\left(-\frac{(g_k - r_i)^2}{2\sigma_a^2}\right),
              \qquad \sum_k M_{i,k} = 1.

    With ``periodic=True`` coordinates are wrapped into [0, 1) and :math:`g_k - r_i` is the
    minimum-image distance on the unit circle; otherwise coordinates must lie in [0, 1).
    Weights below :math:`2^{-30}` of the row's largest are written as exact zeros (an error
    below 1e-9 per element, which keeps the kernel on its fast path).

    Parameters
    ----------
    frac
        Fractional coordinates, shape (F, N, 3): numpy array or torch tensor (CPU or CUDA),
        float32 or float64 (other real dtypes are converted).
    n_bins
        Number of bins G >= 2 per axis.
    sigma
        Width in fractional units: one number, or one per axis (sigma in Angstrom divided by
        the lattice vector's length).
    periodic
        Wrap coordinates and distances around [0, 1).
    out
        Optional float32, C-contiguous output of shape (F, 3N, G) of the same kind (numpy, or
        torch on the same device), written in place.

    Returns
    -------
    float32 array of shape (F, 3N, G), rows in the order x0, y0, z0, x1, ...; numpy in,
    numpy out; torch in, torch out on the input's device.
    """
    if _is_tensor(frac):
        from repap.model import projection_ops as ops

        return ops.project(frac, n_bins, sigma, periodic, out)
    if _is_tensor(out):
        raise InputError("out: must be a numpy array when frac is not a torch tensor")
    x = _as_coordinates(frac)
    n_bins = check_n_bins(n_bins)
    sigmas = check_sigma(sigma)
    periodic = check_periodic(periodic)
    shape = (x.shape[0], 3 * x.shape[1], n_bins)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif not isinstance(out, np.ndarray):
        raise InputError(f"out: expected a numpy array, got {type(out).__name__}")
    else:
        check_out_shape(out.shape, shape)
        if out.dtype != np.float32 or not out.flags.c_contiguous or not out.flags.writeable:
            raise InputError("out: must be a writeable, C-contiguous float32 array")
    raise_for_status(_C.project_cpu(x, n_bins, sigmas, periodic, out))
    return out


def bin_index(frac: Array, n_bins: int, periodic: bool = True) -> Array:
    """Bin of each coordinate, shape (F, 3N), int64, in the order of :func:`project`.

    Bin k covers [k/G, (k+1)/G); with ``periodic=True`` coordinates are wrapped into [0, 1)
    first. It is the argmax of the row :func:`project` writes for the same coordinate.
    """
    if _is_tensor(frac):
        from repap.model import projection_ops as ops

        return ops.bin_index(frac, n_bins, periodic)
    x = _as_coordinates(frac)
    n_bins = check_n_bins(n_bins)
    periodic = check_periodic(periodic)
    out = np.empty((x.shape[0], 3 * x.shape[1]), dtype=np.int64)
    raise_for_status(_C.bin_index_cpu(x, n_bins, periodic, out))
    return out
