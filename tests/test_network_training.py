"""Training across networks: augmentations keep every distance, the split by network never
lets a held-out network in, and a model trained on many networks makes more than one."""

import numpy as np
import pytest
from ase import Atoms

import repap
from repap.data.augment import lattice_symmetries, transform
from repap.data.sequences import prepare_networks
from repap.model.config import ModelConfig, TrainConfig
from repap.sim.reference_sets import NetworkSet
from repap.training.loop import _split_networks


def mic_distances(frac, cell):
    """Sorted minimum-image pair distances, by ASE (an independent computation)."""
    atoms = Atoms("Si" * len(frac), scaled_positions=frac % 1.0, cell=cell, pbc=True)
    d = atoms.get_all_distances(mic=True)
    return np.sort(d[np.triu_indices(len(frac), 1)])


@pytest.mark.parametrize(
    "cell, count",
    [(np.eye(3) * 10.0, 48), (np.diag([9.0, 9.0, 11.0]), 16),
     (np.array([[7.0, 0, 0], [2.5, 6.8, 0], [1.5, -2.0, 6.6]]), 2)],
)  # fmt: skip
def test_lattice_symmetries_keep_every_distance(cell, count, rng):
    ops = lattice_symmetries(cell)
    assert len(ops) == count  # cubic 48, tetragonal 16, triclinic: identity and inversion
    np.testing.assert_array_equal(ops[0], np.eye(3))
    frac = rng.random((12, 3))
    for op in ops:
        moved = transform(frac, op, rng.random(3))
        assert moved.min() >= 0 and moved.max() < 1
        np.testing.assert_allclose(mic_distances(moved, cell), mic_distances(frac, cell),
                                   atol=1e-9)  # fmt: skip


def test_augmented_orderings_are_the_same_frames():
    """Every augmented copy of a network's frame holds the same atoms at the same distances,
    in another order."""
    nset = repap.reference_set()
    ns = prepare_networks(nset, [3], augment=3, seed=1, frames=2)
    assert ns.seqs.frac.shape == (8, 64, 3) and sorted(set(ns.copy)) == [0, 1, 2, 3]
    cell = nset.cell
    for f in (0, 1):
        rows = np.flatnonzero(ns.copy == 0)[f], *np.flatnonzero(ns.copy > 0)[f::2]
        want = mic_distances(ns.seqs.frac[rows[0]], cell)
        for r in rows[1:]:
            np.testing.assert_allclose(mic_distances(ns.seqs.frac[r], cell), want, atol=1e-9)
            assert not np.allclose(ns.seqs.frac[r], ns.seqs.frac[rows[0]])  # another ordering


def test_split_by_network_never_leaks_a_heldout_network():
    nset = repap.reference_set()
    config = TrainConfig(val=0.1, augment=1, frames=3, seed=5)
    seqs, n_fit, info = _split_networks(nset, config, "set")
    fit, val = set(info["networks_fit"]), set(info["networks_val"])
    heldout = set(np.flatnonzero(nset.heldout).tolist())
    assert fit and val and not fit & val and not (fit | val) & heldout
    assert len(fit | val) == nset.n_networks - len(heldout)
    assert n_fit == len(fit) * 3 * 2 and len(seqs) == n_fit + len(val) * 3
    # the fitted rows are the fit networks' frames (their copies hold the same distances)
    first = prepare_networks(nset, [min(fit)], 0, frames=3).seqs.frac
    np.testing.assert_array_equal(seqs.frac[:3], first)


def toy_networks(n_networks=6, frames=80, seed=6):  # seed 6: networks >= 1.2 A apart
    """Networks of 4 atoms in a 12 A cubic cell with 0.05 A noise: in network k the atom
    nearest the origin sits at x = 0.8 + 1.5 k A, the other three at random sites far from
    the origin (beyond 11 A), so the sequences of the networks part at their first coordinate."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 12.0
    sites = np.concatenate(
        [np.stack([[0.8 + 1.5 * k, 0.8, 0.8] for k in range(n_networks)])[:, None],
         6.5 + 5.0 * rng.random((n_networks, 3, 3))], axis=1,
    )  # fmt: skip
    pos = sites.repeat(frames, 0) + rng.normal(0, 0.05, (n_networks * frames, 4, 3))
    return NetworkSet(
        pos, cell, np.full(4, 14), np.ones(3, bool), None, {},
        network=np.arange(n_networks).repeat(frames), inherent=sites,
        inherent_energy=np.zeros(n_networks), heldout=np.arange(n_networks) == n_networks - 1,
        seeds=np.arange(n_networks),
    )  # fmt: skip


def networks_made(model, nset, n=300):
    """Which of the set's networks the generated structures are (pair distances within 0.4 A
    of one network's: noise, 0.1 A bins), by an independent distance computation."""
    ens = model.sample(n, seed=1, min_dist=None, temperature=0.5)
    fingerprints = [mic_distances(s / 12.0, nset.cell) for s in nset.inherent]
    found = set()
    for frac in ens.positions / 12.0:
        d = mic_distances(frac, nset.cell)
        gaps = [np.abs(d - fp).max() for fp in fingerprints]
        if min(gaps) < 0.4:  # the nearest network, when it is near
            found.add(int(np.argmin(gaps)))
    return found


def test_a_model_of_many_networks_makes_more_than_one(tmp_path):
    """Trained across networks, a model makes several of the networks it was fitted on (and
    none it was not); trained on one network, only that one. These random toy networks share
    no local rules, so the validation network only gets worse as the fitted ones are learnt
    and the best-validation model is the first epoch's: the last epoch's checkpoint is used."""
    nset = toy_networks()
    config = TrainConfig(
        model=ModelConfig(n_bins=120, sigma=0.1, hidden=64, dropout=0.0, output="softmax"),
        epochs=60, batch_size=16, lr=5e-3, optimizer="adam", val=0.2, patience=0,
    )  # fmt: skip
    repap.train(nset, config, out=tmp_path / "many.pt", progress=False)
    many = repap.load_model(tmp_path / "many.last.pt")
    assert many.meta["best"]["epoch"] < len(many.meta["history"])  # the premise above
    single = repap.train(nset.system(0), config, progress=False)
    assert networks_made(single, nset) == {0}
    made = networks_made(many, nset)
    fitted = set(many.meta["data"]["networks_fit"])
    assert len(made) >= 3 and made <= fitted


@pytest.mark.parametrize("atoms", [64, 216])
def test_shipped_network_model_never_saw_a_heldout_network(atoms):
    """The pretrained "networks-64" and "networks-216" models record the networks they were
    fitted and validated on: all of them training networks of their shipped set, so its
    held-out networks judge them (the clean split by closeness later moved held-out networks
    with a near-copy in training into training: unseen by the model, never the reverse)."""
    model = repap.pretrained(f"networks-{atoms}")
    nset = repap.reference_set(atoms=atoms)
    data = model.meta["data"]
    seen = np.array(data["networks_fit"] + data["networks_val"])
    assert len(seen) == len(set(seen.tolist())) <= (~nset.heldout).sum()
    assert not nset.heldout[seen].any()
    assert data["networks_heldout_unseen"] >= nset.heldout.sum()
    np.testing.assert_allclose(model.meta["cell"], nset.cell)
    assert model.n_atoms == nset.n_atoms


@pytest.mark.parametrize("atoms", [64, 216])
def test_shipped_network_model_makes_new_networks(atoms):
    """Its structures relax into networks that none of the set's training networks is (the
    grouping's own tolerance), all distinct, with no pair closer than 2 A."""
    from repap.analysis.networks import group
    from repap.evaluation.network_report import networks_of
    from repap.sim.relaxation import relax

    model = repap.pretrained(f"networks-{atoms}")
    nset = repap.reference_set(atoms=atoms)
    ens = model.sample(8, seed=3, min_dist=2.0, temperature=1.0)
    assert len(ens) == 8
    for structure in ens.to_atoms():
        d = structure.get_all_distances(mic=True)
        assert d[np.triu_indices(len(d), 1)].min() >= 2.0
    relaxed = relax(ens, progress=False).structures
    assert len(group(relaxed)) == 8
    assert (networks_of(nset).match(relaxed) == -1).all()
