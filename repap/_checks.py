"""Argument checks shared by the numpy and torch paths: one-line ValueErrors naming the argument."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import numpy as np

from repap import _C
from repap.errors import InputError

NON_FINITE = _C.status_non_finite  # status bits of the kernels (csrc/common/status.h)
OUT_OF_RANGE = _C.status_out_of_range


def check_positive_int(value: object, name: str) -> int:
    """``value`` as an int, or a ValueError naming ``name`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_frac_shape(shape: Sequence[int]) -> None:
    if len(shape) != 3 or shape[-1] != 3:
        raise InputError(f"frac: expected shape (F, N, 3), got {tuple(shape)}")


def check_n_bins(n_bins: object) -> int:
    if isinstance(n_bins, bool):
        raise InputError(f"n_bins: expected an integer >= 2, got {n_bins!r}")
    try:
        n = operator.index(n_bins)
    except TypeError:
        raise InputError(f"n_bins: expected an integer >= 2, got {n_bins!r}") from None
    if n < 2:
        raise InputError(f"n_bins: expected an integer >= 2, got {n}")
    return n


def check_sigma(sigma: object) -> list[float]:
    """One positive, finite width per axis (a scalar is used for all three)."""
    scalar = isinstance(sigma, numbers.Real) or getattr(sigma, "ndim", None) == 0
    try:
        values = [float(sigma)] * 3 if scalar else [float(s) for s in sigma]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InputError(f"sigma: expected a number or three numbers, got {sigma!r}") from None
    if len(values) != 3:
        raise InputError(f"sigma: expected a number or three numbers, got {len(values)} values")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise InputError(f"sigma: every value must be positive and finite, got {values}")
    return values


def check_periodic(periodic: object) -> bool:
    if not isinstance(periodic, bool):
        raise InputError(f"periodic: expected True or False, got {periodic!r}")
    return periodic


def check_out_shape(shape: Sequence[int], expected: tuple[int, ...]) -> None:
    if tuple(shape) != expected:
        raise InputError(f"out: expected shape {expected}, got {tuple(shape)}")


def raise_for_status(status: int) -> None:
    """Turn the kernels' status bitmask into the error a user can act on."""
    if status & NON_FINITE:
        raise InputError("frac: contains NaN or infinite coordinates")
    if status & OUT_OF_RANGE:
        raise InputError(
            "frac: coordinates outside [0, 1) with periodic=False (wrap them or pass periodic=True)"
        )


def check_frames(
    positions: object, cell: object, pbc: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions as (F, N, 3) float64, the cell as given ((3, 3) or (F, 3, 3), not broadcast:
    callers do their linear algebra once for a fixed cell) and pbc as (3,) bool."""
    pos = np.asarray(positions, dtype=np.float64)
    pos = pos[None] if pos.ndim == 2 else pos
    if pos.ndim != 3 or pos.shape[2] != 3:
        raise InputError(f"positions: expected shape (N, 3) or (F, N, 3), got {pos.shape}")
    if not np.isfinite(pos).all():
        raise InputError("positions: contain NaN or infinite values")
    if cell is None:
        raise InputError("cell: required with array positions (the volume normalises g)")
    cells = np.asarray(cell, dtype=np.float64)
    if cells.shape not in ((3, 3), (pos.shape[0], 3, 3)):
        raise InputError(
            f"cell: expected shape (3, 3) or ({pos.shape[0]}, 3, 3), got {cells.shape}"
        )
    volumes = np.abs(np.linalg.det(cells))
    if not (np.isfinite(volumes).all() and (volumes > 1e-9).all()):
        raise InputError("cell: singular (volume 0) or not finite")
    return pos, cells, np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))


def check_min_dist(
    min_dist: object, cell: np.ndarray | None = None, optional: bool = False, name: str = "min_dist"
) -> float:
    """The one check of "no pair closer than d", with one message wherever it is asked for:
    a positive, finite distance in Angstrom (``None`` turns it off where ``optional``: 0.0 is
    returned, as the kernels take it), and with a cell, below half its smallest height, where
    the minimum image found by rounding fractional differences is the nearest image."""
    if min_dist is None and optional:
        return 0.0
    ok = isinstance(min_dist, numbers.Real) and not isinstance(min_dist, bool)
    if not (ok and math.isfinite(min_dist) and min_dist > 0):
        off = " or None (off)" if optional else ""
        raise InputError(f"{name}: expected a positive distance in Angstrom{off}, got {min_dist!r}")
    if cell is not None:
        from repap.geometry import cell_heights  # numba: only where a cell is checked

        half = float(min(cell_heights(np.asarray(cell, dtype=np.float64)))) / 2
        if min_dist >= half:
            raise InputError(
                f"{name}: {min_dist} A must be below half the cell's smallest height ({half:.3f} A)"
            )
    return float(min_dist)
