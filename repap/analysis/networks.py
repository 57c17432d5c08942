"""Network identity: are two relaxed structures the same network, and how many distinct
networks does an ensemble hold?

Two inherent structures are the same network when one maps onto the other by a translation,
a relabelling of the atoms and a symmetry operation of the (shared) cell. All of these keep
the set of minimum-image pair distances, so the fingerprint of a structure is its sorted
minimum-image pair distances (N (N - 1) / 2 numbers) and the distance between two structures
is the largest difference between their fingerprints (Angstrom). It is zero for copies of
one network and grows with any change of the network's geometry; comparing by it needs no
alignment, so it cannot be fooled by arbitrary labels or origin (atom-i-to-atom-i RMSD
calls one network 4 A away from itself).

The tolerance ``TOLERANCE`` (0.01 A) sits between what was measured (docs/guide.md, "Network
identity"): the 5,000 thermal frames of one 30-atom run relaxed to fmax 1e-3 eV/A lie within
5.3e-4 A of each other; distinct networks lie 0.15 A (30 atoms) and 0.25 A (64 atoms) or more
apart. A looser ``fmax`` widens the first gap: relax to 1e-3 eV/A or below before comparing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from repap.data.trajectory import Trajectory
from repap.errors import InputError

TOLERANCE = 0.01  # Angstrom; see the module doc


def fingerprints(traj: Trajectory) -> np.ndarray:
    """Sorted minimum-image pair distances (F, N (N - 1) / 2) of every structure, A."""
    from ase.geometry import get_distances

    n = traj.n_atoms
    upper = np.triu_indices(n, 1)
    cells = traj.frame_cells()
    out = np.empty((len(traj), len(upper[0])))
    for f in range(len(traj)):
        if traj.pbc.all() and np.count_nonzero(cells[f] - np.diag(np.diag(cells[f]))) == 0:
            # An orthorhombic periodic cell: rounding each axis is the minimum image, and
            # ~18x faster than ASE's general search (bench/bench_fingerprints.py).
            out[f] = sorted_pair_distances(traj.positions[f], np.diag(cells[f]))
            continue
        _, d = get_distances(traj.positions[f], cell=cells[f], pbc=traj.pbc)
        out[f] = np.sort(d[upper])
    return out


def sorted_pair_distances(positions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sorted minimum-image pair distances of positions (..., N, 3) in a periodic
    orthorhombic cell of edges ``lengths``: rounding each axis is the minimum image."""
    n = positions.shape[-2]
    upper = np.triu_indices(n, 1)
    d = positions[..., upper[1], :] - positions[..., upper[0], :]
    d -= lengths * np.round(d / lengths)
    return np.sort(np.sqrt(np.einsum("...ij,...ij->...i", d, d)), axis=-1)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest difference between fingerprints: a (P,) or (K, P) against b (P,), A."""
    return np.abs(np.asarray(a) - np.asarray(b)).max(axis=-1)


@dataclass
class Networks:
    """Distinct networks of an ensemble: ``labels[i]`` is the network of structure i
    (0 .. n-1, numbered in order of first appearance); ``representatives[k]`` the index of
    the first structure of network k; ``counts[k]`` how many structures it holds;
    ``energy[k]`` the representative's energy per atom where energies were given."""

    labels: np.ndarray
    representatives: np.ndarray
    counts: np.ndarray
    fingerprints: np.ndarray  # (n, P) of the representatives
    energy: np.ndarray | None
    tolerance: float

    def __len__(self) -> int:
        return len(self.representatives)

    def __repr__(self) -> str:  # one line, not the arrays
        return f"Networks({len(self)} distinct among {len(self.labels)} structures)"

    def summary(self) -> dict[str, Any]:
        total = len(self.labels)
        return {
            "structures": total,
            "networks": len(self),
            "unique_fraction": len(self) / total if total else 0.0,
            "largest_network": int(self.counts.max()) if len(self) else 0,
            "tolerance_A": self.tolerance,
        }

    def nearest(self, other: Trajectory | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each structure of ``other`` (or fingerprints), the closest network of this set
        and the distance to it (A; the fingerprint distance of the module doc). How far a
        new network is from every known one: a structure one bond switch away from a
        training network is new by ``match`` but close by this."""
        prints = other if isinstance(other, np.ndarray) else fingerprints(other)
        index = np.full(len(prints), -1, dtype=np.int64)
        dist = np.full(len(prints), np.inf)
        if not len(self):
            return index, dist
        if prints.shape[1] != self.fingerprints.shape[1]:
            raise InputError(
                "other: structures of another atom count than these networks' cannot be "
                "compared with them (novelty against them would be 1 by construction)"
            )
        for i, p in enumerate(prints):
            d = distance(self.fingerprints, p)
            index[i] = np.argmin(d)
            dist[i] = d[index[i]]
        return index, dist

    def match(self, other: Trajectory | np.ndarray) -> np.ndarray:
        """For each structure of ``other`` (or fingerprints), the network of this set it
        belongs to, or -1 for none (a novel network)."""
        index, dist = self.nearest(other)
        return np.where(dist <= self.tolerance, index, -1)


def group(traj: Trajectory, tolerance: float = TOLERANCE) -> Networks:
    """Group relaxed structures into distinct networks (see the module doc). Structures are
    compared with every network found so far; a structure within ``tolerance`` of one joins
    the closest, otherwise it starts a new network."""
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"tolerance: expected a positive distance in Angstrom, got {tolerance}")
    prints = fingerprints(traj)
    labels = np.empty(len(traj), dtype=np.int64)
    reps: list[int] = []
    for i, p in enumerate(prints):
        if reps:
            d = distance(prints[reps], p)
            k = int(np.argmin(d))
            if d[k] <= tolerance:
                labels[i] = k
                continue
        labels[i] = len(reps)
        reps.append(i)
    rep = np.asarray(reps, dtype=np.int64)
    energy = None if traj.energy is None else traj.energy[rep] / traj.n_atoms
    counts = np.bincount(labels, minlength=len(rep))
    return Networks(labels, rep, counts, prints[rep], energy, float(tolerance))


def same_network(a: Trajectory, b: Trajectory, tolerance: float = TOLERANCE) -> np.ndarray:
    """Whether structure i of ``a`` is the same network as structure i of ``b`` (relaxed)."""
    if len(a) != len(b):
        raise InputError(f"a, b: expected as many structures, got {len(a)} and {len(b)}")
    if a.n_atoms != b.n_atoms:
        return np.zeros(len(a), bool)
    return distance(fingerprints(a), fingerprints(b)) <= tolerance
