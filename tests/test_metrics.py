"""Metrics on structures whose answers are known, baselines, and repap evaluate."""

import json

import numpy as np
import pytest
from ase.build import bulk
from reference import bond_angles_cubic, coordination_cubic

import repap
from repap.analysis import metrics
from repap.analysis.radial import rdf
from repap.cli import main
from repap.evaluation import baselines
from repap.evaluation.snapshots import describe


@pytest.fixture(scope="module")
def diamond():
    return repap.Trajectory.from_atoms([bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)])


def test_diamond_silicon(diamond):
    assert (metrics.coordination(diamond) == 4).all()
    angles = metrics.bond_angles(diamond)
    assert angles.size == 64 * 6
    np.testing.assert_allclose(angles, np.degrees(np.arccos(-1 / 3)), atol=1e-9)  # 109.47
    r, g = rdf(diamond, rmax=4.2, nbins=100)
    first = r[np.flatnonzero(g > 0)[0]]
    assert first == pytest.approx(5.431 * np.sqrt(3) / 4, abs=0.021)  # 2.35 A, one bin wide
    close = metrics.close_pairs(diamond, threshold=2.0)
    assert close["min_distance"][0] == pytest.approx(5.431 * np.sqrt(3) / 4)
    assert close["fraction_pairs"] == 0 and close["fraction_structures"] == 0


def test_primitive_cell_needs_images():
    # 2 atoms in a triclinic primitive cell: every neighbour is an image of the other atom
    prim = repap.Trajectory.from_atoms([bulk("Si", "diamond", a=5.431)])
    assert (metrics.coordination(prim) == 4).all()
    np.testing.assert_allclose(metrics.bond_angles(prim), 109.4712206, atol=1e-6)


def test_metrics_equal_numpy_references_on_the_shipped_data():
    ref = repap.reference(heldout=True)[::100]
    length = ref.cell[0, 0]
    np.testing.assert_array_equal(
        metrics.coordination(ref), coordination_cubic(ref.positions, length, 2.85)
    )
    np.testing.assert_allclose(
        np.sort(metrics.bond_angles(ref)),
        np.sort(bond_angles_cubic(ref.positions, length, 2.85)),
        atol=1e-9,
    )


def test_close_pairs_counts(rng):
    cell = np.eye(3) * 10
    pos = np.array([[[0.0, 0, 0], [1.5, 0, 0], [5.0, 5, 5], [9.4, 0, 0]]])  # 9.4 is 0.6 from 0
    close = metrics.close_pairs(pos, cell, threshold=2.0)
    # pairs below 2 A: (0,1) 1.5 and (0,3) 0.6; (1,3) is 2.1 through the face: 2 of 6 pairs
    assert close["min_distance"][0] == pytest.approx(0.6)
    assert close["fraction_pairs"] == pytest.approx(2 / 6)
    assert close["fraction_structures"] == 1.0


def test_err_rdf_and_coordination_summary():
    assert metrics.err_rdf([1, 2, 3], [1, 2, 3]) == 0
    assert metrics.err_rdf([1, 0, 3], [0, 0, 0]) == pytest.approx(1 + 9 / 3)
    summary = metrics.coordination_summary(np.array([[4, 4, 3, 5]]))
    assert summary["mean"] == 4 and summary["fourfold"] == 0.5
    assert summary["histogram"] == {3: 0.25, 4: 0.5, 5: 0.25}
    with pytest.raises(ValueError, match=r"^g, g_ref: expected two 1-D arrays of one length"):
        metrics.err_rdf([1, 2], [1, 2, 3])


def test_novelty_spots_copies():
    ref = repap.reference(heldout=True)
    copies = ref[::500]
    np.testing.assert_allclose(metrics.novelty(copies, ref), 0, atol=1e-12)
    shifted = repap.Trajectory(
        copies.positions + np.array([0.3, 0, 0]), copies.cell, copies.numbers
    )
    # every atom moved 0.3 A: RMSD to the frame it came from is 0.3 (others can only be closer)
    assert (metrics.novelty(shifted, ref) <= 0.3 + 1e-9).all()


def test_baselines(rng):
    cell = np.eye(3) * 8.4366
    numbers = np.full(30, 14)
    uni = baselines.uniform(50, cell, numbers, seed=1)
    assert uni.positions.shape == (50, 30, 3) and (uni.fractional() < 1).all()
    spaced = baselines.random_min_distance(200, cell, numbers, min_dist=2.0, seed=1)
    d = spaced.positions[:, :, None] - spaced.positions[:, None]
    d -= 8.4366 * np.round(d / 8.4366)
    r = np.linalg.norm(d, axis=-1) + np.eye(30) * 99
    assert r.min() >= 2.0
    again = baselines.random_min_distance(200, cell, numbers, min_dist=2.0, seed=1)
    np.testing.assert_array_equal(again.positions, spaced.positions)
    with pytest.raises(ValueError, match=r"^min_dist: cannot place 30 atoms 2.4 A apart"):
        baselines.random_min_distance(2, cell, numbers, min_dist=2.4, max_attempts=1)
    # far past random packing's jamming point: refused at once (it used to run for hours)
    with pytest.raises(ValueError, match=r"^min_dist: 30 atoms 5.0 A apart would fill 3.27"):
        baselines.random_min_distance(2, cell, numbers, min_dist=5.0)
    # training + noise: sources in turn, every coordinate off by N(0, sigma)
    near = baselines.perturbed(spaced[:3], 300, 0.45, seed=2)
    shift = near.positions - spaced.positions[np.arange(300) % 3]
    assert near.positions.shape == (300, 30, 3)
    assert abs(shift.mean()) < 0.01 and shift.std() == pytest.approx(0.45, rel=0.02)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="^sigma: expected a positive distance"):
            baselines.perturbed(spaced[:3], 2, bad)


def test_evaluate_reference_against_itself(tmp_path, capsys):
    held = repap.reference(heldout=True)
    held[::25].write(tmp_path / "ens.npz")
    code = main(
        [
            "evaluate",
            str(tmp_path / "ens.npz"),
            "--reference",
            str(tmp_path / "ens.npz"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = report["ensembles"]
    assert rows["generated"]["err_rdf"] < 1e-12
    assert rows["uniform random"]["err_rdf"] > 1.0
    assert 0.5 < rows["random, min 2 A"]["err_rdf"] < rows["uniform random"]["err_rdf"]
    assert rows["random, min 2 A"]["min_distance_A"] >= 2.0
    assert rows["generated"]["energy_mean_eV"] == pytest.approx(-3.018, abs=0.01)
    for name in ("report.md", "rdf.png", "coordination.png", "angles.png", "networks.png"):
        assert (tmp_path / "out" / name).stat().st_size > 500
    out = capsys.readouterr().out
    assert "| Err_RDF vs reference | 0.0000 |" in out
    # as networks: 200 thermal frames of one run relax into one network
    nets = report["networks"]["networks"]
    assert nets["generated"]["networks"] == 1 and nets["generated"]["structures"] == 200
    # a plain run with no training set to tell it apart: "reference", never "held-out"
    assert nets["reference networks"]["networks"] == 1 and "held-out networks" not in nets
    assert nets["generated"]["energy_mean_eV"] == pytest.approx(-3.05574, abs=1e-4)
    assert "novelty" not in nets["generated"]  # no --training given
    assert "| distinct networks | 1 | 1 | 200 |" in out


def test_evaluate_cli_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none.xyz")]) == 2
    assert main(["evaluate", "x.npz", "--rmax", "-1"]) == 2
    assert main(["evaluate", "x.npz", "--nbins", "100000000"]) == 2  # not 15 GB
    assert "--nbins: expected 1 to 100000" in capsys.readouterr().err


def test_energy_row_left_empty_says_why():
    # hydrogen where a LAMMPS dump read without species= puts its type 1: no SW energy, a warning
    si = repap.reference(heldout=True)[:4]
    hydrogen = repap.Trajectory(si.positions, si.cell, [1] * si.n_atoms, si.pbc)
    kwargs = {"rmax": 4.2, "nbins": 50, "cutoff": 2.85, "min_dist": 2.0, "training": None}
    with pytest.warns(UserWarning, match=r"energy row left empty .* atomic numbers \[1\]"):
        row, _ = describe(hydrogen, None, energy=True, **kwargs)
    assert row["energy_mean_eV"] is None
    row, _ = describe(si, None, energy=True, **kwargs)
    assert -3.1 < row["energy_mean_eV"] < -2.9  # eV/atom: a-Si at 300 K


def test_evaluate_takes_the_training_block_of_a_split():
    # the README's lines: seqs = repap.prepare(ref); train, val, test = split(seqs, ...)
    ref = repap.reference(heldout=True)[::50]
    train, _, _ = repap.data.sequences.split(repap.prepare(ref), val=0.1, test=0.1)
    report = repap.evaluate(ref[-10:], ref, training=train, networks=False, energy=False)
    assert report["ensembles"]["generated"]["novelty_rmsd_min_A"] >= 0.0
    with pytest.raises(TypeError, match=r"^training: expected a repap.Trajectory or Sequences"):
        repap.evaluate(ref[-10:], ref, training=[1, 2], networks=False, energy=False)


def test_diamond_like_fraction_tells_a_crystal_grain_from_a_si(rng):
    """Diamond: every atom; the shipped 64-atom networks: at most 5 %; diamond with a third
    of its atoms (a slab) jumbled: the untouched rest, bar the atoms at the slab's faces."""
    crystal = bulk("Si", "diamond", a=5.431, cubic=True) * (3, 3, 3)
    cell = crystal.cell.array
    assert metrics.diamond_like_fraction(crystal.positions, cell) == pytest.approx([1.0])
    nets = repap.reference_set()
    assert metrics.diamond_like_fraction(nets.inherent, nets.cell).max() <= 0.05
    pos = crystal.positions.copy()
    slab = pos[:, 2] < cell[2, 2] / 3
    pos[slab] += rng.normal(0.0, 0.4, (slab.sum(), 3))
    f = metrics.diamond_like_fraction(pos, cell)[0]
    assert 0.3 < f < 1 - slab.mean()
    with pytest.raises(ValueError, match="half a cell height"):
        metrics.diamond_like_fraction(crystal.positions[:8], np.eye(3) * 5.431)
