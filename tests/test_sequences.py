"""Sequence preparation against a hand-built trajectory whose answer is known."""

import numpy as np
import pytest

from repap.data.sequences import atom_order, prepare, split, unwrap
from repap.data.trajectory import Trajectory

L = 10.0


def crossing_traj() -> Trajectory:
    """Three atoms in a 10 A cube; atom 2 rattles across the x = 0 face.

    Mean positions: atom 0 (5, 5, 5), |r| = 8.66; atom 1 (3, 0.5, 0.5), |r| = 3.08; atom 2
    unwrapped x alternates 9.9, 10.1 -> mean 10.0 -> folded to 0.0, (0, 1, 1), |r| = 1.41.
    Expected order: 2, 1, 0. Without unwrapping atom 2's mean x is 5.0 (|r| = 5.2): 1, 2, 0.
    """
    frames = []
    for f in range(8):
        x2 = 9.9 if f % 2 == 0 else 0.1  # wrapped positions, as a dump file would hold them
        frames.append([[5.0, 5.0, 5.0], [3.0, 0.5, 0.5], [x2, 1.0, 1.0]])
    return Trajectory(np.array(frames), np.eye(3) * L, [14, 14, 14])


def test_unwrap_makes_the_crossing_continuous():
    traj = crossing_traj()
    x2 = unwrap(traj)[:, 2, 0]
    np.testing.assert_allclose(x2, [9.9, 10.1] * 4, atol=1e-12)
    np.testing.assert_allclose(unwrap(traj)[:, :2], traj.positions[:, :2], atol=1e-12)


def test_order_by_mean_distance_uses_the_unwrapped_mean():
    traj = crossing_traj()
    np.testing.assert_array_equal(atom_order(traj), [2, 1, 0])
    np.testing.assert_array_equal(atom_order(traj, unwrap_first=False), [1, 2, 0])


def test_unwrap_in_a_skewed_cell(rng):
    cell = np.array([[8.0, 0.0, 0.0], [4.0, 7.0, 0.0], [1.0, 2.0, 9.0]])
    steps = rng.normal(0, 0.2, (50, 4, 3))
    true = rng.uniform(0, 8, (1, 4, 3)) + np.cumsum(steps, axis=0)  # a continuous walk
    frac = true @ np.linalg.inv(cell)
    wrapped = (frac % 1.0) @ cell  # what a file with wrapped coordinates holds
    traj = Trajectory(wrapped, cell, [14] * 4)
    back = unwrap(traj)
    # continuous again, and equal to the true walk up to one lattice translation per atom
    shift = (back - true) @ np.linalg.inv(cell)
    np.testing.assert_allclose(shift, np.round(shift[:1]).repeat(50, axis=0), atol=1e-9)


def test_prepare_gives_ordered_fractional_sequences():
    seqs = prepare(crossing_traj())
    assert seqs.frac.shape == (8, 3, 3) and seqs.flat().shape == (8, 9)
    assert seqs.frac.min() >= 0 and seqs.frac.max() < 1
    np.testing.assert_array_equal(seqs.order, [2, 1, 0])
    # sequence starts x, y, z of atom 2, then atom 1
    np.testing.assert_allclose(seqs.flat()[1, :6], [0.01, 0.1, 0.1, 0.3, 0.05, 0.05], atol=1e-12)


def test_to_trajectory_maps_back_to_the_source_order(rng):
    positions = rng.uniform(0, L, (5, 6, 3))
    numbers = np.array([14, 8, 14, 8, 14, 1])
    traj = Trajectory(positions, np.eye(3) * L, numbers)
    seqs = prepare(traj)
    assert not np.array_equal(seqs.order, np.arange(6))  # a real permutation is exercised
    back = seqs.to_trajectory()
    np.testing.assert_allclose(back.positions, positions, atol=1e-12)
    np.testing.assert_array_equal(back.numbers, numbers)
    flat = seqs.to_trajectory(seqs.flat())  # (F, 3N) input works too
    np.testing.assert_allclose(flat.positions, positions, atol=1e-12)


def test_order_options(rng):
    traj = Trajectory(rng.uniform(0, L, (3, 4, 3)), np.eye(3) * L, [14] * 4)
    np.testing.assert_array_equal(prepare(traj, order="none").order, np.arange(4))
    seqs = prepare(traj, order=np.array([3, 1, 0, 2]))
    np.testing.assert_allclose(seqs.frac[:, 0], traj.fractional()[:, 3])
    with pytest.raises(ValueError, match=r"^order: expected a permutation of 4 atoms$"):
        prepare(traj, order=np.array([0, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"^order: expected 'distance', 'none'"):
        prepare(traj, order="random")


def test_non_periodic_needs_atoms_inside_the_box():
    traj = Trajectory(
        np.array([[[1.0, 1.0, 1.0], [11.0, 1.0, 1.0]]]), np.eye(3) * L, [14, 14], pbc=False
    )
    with pytest.raises(ValueError, match=r"^frame 0: an atom lies outside the cell"):
        prepare(traj, order="none")
    inside = Trajectory(
        np.array([[[1.0, 1.0, 1.0], [9.0, 1.0, 1.0]]]), np.eye(3) * L, [14, 14], pbc=False
    )
    np.testing.assert_allclose(prepare(inside).frac[0], [[0.1, 0.1, 0.1], [0.9, 0.1, 0.1]])


def test_split_is_contiguous(rng):
    traj = Trajectory(rng.uniform(0, L, (100, 2, 3)), np.eye(3) * L, [14] * 2)
    seqs = prepare(traj)
    train, val, test = split(seqs, val=0.1, test=0.2)
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert (train.start, val.start, test.start) == (0, 70, 80)
    np.testing.assert_array_equal(np.concatenate([train.frac, val.frac, test.frac]), seqs.frac)
    with pytest.raises(ValueError, match=r"^val \+ test: expected less than 1"):
        split(seqs, val=0.5, test=0.5)
    with pytest.raises(ValueError, match=r"^test: expected a fraction in \[0, 1\)"):
        split(seqs, test=-0.1)
