"""Network fingerprints (sorted minimum-image pair distances) of 100 216-atom inherent
structures: repap's orthorhombic path (per-axis rounding) beside ASE's general minimum-image
search, the path repap took before and still takes for skewed cells. Same output (checked).
Run: ``.venv/bin/pytest bench/bench_fingerprints.py``."""

import numpy as np
import pytest
from ase.geometry import get_distances

import repap
from repap.analysis.networks import fingerprints

N = 100


@pytest.fixture(scope="module")
def structures():
    nets = repap.reference_set(atoms=216).inherent_structures()
    return repap.Trajectory(nets.positions[np.arange(N) % len(nets)], nets.cell, nets.numbers)


def ase_fingerprints(traj):
    upper = np.triu_indices(traj.n_atoms, 1)
    return np.stack([np.sort(get_distances(p, cell=traj.cell, pbc=True)[1][upper])
                     for p in traj.positions])  # fmt: skip


def test_repap_orthorhombic(benchmark, structures):
    got = benchmark(fingerprints, structures)
    np.testing.assert_allclose(got, ase_fingerprints(structures), atol=1e-10)


def test_ase_general(benchmark, structures):
    benchmark.pedantic(ase_fingerprints, args=(structures,), rounds=3, iterations=1)
