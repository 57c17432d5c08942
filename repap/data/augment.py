"""Augmentations of periodic structures that keep every interatomic distance: the lattice's
symmetry operations and shifts of the origin. Applied before atoms are ordered, each gives
another ordering of the same network, so a model sees many orderings of each network and has
to learn local rules rather than one sequence per network."""

from __future__ import annotations

import itertools

import numpy as np

from repap.errors import InputError


def lattice_symmetries(cell: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Signed permutation matrices M (K, 3, 3) of fractional coordinates (x -> x M) that map
    the lattice of ``cell`` (rows: lattice vectors) onto itself with every distance kept:
    M G M^T = G for the metric G = cell cell^T. 48 for a cubic cell; the identity is first."""
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3):
        raise InputError(f"cell: expected a 3 x 3 matrix, got shape {cell.shape}")
    metric = cell @ cell.T
    scale = np.abs(metric).max()
    ops = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            if np.allclose(m @ metric @ m.T, metric, atol=tol * scale):
                ops.append(m)
    return np.stack(ops)  # the identity (perm 0,1,2 and signs +) comes first


def transform(frac: np.ndarray, op: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Fractional coordinates (..., 3) after ``x -> x op + shift``, wrapped into [0, 1)."""
    out = np.asarray(frac, dtype=np.float64) @ op + shift
    out -= np.floor(out)
    out[out >= 1.0] = 0.0  # -1e-17 + 1 rounds to 1.0
    return out


def draws(
    n: int, cell: np.ndarray, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """n random (op, shift) pairs: a symmetry of the lattice and a uniform origin shift."""
    ops = lattice_symmetries(cell)
    return [(ops[rng.integers(len(ops))], rng.random(3)) for _ in range(n)]
