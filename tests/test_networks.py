"""Network identity and the multi-network reference set: copies under translation,
relabelling and cell symmetry are one network; thermal frames of one run relax to one
network; fast quenches end in networks told apart; sets split by network and resume."""

import json

import numpy as np
import pytest

import repap
from repap.analysis.networks import TOLERANCE, distance, fingerprints, group, same_network
from repap.sim.reference_sets import NetworkSet, assemble, build_runs
from repap.sim.relaxation import relax


@pytest.fixture(scope="module")
def inherent():
    """The inherent structure of the shipped 30-atom run."""
    return relax(repap.reference(heldout=True)[:1], fmax=1e-4, progress=False).structures


def copies(traj, rng, n=4):
    """Relabelled, translated, and mapped by a symmetry of the cubic cell, wrapped back."""
    length = traj.cell[0, 0]
    ops = [np.eye(3), np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]]), -np.eye(3),
           np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])]  # fmt: skip
    out = []
    for k in range(n):
        x = traj.positions[0][rng.permutation(traj.n_atoms)] @ ops[k % len(ops)].T
        x = (x + rng.uniform(0, length, 3)) % length
        out.append(x)
    return repap.Trajectory(np.array(out), traj.cell, traj.numbers, traj.pbc)


def test_relabelled_translated_symmetric_copies_are_one_network(inherent, rng):
    c = copies(inherent, rng)
    assert distance(fingerprints(c), fingerprints(inherent)[0]).max() < 1e-9
    nets = group(repap.Trajectory(np.concatenate([inherent.positions, c.positions]),
                                  inherent.cell, inherent.numbers))  # fmt: skip
    assert len(nets) == 1 and nets.counts.tolist() == [5]
    # while the atom-by-atom RMSD calls the copies far apart
    rmsd = np.sqrt(((c.positions - inherent.positions[0]) ** 2).sum(-1).mean(-1))
    assert rmsd.min() > 1.0


def test_thermal_frames_of_one_run_relax_to_one_network():
    frames = repap.reference()[::8000]
    relaxed = relax(frames, progress=False).structures
    nets = group(relaxed)
    assert len(nets) == 1
    assert distance(fingerprints(relaxed), nets.fingerprints[0]).max() < TOLERANCE / 10


@pytest.fixture(scope="module")
def fast_quenches():
    """Three 30-atom cells quenched in 2 ps: each ends in its own network."""
    runs = [repap.simulate(seed=s, frames=1, melt_time=2.0, quench_time=2.0,
                           equilibrate_time=0.5, progress=False) for s in (1, 2, 3)]  # fmt: skip
    frames = repap.Trajectory(np.concatenate([r.positions for r in runs]), runs[0].cell,
                              runs[0].numbers)  # fmt: skip
    return relax(frames, progress=False).structures


def test_different_networks_are_told_apart(fast_quenches, inherent, rng):
    nets = group(fast_quenches)
    assert len(nets) == 3
    prints = fingerprints(fast_quenches)
    gaps = [distance(prints[i], prints[j]) for i in range(3) for j in range(i)]
    assert min(gaps) > 5 * TOLERANCE
    # matching: copies of a known network are found, the others are novel
    known = group(inherent)
    assert known.match(copies(inherent, rng)).tolist() == [0, 0, 0, 0]
    assert known.match(fast_quenches).tolist() == [-1, -1, -1]
    # how far: against sorted minimum-image distances computed here (cubic cell)
    index, dist = known.nearest(fast_quenches)
    length, upper = inherent.cell[0, 0], np.triu_indices(inherent.n_atoms, 1)

    def sorted_pairs(x):
        d = x[:, None] - x[None]
        return np.sort(np.linalg.norm(d - length * np.round(d / length), axis=-1)[upper])

    ref = sorted_pairs(inherent.positions[0])
    want = [np.abs(sorted_pairs(x) - ref).max() for x in fast_quenches.positions]
    assert index.tolist() == [0, 0, 0]
    np.testing.assert_allclose(dist, want, atol=1e-9)
    assert known.nearest(copies(inherent, rng))[1].max() < 1e-9
    assert same_network(fast_quenches[:1], fast_quenches[:1]).all()
    assert not same_network(fast_quenches[:1], fast_quenches[1:2]).any()


def test_group_refuses_a_bad_tolerance(inherent):
    with pytest.raises(ValueError, match="tolerance"):
        group(inherent, tolerance=0)


TINY = {"atoms": 16, "frames": 20, "stride": 10, "melt_time": 2.0, "quench_time": 2.0,
        "equilibrate_time": 0.5}  # fmt: skip


def test_network_set_builds_resumes_and_splits_by_network(tmp_path):
    folder = tmp_path / "runs"
    paths = build_runs(folder, 4, seed=1, workers=2, relax_every=5, progress=False, **TINY)
    assert all(p.exists() for p in paths)
    stamps = [p.stat().st_mtime_ns for p in paths]
    build_runs(folder, 4, seed=1, workers=2, relax_every=5, progress=False, **TINY)
    assert [p.stat().st_mtime_ns for p in paths] == stamps  # resumed: nothing redone
    with pytest.raises(ValueError, match="another protocol .*quench_time"):
        build_runs(folder, 4, progress=False, **{**TINY, "quench_time": 3.0})

    out = tmp_path / "set.npz"
    nets, report = assemble(folder, out, heldout_every=4)  # seed 4
    assert report["runs"] == 4 and report["distinct_networks"] == nets.n_networks >= 3
    back = repap.read(out)
    assert isinstance(back, NetworkSet) and back.n_networks == nets.n_networks
    np.testing.assert_array_equal(back.network, nets.network)
    assert back.heldout.sum() == 1 and len(back) == 20 * nets.n_networks
    train, held = back.subset("train"), back.subset("heldout")
    assert train.n_networks + held.n_networks == back.n_networks
    # no held-out network among the training ones
    known = group(train.inherent_structures())
    assert (known.match(held.inherent_structures()) == -1).all()
    # judged against a set: its training networks for novelty, its held-out ones as reference
    from repap.evaluation.network_report import evaluate_networks

    for which, novelty in (("heldout", 1.0), ("train", 0.0)):
        frames = back.subset(which)[::10]
        report, _ = evaluate_networks(frames, back, back, baseline_size=2)
        assert report["networks"]["generated"]["novelty"] == novelty
        if which == "train":  # its own networks: near them, and none as far as a held-out one
            assert report["networks"]["generated"]["nearest_training_A"] < TOLERANCE
            # closeness: every one lies on a training network, all atoms and bonds
            row = report["networks"]["generated"]
            assert row["closeness_atoms_median"] == row["closeness_close_share"] == 1.0
            assert row["closeness_bonds_median"] == 1.0
            assert report["networks"]["generated"]["novel_as_heldout"] == 0.0
        assert report["networks"]["held-out networks"]["structures"] == 1
    with pytest.raises(ValueError, match="another atom count"):
        group(train.inherent_structures()).match(repap.reference()[:1])
    # a run that crystallised (zero angle spread) is left out and reported
    crystal = repap.read(paths[0])
    crystal.info["run"] = {**crystal.info["run"], "seed": 99,
                           "inherent_quality": {**crystal.info["run"]["inherent_quality"],
                                                "angle_spread": 0.0}}  # fmt: skip
    crystal.write(folder / "run-000099.npz")
    again, report = assemble(folder, heldout_every=4)
    assert report["crystallized_seeds"] == [99] and 99 not in again.seeds.tolist()
    assert again.n_networks == nets.n_networks
    # a crystal grain with an amorphous angle spread: told by its diamond-like atoms
    from ase.build import bulk

    grain = bulk("Si", "diamond", a=5.431, cubic=True) * (3, 3, 3)  # 216 atoms, its own cell
    pos = grain.positions.copy()
    slab = pos[:, 2] < grain.cell[2, 2] / 3
    pos[slab] += np.random.default_rng(0).normal(0, 0.4, (slab.sum(), 3))  # a third jumbled
    info = {**crystal.info, "run": {**crystal.info["run"], "inherent_positions": pos.tolist(),
                                    "inherent_quality": {"angle_spread": 9.0}}}  # fmt: skip
    repap.Trajectory(pos[None], grain.cell.array, grain.numbers, info=info).write(
        folder / "run-000099.npz"
    )
    again, report = assemble(folder, heldout_every=4)
    assert report["crystallized_seeds"] == [99] and again.n_networks == nets.n_networks
    (folder / "run-000099.npz").unlink()
    one = back.system(0)
    assert len(one) == 20 and one.n_atoms == 16
    assert repap.prepare(one).frac.shape == (20, 16, 3)
    with pytest.raises(ValueError, match="networks, each with its own atom order"):
        repap.prepare(back)  # across networks the paper's atom ordering means nothing


def test_dataset_cli_builds_and_assembles(tmp_path, capsys):
    from repap.cli import main

    args = ["dataset", str(tmp_path / "runs"), "--runs", "3", "--workers", "1", "--relax-every",
            "10", "--atoms", "16", "--frames", "10", "--stride", "10", "--melt-time", "2",
            "--quench-time", "2", "--equilibrate-time", "0.5", "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "set.npz"), "--heldout-every", "3"]) == 0
    out = capsys.readouterr().out  # one line, the full report beside the set
    assert out.count("\n") == 1 and ": 3 networks (1 held out) from 3 runs" in out
    report = json.loads((tmp_path / "set.npz.report.json").read_text())
    assert report["distinct_networks"] == 3 and report["runs"] == 3
    back = repap.read(tmp_path / "set.npz")
    assert back.n_networks == 3 and back.heldout.sum() == 1
    assert main([*args[:-1], "--quench-time", "5", "--quiet"]) == 2  # another protocol
    assert "holds runs of another protocol" in capsys.readouterr().err


def test_fingerprints_of_orthorhombic_cells_match_ase_distances(rng):
    """The orthorhombic fast path gives ASE's minimum-image distances, sorted; a skewed cell
    takes ASE's general path."""
    from ase.geometry import get_distances

    skewed = np.array([[8.0, 0, 0], [3.0, 8.0, 0], [1.0, 2.0, 9.0]])
    for cell in (np.diag([7.0, 9.0, 11.0]), skewed):
        x = rng.uniform(-5, 20, (2, 20, 3))  # some outside the cell: wrapping is the path's job
        got = fingerprints(repap.Trajectory(x, cell, np.full(20, 14)))
        for f in range(2):
            _, d = get_distances(x[f], cell=cell, pbc=True)
            np.testing.assert_allclose(got[f], np.sort(d[np.triu_indices(20, 1)]), atol=1e-12)
