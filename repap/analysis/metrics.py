"""Structure-quality metrics over ensembles: plain functions, batched over frames (Numba).

All take positions (F, N, 3) or (N, 3) in Angstrom with a cell (3, 3) or (F, 3, 3), or a
Trajectory. Distances are minimum-image; periodic images are enumerated when a cutoff exceeds
half a cell height, as in ``repap.rdf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from repap._checks import check_frames
from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.geometry import cartesian, image_reach, minimum_image

CUTOFF = 2.85  # A, the Si-Si bond: coordination, angles and defects everywhere in repap


def err_rdf(g: np.ndarray, g_ref: np.ndarray) -> float:
    """The RePAP poster's RDF error: sum over bins k (from 1) of (g_k - g_ref_k)^2 / k."""
    g, g_ref = np.asarray(g, dtype=np.float64), np.asarray(g_ref, dtype=np.float64)
    if g.shape != g_ref.shape or g.ndim != 1:
        raise InputError(
            f"g, g_ref: expected two 1-D arrays of one length, got {g.shape} and {g_ref.shape}"
        )
    k = np.arange(1, g.size + 1)
    return float(np.sum((g - g_ref) ** 2 / k))


def frames_of(positions, cell=None, pbc=True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions (F, N, 3), cells (F, 3, 3), pbc (3,)) from arrays or a Trajectory."""
    if isinstance(positions, Trajectory):
        return positions.positions, np.ascontiguousarray(positions.frame_cells()), positions.pbc
    pos, cells, periodic = check_frames(positions, cell, pbc)
    return pos, np.ascontiguousarray(np.broadcast_to(cells, (len(pos), 3, 3))), periodic


@dataclass
class Neighbours:
    """Neighbours within a cutoff: counts (F, N), vectors (F, N, K, 3) from each atom to its
    first counts[f, i] neighbours (the rest is padding), distances (F, N, K)."""

    counts: np.ndarray
    vectors: np.ndarray
    distances: np.ndarray


def neighbours(positions, cell=None, cutoff: float = CUTOFF, pbc=True) -> Neighbours:
    """Every neighbour of every atom within ``cutoff`` (periodic images included)."""
    pos, cells, periodic = frames_of(positions, cell, pbc)
    if not (isinstance(cutoff, int | float) and math.isfinite(cutoff) and cutoff > 0):
        raise InputError(f"cutoff: expected a positive number, got {cutoff!r}")
    frac = pos @ np.linalg.inv(cells)
    reach = image_reach(cells, periodic, cutoff)
    slots = 8
    while True:  # grow the per-atom slots until every neighbour fits (rarely more than once)
        counts, vectors = _neighbour_kernel(frac, cells, periodic, reach, float(cutoff), slots)
        if counts.max(initial=0) <= slots:
            break
        slots = int(counts.max())
    return Neighbours(counts, vectors, np.linalg.norm(vectors, axis=-1))


@numba.njit(cache=True, parallel=True)
def _neighbour_kernel(frac, cells, periodic, reach, cutoff, slots):
    n_frames, n_atoms = frac.shape[0], frac.shape[1]
    counts = np.zeros((n_frames, n_atoms), dtype=np.int64)
    vectors = np.zeros((n_frames, n_atoms, slots, 3))
    c2 = cutoff * cutoff
    for f in numba.prange(n_frames):
        h = cells[f]
        for i in range(n_atoms):
            for j in range(n_atoms):
                s0 = frac[f, j, 0] - frac[f, i, 0]
                s1 = frac[f, j, 1] - frac[f, i, 1]
                s2 = frac[f, j, 2] - frac[f, i, 2]
                s0, s1, s2 = minimum_image(s0, s1, s2, periodic)
                for a in range(-reach[f, 0], reach[f, 0] + 1):
                    for b in range(-reach[f, 1], reach[f, 1] + 1):
                        for e in range(-reach[f, 2], reach[f, 2] + 1):
                            if i == j and a == 0 and b == 0 and e == 0:
                                continue
                            t0, t1, t2 = s0 + a, s1 + b, s2 + e
                            x, y, z = cartesian(t0, t1, t2, h)
                            if x * x + y * y + z * z < c2:
                                k = counts[f, i]
                                if k < slots:
                                    vectors[f, i, k, 0] = x
                                    vectors[f, i, k, 1] = y
                                    vectors[f, i, k, 2] = z
                                counts[f, i] = k + 1
    return counts, vectors


def coordination(positions, cell=None, cutoff: float = CUTOFF, pbc=True) -> np.ndarray:
    """Neighbours of each atom within ``cutoff``, (F, N) integers."""
    return neighbours(positions, cell, cutoff, pbc).counts


def coordination_summary(counts: np.ndarray) -> dict[str, object]:
    """Mean, the fraction of four-fold atoms and the histogram {n: fraction of atoms}."""
    counts = np.asarray(counts)
    values, freq = np.unique(counts, return_counts=True)
    return {
        "mean": float(counts.mean()),
        "fourfold": float((counts == 4).mean()),
        "histogram": {int(v): float(c / counts.size) for v, c in zip(values, freq, strict=True)},
    }


def bond_angles(positions, cell=None, cutoff: float = CUTOFF, pbc=True) -> np.ndarray:
    """Every angle j-i-k (degrees) between two neighbours j < k of an atom i, flattened."""
    return coordination_and_angles(positions, cell, cutoff, pbc)[1]


def diamond_like_fraction(positions, cell=None, cutoff: float = CUTOFF, tolerance: float = 7.0,
                          pbc=True) -> np.ndarray:  # fmt: skip
    """Per frame (F,), the fraction of atoms in a diamond-like environment: exactly four
    neighbours within ``cutoff`` with all six bond angles within ``tolerance`` degrees of the
    tetrahedral angle, and the same for each of the four. Crystalline Si: 1; amorphous
    networks: at most 0.05 (measured on the shipped 64- and 216-atom sets), as a single
    tetrahedral atom is common there but a tetrahedral atom among tetrahedral ones is not;
    a crystal grain raises it. Needs ``cutoff`` below half of every periodic cell height."""
    from repap.geometry import cell_heights

    pos, cells, periodic = frames_of(positions, cell, pbc)
    if np.any(periodic & (cell_heights(cells) <= 2 * cutoff)):
        raise InputError(f"cutoff: {cutoff} A is half a cell height or more: images would count")
    n = pos.shape[1]
    out = np.empty(len(pos))
    tetra = math.degrees(math.acos(-1.0 / 3.0))
    for f in range(len(pos)):
        inv = np.linalg.inv(cells[f])
        d = (pos[f][None] - pos[f][:, None]) @ inv  # d[i, j]: from i to j, fractional
        d -= np.where(periodic, np.round(d), 0.0)
        d = d @ cells[f]
        bonded = (np.linalg.norm(d, axis=-1) < cutoff) & ~np.eye(n, dtype=bool)
        good = bonded.sum(1) == 4
        for i in np.flatnonzero(good):
            u = d[i, bonded[i]]
            u /= np.linalg.norm(u, axis=1)[:, None]
            cos = np.clip((u @ u.T)[np.triu_indices(4, 1)], -1.0, 1.0)
            good[i] = np.all(np.abs(np.degrees(np.arccos(cos)) - tetra) < tolerance)
        among = good & np.array([good[bonded[i]].all() for i in range(n)])
        out[f] = among.mean()
    return out


def coordination_and_angles(
    positions, cell=None, cutoff: float = CUTOFF, pbc=True, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Coordination (F, N) and all bond angles (degrees), ``chunk`` frames at a time so that
    the neighbour vectors of a long trajectory never sit in memory at once."""
    pos, cells, periodic = frames_of(positions, cell, pbc)
    counts, angles = [], []
    for start in range(0, len(pos), chunk):
        nb = neighbours(pos[start : start + chunk], cells[start : start + chunk], cutoff, periodic)
        counts.append(nb.counts)
        angles.append(_angles(nb))
    return np.concatenate(counts), np.concatenate(angles)


def _angles(nb: Neighbours) -> np.ndarray:
    k = nb.vectors.shape[2]
    valid = np.arange(k) < nb.counts[..., None]  # (F, N, K)
    unit = np.divide(
        nb.vectors, nb.distances[..., None], out=np.zeros_like(nb.vectors), where=valid[..., None]
    )
    cos = np.einsum("fnad,fnbd->fnab", unit, unit)
    a, b = np.triu_indices(k, 1)
    keep = valid[..., a] & valid[..., b]
    return np.degrees(np.arccos(np.clip(cos[..., a, b][keep], -1.0, 1.0)))


def close_pairs(positions, cell=None, threshold: float = 2.0, pbc=True) -> dict[str, object]:
    """Closest approach per structure and how often atoms come closer than ``threshold``.

    Returns min_distance (F,): the smallest minimum-image distance of a pair i < j (searched
    over the 27 images around the folded vector, exact for any reasonably shaped cell);
    fraction_pairs: pairs i < j closer than threshold over all pairs; fraction_structures:
    structures with at least one such pair.
    """
    pos, cells, periodic = frames_of(positions, cell, pbc)
    frac = pos @ np.linalg.inv(cells)
    dmin, below = _close_pair_kernel(frac, cells, periodic, float(threshold))
    n_atoms = pos.shape[1]
    return {
        "min_distance": dmin,
        "fraction_pairs": float(below.sum() / (len(pos) * n_atoms * (n_atoms - 1) / 2)),
        "fraction_structures": float((below > 0).mean()),
    }


@numba.njit(cache=True, parallel=True)
def _close_pair_kernel(frac, cells, periodic, threshold):
    n_frames, n_atoms = frac.shape[0], frac.shape[1]
    dmin = np.empty(n_frames)
    below = np.zeros(n_frames, dtype=np.int64)
    reach = np.empty(3, dtype=np.int64)
    for d in range(3):
        reach[d] = 1 if periodic[d] else 0
    for f in numba.prange(n_frames):
        h = cells[f]
        best_frame = np.inf
        for i in range(n_atoms):
            for j in range(i + 1, n_atoms):
                s0 = frac[f, j, 0] - frac[f, i, 0]
                s1 = frac[f, j, 1] - frac[f, i, 1]
                s2 = frac[f, j, 2] - frac[f, i, 2]
                s0, s1, s2 = minimum_image(s0, s1, s2, periodic)
                best = np.inf
                for a in range(-reach[0], reach[0] + 1):
                    for b in range(-reach[1], reach[1] + 1):
                        for e in range(-reach[2], reach[2] + 1):
                            t0, t1, t2 = s0 + a, s1 + b, s2 + e
                            x, y, z = cartesian(t0, t1, t2, h)
                            best = min(best, x * x + y * y + z * z)
                d_ij = math.sqrt(best)
                best_frame = min(best_frame, d_ij)
                if d_ij < threshold:
                    below[f] += 1
        dmin[f] = best_frame
    return dmin, below


def novelty(generated, training, stride: int = 1) -> np.ndarray:
    """For each generated structure, the smallest RMSD (A) to any training frame (every
    ``stride``-th), atom i against atom i, minimum image in the training cell, no alignment:
    RePAP structures live in the training frame's atom order and origin, so a copy of a
    training frame scores ~0."""
    gen, _, _ = frames_of(generated)
    train, cells_t, periodic = frames_of(training)
    if gen.shape[1:] != train.shape[1:]:
        raise InputError(
            f"generated, training: atom counts differ ({gen.shape[1]} and {train.shape[1]})"
        )
    cell = cells_t[0]
    inv = np.linalg.inv(cell)
    return _novelty_kernel(gen @ inv, train[::stride] @ inv, cell, periodic)


@numba.njit(cache=True, parallel=True)
def _novelty_kernel(gen, train, cell, periodic):
    n_gen, n_atoms = gen.shape[0], gen.shape[1]
    out = np.empty(n_gen)
    for g in numba.prange(n_gen):
        best = np.inf
        for t in range(train.shape[0]):
            total = 0.0
            for i in range(n_atoms):
                s0 = gen[g, i, 0] - train[t, i, 0]
                s1 = gen[g, i, 1] - train[t, i, 1]
                s2 = gen[g, i, 2] - train[t, i, 2]
                s0, s1, s2 = minimum_image(s0, s1, s2, periodic)
                x, y, z = cartesian(s0, s1, s2, cell)
                total += x * x + y * y + z * z
                if total >= best:  # this frame can no longer win
                    break
            if total < best:
                best = total
        out[g] = math.sqrt(best / n_atoms)
    return out
