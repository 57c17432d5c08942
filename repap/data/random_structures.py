"""Random structures at a given cell and atom count, vectorised over structures: the
baselines of ``repap evaluate`` (:mod:`repap.evaluation.baselines`) and the starts of
``repap search``.

``uniform``: atoms anywhere in the cell, the poor baseline of the RePAP poster.
``random_min_distance``: random sequential addition, as AIRSS's buildcell or ASE's
StartGenerator build random starts: each atom is drawn uniformly until it is at least
``min_dist`` (minimum image) from the atoms already placed.
``perturbed``: known structures (training networks) with Gaussian noise on every coordinate,
the "training set plus noise" bar of generative-model benchmarks: relaxed, it makes networks
near the training ones (``research/perturbation/perturb_relax.py`` maps novelty against
quality by sigma).
"""

from __future__ import annotations

import numpy as np

from repap._checks import check_min_dist, check_positive_int
from repap.data.trajectory import Trajectory
from repap.errors import InputError


def uniform(
    n: int, cell: np.ndarray, numbers: np.ndarray, seed: int = 0, pbc: bool | np.ndarray = True
) -> Trajectory:
    """``n`` structures with every atom uniform in the cell."""
    cell, numbers = _check(n, cell, numbers)
    rng = np.random.default_rng(seed)
    return Trajectory(rng.random((n, len(numbers), 3)) @ cell, cell, numbers, pbc)


RSA_JAMMING = 0.38  # volume fraction at which random sequential addition of spheres jams


def random_min_distance(
    n: int,
    cell: np.ndarray,
    numbers: np.ndarray,
    min_dist: float = 2.0,
    seed: int = 0,
    pbc: bool | np.ndarray = True,
    max_attempts: int = 10_000,
) -> Trajectory:
    """``n`` structures built atom by atom, no pair closer than ``min_dist`` (minimum image).

    All structures advance together: each round redraws, for every structure still missing
    its current atom, one candidate position. A structure whose atom fails ``max_attempts``
    times is started again; after 100 restarts of one structure a ValueError says the
    packing is too dense.
    """
    cell, numbers = _check(n, cell, numbers)
    check_min_dist(min_dist)
    # spheres of diameter min_dist around the atoms: random sequential addition jams at a
    # volume fraction near 0.38 in 3-D; far beyond it the search would run for hours
    fraction = len(numbers) * np.pi / 6 * min_dist**3 / abs(np.linalg.det(cell))
    if fraction > RSA_JAMMING:
        raise InputError(
            f"min_dist: {len(numbers)} atoms {min_dist} A apart would fill {fraction:.2f} of the "
            f"cell; random placement jams near {RSA_JAMMING} (lower min_dist)"
        )
    periodic = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    rng = np.random.default_rng(seed)
    n_atoms = len(numbers)
    frac = np.zeros((n, n_atoms, 3))
    placed = np.zeros(n, dtype=np.int64)  # atoms placed so far in each structure
    attempts = np.zeros(n, dtype=np.int64)
    restarts = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    while todo.size:
        trial = rng.random((todo.size, 3))
        k = placed[todo]
        d = trial[:, None, :] - frac[todo]  # (T, N, 3) against every slot; unplaced ones masked
        d[..., periodic] -= np.round(d[..., periodic])
        r2 = np.einsum("tnd,tnd->tn", d @ cell, d @ cell)
        r2[np.arange(n_atoms)[None, :] >= k[:, None]] = np.inf
        ok = (r2 >= min_dist**2).all(axis=1)
        done = todo[ok]
        frac[done, placed[done]] = trial[ok]
        placed[done] += 1
        attempts[done] = 0
        failed = todo[~ok]
        attempts[failed] += 1
        stuck = failed[attempts[failed] >= max_attempts]
        placed[stuck] = 0
        attempts[stuck] = 0
        restarts[stuck] += 1
        if (restarts > 100).any():
            raise InputError(
                f"min_dist: cannot place {n_atoms} atoms {min_dist} A apart in "
                f"this cell (too dense)"
            )
        todo = np.flatnonzero(placed < n_atoms)
    return Trajectory(frac @ cell, cell, numbers, pbc)


def perturbed(structures: Trajectory, n: int, sigma: float, seed: int = 0) -> Trajectory:
    """``n`` structures: ``structures`` in turn (frame k % len), every coordinate moved by
    Gaussian noise of ``sigma`` A."""
    check_positive_int(n, "n")
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma: expected a positive distance in A, got {sigma!r}")
    if len(structures) == 0:
        raise InputError("structures: none to perturb")
    rng = np.random.default_rng(seed)
    source = np.arange(n) % len(structures)
    moved = structures.positions[source] + rng.normal(0.0, sigma, (n, structures.n_atoms, 3))
    cells = structures.frame_cells()[source] if np.ndim(structures.cell) == 3 else structures.cell
    return Trajectory(moved, cells, structures.numbers, structures.pbc)


def _check(n: int, cell: np.ndarray, numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    check_positive_int(n, "n")
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3) or not abs(np.linalg.det(cell)) > 1e-9:
        raise InputError("cell: expected a non-singular (3, 3) cell")
    return cell, np.asarray(numbers, dtype=np.int64)
