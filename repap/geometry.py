"""Periodic-cell geometry shared by the Numba kernels (RDF, metrics, rings) and the checks.

Cells are rows of lattice vectors (ASE's convention); fractional coordinates s give Cartesian
positions s @ cell.
"""

from __future__ import annotations

import numba
import numpy as np


def cell_heights(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces, (..., 3) for cells (..., 3, 3): 1 / |b_j|, b_j the
    reciprocal vectors (columns of the inverse cell)."""
    return 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=-2)


def minimum_image_vectors(d: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Cartesian separations d (..., 3) folded to the minimum image of the periodic cell
    (rows of lattice vectors) by rounding their fractional components: the nearest image in
    any cell for separations under half the smallest height (:func:`cell_heights`)."""
    f = d @ np.linalg.inv(cell)
    return (f - np.round(f)) @ cell


def image_reach(cell: np.ndarray, periodic: np.ndarray, cutoff: float) -> np.ndarray:
    """Periodic images to enumerate on each side, per axis, around the minimum image of a
    pair so that every image within ``cutoff`` is seen (0 on open axes)."""
    reach = np.where(periodic, np.floor(cutoff / cell_heights(cell) + 0.5), 0)
    return reach.astype(np.int64)


@numba.njit(cache=True, inline="always")
def minimum_image(s0, s1, s2, periodic):
    """A fractional separation folded into [-1/2, 1/2) on the periodic axes."""
    if periodic[0]:
        s0 -= np.floor(s0 + 0.5)
    if periodic[1]:
        s1 -= np.floor(s1 + 0.5)
    if periodic[2]:
        s2 -= np.floor(s2 + 0.5)
    return s0, s1, s2


@numba.njit(cache=True, inline="always")
def cartesian(s0, s1, s2, h):
    """Fractional (s0, s1, s2) in the cell h (rows of lattice vectors) as Cartesian x, y, z."""
    x = s0 * h[0, 0] + s1 * h[1, 0] + s2 * h[2, 0]
    y = s0 * h[0, 1] + s1 * h[1, 1] + s2 * h[2, 1]
    z = s0 * h[0, 2] + s1 * h[1, 2] + s2 * h[2, 2]
    return x, y, z
