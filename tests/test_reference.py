"""The shipped a-Si reference data: loads without LAMMPS, and is sensible amorphous Si.

Structure targets from the issue: first RDF peak 2.30-2.40 A, mean coordination (2.85 A
cutoff) 3.85-4.10, mean bond angle 107-111 degrees. Checked with the plain numpy references in
tests/reference.py on every 50th frame (every 100th for the angles).
"""

import numpy as np
import pytest
from reference import bond_angles_cubic, coordination_cubic, first_peak_cubic

import repap


@pytest.fixture(scope="module", params=[False, True], ids=["train", "heldout"])
def ref(request):
    return repap.reference(heldout=request.param)


def test_shapes_and_metadata(ref):
    n = 5000 if ref.info["simulate"]["seed"] == 2 else 40_000
    assert ref.positions.shape == (n, 30, 3)
    assert ref.energy.shape == (n,)
    assert ref.info["simulate"]["potential"] == "vink"
    assert ref.cell[0, 0] == pytest.approx(8.4366, abs=1e-4)


def test_structure_is_amorphous_silicon(ref):
    length = ref.cell[0, 0]
    frames = ref.positions[::50]
    assert 2.30 <= first_peak_cubic(frames, length) <= 2.40
    assert 3.85 <= coordination_cubic(frames, length, 2.85).mean() <= 4.10
    assert 107 <= bond_angles_cubic(frames[::2], length, 2.85).mean() <= 111


def test_energy_per_atom_is_a_glass_at_300k(ref):
    e = ref.energy / ref.n_atoms
    # Vink SW: diamond is -3.297 eV/atom; a-Si at 300 K sits ~0.25 eV above, with small spread
    assert -3.2 < e.mean() < -2.9 and e.std() < 0.02
    # stored energies belong to the stored (rounded) positions to within the rounding
    np.testing.assert_allclose(repap.energy(ref[::2000]), e[::2000], atol=2e-3)


def test_heldout_is_another_network():
    train, heldout = repap.reference(), repap.reference(heldout=True)
    length = train.cell[0, 0]
    # atoms at 300 K stay on their sites: the sites of the two runs must not coincide
    sites_a = train.positions.mean(axis=0)
    sites_b = heldout.positions.mean(axis=0)
    d = sites_a[:, None] - sites_b[None]
    d -= length * np.round(d / length)
    nearest = np.linalg.norm(d, axis=-1).min(axis=1)
    assert np.median(nearest) > 0.3


@pytest.mark.parametrize("atoms, train_min, heldout_min", [(64, 100, 20), (216, 30, 7)])
def test_shipped_network_set_is_split_by_network(atoms, train_min, heldout_min):
    """Every network distinct, training and held-out networks disjoint (independent check:
    sorted pair distances of the inherent structures) and no held-out network a near-copy of
    a training one (its nearest matches under 90 % of atoms, closeness's own search, not the
    pair search that made the families), a-Si quality, the frames of each network relax back
    to its inherent structure."""
    from repap.analysis.closeness import closeness
    from repap.analysis.networks import TOLERANCE, distance, fingerprints
    from repap.sim.relaxation import relax

    nets = repap.reference_set(atoms=atoms)
    assert nets.n_atoms == atoms
    assert (~nets.heldout).sum() >= train_min and nets.heldout.sum() >= heldout_min
    assert nets.heldout.any() and not nets.heldout.all()
    assert np.all(nets.seeds[nets.heldout] % 5 == 0)
    for f in np.unique(nets.family):  # a family lies on one side
        assert len(set(nets.heldout[nets.family == f].tolist())) == 1
    near = closeness(nets.inherent_structures("heldout"), nets.inherent_structures("train"))
    assert near.atoms.max() < 0.9
    prints = fingerprints(nets.inherent_structures())
    gaps = np.array([distance(prints[:k], prints[k]).min() for k in range(1, len(prints))])
    assert gaps.min() > 5 * TOLERANCE  # distinct, hence train and held-out disjoint
    assert np.bincount(nets.network).min() == 200
    assert -3.2 < nets.inherent_energy.mean() < -3.0
    from repap.analysis.metrics import diamond_like_fraction

    assert diamond_like_fraction(nets.inherent, nets.cell).max() <= 0.05  # no crystal grain
    for k in (0, nets.n_networks - 1):  # its frames relax into its inherent structure (one
        # of those the build relaxed was it; in some runs the network changed at 300 K)
        relaxed = relax(nets.system(k)[::20], progress=False).structures
        assert distance(fingerprints(relaxed), prints[k]).min() < TOLERANCE
    train = repap.reference_set("train", atoms=atoms)
    held = repap.reference_set("heldout", atoms=atoms)
    assert train.n_networks + held.n_networks == nets.n_networks


def test_reference_set_refuses_an_unshipped_size():
    with pytest.raises(repap.InputError, match="atoms: expected one of"):
        repap.reference_set(atoms=100)
