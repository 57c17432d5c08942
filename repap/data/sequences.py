"""From a trajectory to the coordinate sequences RePAP learns: unwrap, order atoms, fractional.

As in the RePAP paper, atoms are ordered by the distance of their mean position to the origin,
so that sequence position k means roughly the same site in every frame, and each frame becomes
the sequence x0, y0, z0, x1, ... of fractional coordinates in [0, 1). The permutation is kept
so that generated structures map back to the original atom order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from repap.data.trajectory import Trajectory
from repap.errors import InputError


@dataclass
class Sequences:
    """Frames as fractional coordinates in sequence order.

    frac: (F, N, 3), wrapped into [0, 1) on periodic axes. order: (N,) permutation, sequence
    position k holds atom ``order[k]`` of the source trajectory. cell, numbers (in sequence
    order) and pbc describe the frames; ``start`` is the index of frame 0 in the source.
    """

    frac: np.ndarray
    order: np.ndarray
    cell: np.ndarray
    numbers: np.ndarray
    pbc: np.ndarray
    start: int = 0

    def __repr__(self) -> str:  # one line, not the arrays
        return f"Sequences({self.frac.shape[0]} frames of {self.frac.shape[1]} atoms)"

    def __len__(self) -> int:
        return self.frac.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.frac.shape[1]

    def flat(self) -> np.ndarray:
        """(F, 3N) sequences x0, y0, z0, x1, ... (a view)."""
        return self.frac.reshape(len(self), -1)

    def __getitem__(self, index: slice) -> Sequences:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("Sequences take contiguous slices only")
        lo, _, _ = index.indices(len(self))
        cell = self.cell[index] if self.cell.ndim == 3 else self.cell
        return Sequences(
            self.frac[index], self.order, cell, self.numbers, self.pbc, self.start + lo
        )

    def to_trajectory(
        self, frac: np.ndarray | None = None, cell: np.ndarray | None = None
    ) -> Trajectory:
        """Structures in sequence order (default: these frames) back in the source's atom
        order, as Cartesian positions in ``cell`` (default: this cell)."""
        frac = self.frac if frac is None else np.asarray(frac, dtype=np.float64)
        if frac.ndim == 2:
            frac = frac.reshape(frac.shape[0], -1, 3)
        if frac.shape[1:] != (self.n_atoms, 3):
            raise InputError(
                f"frac: expected shape (F, {self.n_atoms}, 3) or "
                f"(F, {3 * self.n_atoms}), got {frac.shape}"
            )
        cell = self.cell if cell is None else np.asarray(cell, dtype=np.float64)
        inverse = np.argsort(self.order)
        original = frac[:, inverse]
        positions = original @ cell
        return Trajectory(positions, cell, self.numbers[inverse], self.pbc)


def unwrap(traj: Trajectory) -> np.ndarray:
    """Positions (F, N, 3) made continuous in time: an atom crossing a periodic face keeps
    going instead of jumping to the other side. Assumes atoms move less than half a cell
    between frames; works in fractional coordinates, so any cell shape (and a cell that
    changes between frames) is handled."""
    frac = traj.fractional(wrap=False)
    step = np.diff(frac, axis=0)
    step[..., traj.pbc] -= np.round(step[..., traj.pbc])
    frac[1:] = frac[0] + np.cumsum(step, axis=0)
    return frac @ traj.cell


def atom_order(traj: Trajectory, unwrap_first: bool = True) -> np.ndarray:
    """Atoms sorted by the distance of their mean position to the origin (stable sort).

    The mean is taken over the unwrapped trajectory (``unwrap_first``), folded back into the
    cell on periodic axes, and measured in Cartesian coordinates of the mean cell.
    """
    positions = unwrap(traj) if unwrap_first else traj.positions
    cell = traj.frame_cells().mean(axis=0)
    mean_frac = positions.mean(axis=0) @ np.linalg.inv(cell) if traj.pbc.any() else None
    if mean_frac is None:
        mean = positions.mean(axis=0)
    else:
        mean_frac[:, traj.pbc] %= 1.0
        mean = mean_frac @ cell
    return np.argsort(np.linalg.norm(mean, axis=1), kind="stable")


def prepare(
    traj: Trajectory, order: str | np.ndarray = "distance", unwrap_first: bool = True
) -> Sequences:
    """Sequences of a trajectory: atoms ordered (``"distance"`` as in the paper, ``"none"`` to
    keep the file's order, or an explicit permutation such as a trained model's), fractional
    coordinates wrapped into [0, 1) on periodic axes. On non-periodic axes the cell is the box:
    coordinates must lie inside it."""
    if (
        getattr(traj, "n_networks", 1) > 1
    ):  # a repap.sim.reference_sets.NetworkSet: atom order per network
        raise InputError(
            f"trajectory: holds {traj.n_networks} networks, each with its own atom order; "
            "prepare one network at a time (set.system(k))"
        )
    if isinstance(order, str):
        if order == "distance":
            perm = atom_order(traj, unwrap_first)
        elif order == "none":
            perm = np.arange(traj.n_atoms)
        else:
            raise InputError(f"order: expected 'distance', 'none' or a permutation, got {order!r}")
    else:
        perm = np.asarray(order)
        if perm.shape != (traj.n_atoms,) or not np.array_equal(
            np.sort(perm), np.arange(traj.n_atoms)
        ):
            raise InputError(f"order: expected a permutation of {traj.n_atoms} atoms")
    frac = traj.fractional(wrap=True)[:, perm]
    open_axes = ~traj.pbc
    if open_axes.any():
        outside = ((frac[..., open_axes] < 0) | (frac[..., open_axes] >= 1)).any(axis=(1, 2))
        if outside.any():
            raise InputError(
                f"frame {int(np.argmax(outside))}: an atom lies outside the cell "
                "on a non-periodic axis (the cell is the box there)"
            )
    return Sequences(frac, perm, traj.cell, traj.numbers[perm], traj.pbc)


def split(
    seqs: Sequences, val: float = 0.1, test: float = 0.1
) -> tuple[Sequences, Sequences, Sequences]:
    """Contiguous train / validation / test blocks, in that order of time. Neighbouring frames
    of an MD run are correlated, so shuffled splits would leak the validation set."""
    for name, value in (("val", val), ("test", test)):
        if not 0 <= value < 1:
            raise InputError(f"{name}: expected a fraction in [0, 1), got {value}")
    if val + test >= 1:
        raise InputError(f"val + test: expected less than 1, got {val + test}")
    n = len(seqs)
    n_test = round(n * test)
    n_val = round(n * val)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise InputError(f"split: {n} frames leave no training frame")
    return seqs[:n_train], seqs[n_train : n_train + n_val], seqs[n_train + n_val :]


@dataclass
class NetworkSequences:
    """Sequences of many networks (a :class:`~repap.data.trajectory.NetworkSet`), each
    network's atoms ordered by the paper's rule within that network, stacked: ``seqs.frac``
    (F, N, 3) in sequence order (``seqs.order`` is the identity: positions across networks
    share no atom identity); ``network[f]`` is the set's network of row f and ``copy[f]``
    its augmentation (0: the frames as simulated)."""

    seqs: Sequences
    network: np.ndarray
    copy: np.ndarray


def prepare_networks(
    nset: Trajectory,
    networks: np.ndarray | None = None,
    augment: int = 0,
    seed: int = 0,
    frames: int | None = None,
) -> NetworkSequences:
    """Sequences of the networks ``networks`` (default: all) of a network set, atoms ordered
    within each network. ``augment`` > 0 adds that many copies of each network, each under a
    random symmetry operation of the lattice and a random origin shift applied before the
    ordering (:mod:`repap.data.augment`): the same distances, another ordering. ``frames`` keeps the
    first frames of each network."""
    from repap.data.augment import draws, transform

    if not hasattr(nset, "network"):
        raise InputError("trajectory: not a network set (repap dataset writes one)")
    if isinstance(augment, bool) or not isinstance(augment, (int, np.integer)) or augment < 0:
        raise InputError(f"augment: expected 0 or more copies per network, got {augment!r}")
    if augment and not np.all(nset.pbc):
        raise InputError("augment: needs a cell periodic on every axis")
    ids = np.arange(nset.n_networks) if networks is None else np.asarray(networks, dtype=int)
    rng = np.random.default_rng(seed)
    cell = np.asarray(nset.cell, dtype=np.float64)
    if cell.ndim != 2:
        raise InputError("trajectory: network sets with a changing cell are not supported")
    parts, net_of, copy_of, numbers = [], [], [], None
    for k in ids:
        system = nset.system(int(k))
        if frames is not None:
            system = system[:frames]
        base = system.fractional(wrap=False)
        for c, (op, shift) in enumerate([(np.eye(3), np.zeros(3)), *draws(augment, cell, rng)]):
            moved = system if c == 0 else Trajectory(
                transform(base, op, shift) @ cell, cell, system.numbers, system.pbc
            )  # fmt: skip
            seq = prepare(moved)
            if numbers is None:
                numbers = seq.numbers
            elif not np.array_equal(seq.numbers, numbers):
                raise InputError(
                    f"network {int(k)}: its ordering puts other elements at some sequence "
                    "positions than the first network's; one model needs one composition order"
                )
            parts.append(seq.frac)
            net_of.append(np.full(len(seq), k))
            copy_of.append(np.full(len(seq), c))
    if not parts:
        raise InputError("networks: none selected")
    frac = np.concatenate(parts)
    seqs = Sequences(frac, np.arange(frac.shape[1]), cell, numbers, np.asarray(nset.pbc))
    return NetworkSequences(seqs, np.concatenate(net_of), np.concatenate(copy_of))
