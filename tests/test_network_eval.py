"""Network-level judging: rings against diamond and a hand-made 4-ring, S(Q) against an ideal
gas and diamond's Bragg peaks, novelty and uniqueness against known answers, the judge."""

import importlib.util
import json

import numpy as np
import pytest
from ase.build import bulk

import repap
from repap.analysis.networks import group
from repap.analysis.rings import ring_counts, rings_per_atom
from repap.analysis.structure_factor import structure_factor
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.sim.relaxation import relax


def diamond(repeat=(1, 1, 1)):
    return repap.Trajectory.from_atoms([bulk("Si", "diamond", a=5.431, cubic=True).repeat(repeat)])


@pytest.mark.parametrize("repeat", [(1, 1, 1), (2, 2, 2), (4, 4, 4)])
def test_diamond_has_only_six_rings_two_per_atom(repeat):
    """Each atom of diamond sits on 12 six-rings: 12 N / 6 = 2 N rings; none of other sizes,
    in the 8-atom cell (rings through images) as in the 64- and 512-atom ones."""
    assert rings_per_atom(diamond(repeat)) == {3: 0.0, 4: 0.0, 5: 0.0, 6: 2.0, 7: 0.0, 8: 0.0}


def test_hand_made_square_is_one_four_ring():
    square = np.array([[0, 0, 0], [2.4, 0, 0], [2.4, 2.4, 0], [0, 2.4, 0]]) + 5.0
    traj = repap.Trajectory(square[None], np.eye(3) * 20, np.full(4, 14), np.zeros(3, bool))
    assert ring_counts(traj)[0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]
    # a fifth atom bridging two corners adds a 3-ring and keeps the 4-ring
    bridged = np.vstack([square, [[6.2, 3.7, 5.0]]])  # 1.77 A from (5, 5) and (7.4, 5)
    traj = repap.Trajectory(bridged[None], np.eye(3) * 20, np.full(5, 14), np.zeros(3, bool))
    counts = ring_counts(traj)[0]
    assert counts[3] == 1 and counts[4] == 1


def test_chain_around_the_cell_is_not_a_ring():
    """Atoms 2.35 A apart along x in a 4 x 2.35 A cell: every atom has two bonds, the chain
    closes only through a lattice translation, so there is no ring."""
    x = np.arange(4)[:, None] * [2.35, 0, 0] + [0.1, 3, 3]
    traj = repap.Trajectory(x[None], np.diag([4 * 2.35, 6, 6]), np.full(4, 14))
    assert ring_counts(traj).sum() == 0


def test_structure_factor_of_an_ideal_gas_tends_to_one(rng):
    gas = repap.Trajectory(rng.random((200, 64, 3)) * 10.6, np.eye(3) * 10.6, np.full(64, 14))
    q, s = structure_factor(gas)
    assert np.abs(s[q > 2] - 1).max() < 0.05


def test_structure_factor_of_diamond_peaks_at_its_bragg_peaks():
    q, s = structure_factor(diamond((2, 2, 2)), rmax=20.0)
    a = 5.431
    for hkl2, lo, hi in ((3, 1.5, 2.6), (8, 2.6, 3.6), (11, 3.6, 4.3)):
        window = (q > lo) & (q < hi)
        peak = q[window][np.argmax(s[window])]
        assert abs(peak - 2 * np.pi * np.sqrt(hkl2) / a) < 0.1


@pytest.fixture(scope="module")
def quenches():
    """Four 30-atom cells quenched in 2 ps, relaxed: four distinct networks."""
    runs = [repap.simulate(seed=s, frames=2, melt_time=2.0, quench_time=2.0,
                           equilibrate_time=0.5, progress=False) for s in (1, 2, 3, 4)]  # fmt: skip
    frames = repap.Trajectory(np.concatenate([r.positions for r in runs]), runs[0].cell,
                              runs[0].numbers)  # fmt: skip
    return frames  # 8 frames, two per network


def test_novelty_and_uniqueness_against_known_answers(quenches, rng):
    training, heldout = quenches[:4], quenches[4:]  # networks 1-2 and 3-4
    # the training frames themselves: not novel; 2 networks in 4 structures
    report, _ = evaluate_networks(training, heldout, training, baseline_size=4)
    row = report["networks"]["generated"]
    assert row["novelty"] == 0.0 and row["networks"] == 2 and row["uniqueness"] == 0.5
    # the held-out networks: all novel
    heldout.info["seconds_per_structure"] = 0.5  # as repap generate records it
    report, _ = evaluate_networks(heldout, heldout, training, baseline_size=4)
    assert report["networks"]["generated"]["novelty"] == 1.0
    assert report["networks"]["generated"]["novel_networks"] == 2
    cost = report["cost"]
    assert cost["generation_s_per_structure"] == 0.5
    assert cost["model_s_per_new_network"] == pytest.approx(
        (0.5 * 4 + report["seconds"]["relax"]) / 2
    )
    del heldout.info["seconds_per_structure"]
    # relabelled, translated copies of one training network: not novel, uniqueness 1/n
    one = relax(training[:1], progress=False).structures
    n = 5
    x = np.array([(one.positions[0][rng.permutation(30)] + rng.uniform(0, 8, 3)) % one.cell[0, 0]
                  for _ in range(n)])  # fmt: skip
    copies = repap.Trajectory(x, one.cell, one.numbers)
    report, curves = evaluate_networks(copies, heldout, training, baseline_size=4)
    row = report["networks"]["generated"]
    assert row["novelty"] == 0.0 and row["uniqueness"] == pytest.approx(1 / n)
    assert report["networks"]["held-out networks"]["networks"] == 2
    assert report["networks"]["random, min 2 A, relaxed"]["novelty"] == 1.0
    # the training + noise bar: with noise far inside the basin it relaxes back (not novel)
    near = evaluate_networks(copies, heldout, training, baseline_size=4, perturbed=0.02)[0]
    row = near["networks"]["training + 0.02 A noise, relaxed"]
    assert row["novelty"] == 0.0 and row["nearest_training_A"] < 1e-3
    plain = evaluate_networks(copies, heldout, training, baseline_size=4, perturbed=None)[0]
    assert list(plain["networks"]) == ["generated", "held-out networks", "random, min 2 A, relaxed"]
    # held-out "networks" that are training ones give no bar to be as new as
    same = evaluate_networks(copies, training, training, baseline_size=4, perturbed=None)[0]
    assert "novel_as_heldout" not in same["networks"]["generated"]
    assert "novel_as_heldout" in plain["networks"]["generated"]
    json.dumps(report)  # JSON-able as written
    table = markdown(report)
    assert "| novelty (not a training network) | 0.000 | 1.000 | 1.000 |" in table
    assert "training + 0.45 A noise, relaxed |" in table.splitlines()[0]
    assert "| distinct new networks | 0 | - | - |" in table
    assert set(curves["generated"]) == {"energy", "angles", "rings", "q", "s", "closeness"}
    # closeness: the copies lie wholly on the training network, the random ones do not
    assert row["closeness_atoms_median"] == row["closeness_close_share"] == 1.0
    assert report["networks"]["generated"]["closeness_atoms_median"] == 1.0
    assert report["networks"]["random, min 2 A, relaxed"]["closeness_atoms_median"] < 0.9
    assert "| atoms on the nearest training network, median | 1.000 |" in table
    assert len(group(heldout[::2])) == 2


HAS_CHGNET = importlib.util.find_spec("chgnet") is not None


@pytest.mark.skipif(not HAS_CHGNET, reason="CHGNet not installed: pip install 'repap[judge]'")
def test_judge_puts_diamond_at_zero_and_a_si_above_it():
    from repap.evaluation.judge import diamond_energy, energy_above_diamond

    assert diamond_energy() == pytest.approx(-5.312, abs=0.005)
    assert energy_above_diamond(diamond())[0] == pytest.approx(0.0, abs=1e-3)  # cubic cell
    a_si = relax(repap.reference()[:1], progress=False).structures
    assert 0.05 < energy_above_diamond(a_si)[0] < 0.2  # relaxed Vink a-Si: about +0.12


def test_judge_without_chgnet_says_how_to_install(monkeypatch):
    import sys

    from repap.evaluation import judge

    judge._model.cache_clear()
    monkeypatch.setitem(sys.modules, "chgnet", None)  # import chgnet raises ImportError
    monkeypatch.setitem(sys.modules, "chgnet.model", None)
    with pytest.raises(OSError, match=r"pip install 'repap\[judge\]'"):
        judge.energies(diamond())
    judge._model.cache_clear()
