"""LAMMPS melt-quench and Stillinger-Weber energies (short runs; the shipped data is checked in
test_reference.py)."""

import numpy as np
import pytest
from ase.build import bulk

import repap
from repap.data.trajectory import Trajectory
from repap.sim.md import MeltQuench, energy, simulate, thermalize

SHORT = dict(melt_time=1.0, quench_time=2.0, equilibrate_time=1.0, frames=20, stride=5)


@pytest.fixture(scope="module")
def short_run() -> Trajectory:
    return simulate(seed=7, progress=False, **SHORT)


def test_short_melt_quench_shapes_and_cell(short_run):
    traj = short_run
    assert traj.positions.shape == (20, 30, 3)
    length = traj.cell[0, 0]
    # 30 Si atoms at 2.33 g/cm3: V = 30 * 28.0855 / (6.02214076e23 * 2.33) cm3
    assert length == pytest.approx((30 * 28.0855 / (6.02214076e23 * 2.33) * 1e24) ** (1 / 3))
    np.testing.assert_array_equal(traj.cell, np.eye(3) * length)
    assert (traj.numbers == 14).all() and traj.pbc.all()
    assert traj.info["simulate"]["seed"] == 7
    # unwrapped: 5 fs between frames moves an atom far less than an Angstrom
    assert np.abs(np.diff(traj.positions, axis=0)).max() < 0.5


def test_same_seed_same_trajectory(short_run):
    again = simulate(seed=7, progress=False, **SHORT)
    np.testing.assert_array_equal(again.positions, short_run.positions)
    np.testing.assert_array_equal(again.energy, short_run.energy)
    other = simulate(seed=8, progress=False, **SHORT)
    assert not np.allclose(other.positions, short_run.positions)


def test_frame_energies_match_a_separate_evaluation(short_run):
    per_atom = energy(short_run)
    np.testing.assert_allclose(per_atom, short_run.energy / 30, rtol=0, atol=1e-9)
    assert (per_atom > -3.3).all() and (per_atom < -2.0).all()  # liquid-to-glass range


def test_diamond_energy_matches_stillinger_weber():
    # SW's diamond Si at a = 5.431 A has the ideal angle (no three-body term) and the
    # published cohesive energy 2 * epsilon = 4.3366 eV/atom; Vink only rescales epsilon.
    si = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)
    traj = Trajectory.from_atoms([si])
    assert energy(traj, potential="sw")[0] == pytest.approx(-4.3366, abs=2e-4)
    assert energy(traj, potential="vink")[0] == pytest.approx(-4.3366 * 1.64833 / 2.1683, abs=2e-4)


def test_energy_is_invariant_under_rotation_and_skewed_cells(rng):
    si = bulk("Si", "diamond", a=5.431)  # primitive cell: triclinic
    si.rattle(0.05, seed=3)
    rotated = si.copy()
    rotated.rotate(37, "x", rotate_cell=True)
    rotated.rotate(-71, "z", rotate_cell=True)
    supercell = si.repeat((3, 3, 3))
    e = energy(Trajectory.from_atoms([si, si]))
    np.testing.assert_allclose(e, e[0])
    assert energy(Trajectory.from_atoms([rotated]))[0] == pytest.approx(e[0], abs=1e-9)
    assert energy(Trajectory.from_atoms([supercell]))[0] == pytest.approx(e[0], abs=1e-9)


def test_energy_with_a_changing_cell():
    frames = [bulk("Si", "diamond", a=a, cubic=True) for a in (5.40, 5.431, 5.46)]
    traj = Trajectory.from_atoms(frames)
    assert traj.cell.shape == (3, 3, 3)
    per_frame = energy(traj, potential="sw")
    one_by_one = [energy(Trajectory.from_atoms([f]), potential="sw")[0] for f in frames]
    np.testing.assert_allclose(per_frame, one_by_one, atol=1e-12)
    assert per_frame[1] < per_frame[0] and per_frame[1] < per_frame[2]  # 5.431 is the minimum


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"atoms": 1},
            r"^atoms: expected at least 10 at 2.33 g/cm3 \(a cell wider than 5.70 A, "
            r"twice the 2.85 A bond cutoff of repap's analysis\), got 1$",
        ),
        ({"atoms": 9}, r"^atoms: expected at least 10 at 2.33"),  # 5.65 A: one bond seen twice
        ({"atoms": 10, "density": 2.8}, r"^atoms: expected at least 12 at 2.8 g/cm3"),
        ({"frames": 0}, r"^frames: expected a positive number, got 0$"),
        ({"density": -1.0}, r"^density: expected a positive number"),
        ({"quench_time": -5.0}, r"^quench_time: expected a number >= 0"),
        ({"potential": "tersoff"}, r"^potential: expected one of \['sw', 'vink'\]"),
        ({"seed": 0}, r"^seed: expected an integer in \[1, 900000000\)"),
        ({"atoms": 200, "min_distance": 3.0}, r"^min_distance: could not place 200 atoms"),
    ],
)
def test_bad_protocol(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(progress=False, **{**SHORT, **kwargs})


def test_bad_output_fails_before_the_md(tmp_path):
    with pytest.raises(OSError, match=r"folder .*missing does not exist$"):
        simulate(tmp_path / "missing" / "a.npz", progress=False, **SHORT)
    with pytest.raises(ValueError, match=r"a.weird: unknown or read-only file format"):
        simulate(tmp_path / "a.weird", progress=False, **SHORT)


def test_energy_needs_silicon():
    traj = Trajectory(np.array([[[0, 0, 0], [2.3, 0, 0]]]), np.eye(3) * 8, [14, 8])
    with pytest.raises(ValueError, match=r"^energy: the Stillinger-Weber potentials here are for"):
        energy(traj)


def test_defaults_are_the_issue_protocol():
    d = MeltQuench()
    assert (d.atoms, d.density, d.melt_temperature, d.melt_time) == (30, 2.33, 3500.0, 20.0)
    assert (d.quench_time, d.temperature, d.equilibrate_time, d.timestep) == (
        1000.0,
        300.0,
        20.0,
        0.001,
    )
    assert d.potential == "vink" and repap.simulate is simulate and repap.energy is energy


@pytest.fixture(scope="module")
def heldout():
    return repap.reference_set("heldout")


def test_thermalized_networks_look_like_their_melt_quench_frames(heldout):
    """Six held-out networks' inherent structures, 0.5 ps at 300 K: the potential energy rises
    by equipartition's 3/2 kB T per atom (a harmonic solid), the RDF becomes that of the
    networks' own 300 K melt-quench frames, and the frames relax back into their networks."""
    from repap.analysis.metrics import err_rdf
    from repap.analysis.networks import group

    nets = heldout.inherent_structures()[:6]
    frames = thermalize(nets, 300.0, 0.5)
    rise = (frames.energy - nets.energy).mean() / nets.n_atoms
    kb = 8.617333e-5  # eV/K
    assert rise == pytest.approx(1.5 * kb * 300, rel=0.25)
    ref = heldout[np.flatnonzero(heldout.network < 6)]
    _, g_ref = repap.rdf(ref, rmax=4.2, nbins=100)
    _, g_is = repap.rdf(nets, rmax=4.2, nbins=100)
    _, g_md = repap.rdf(frames, rmax=4.2, nbins=100)
    assert err_rdf(g_md, g_ref) < 0.3 * err_rdf(g_is, g_ref)
    back = repap.relax(frames, progress=False).structures
    # most relax back into their own network (a held-out network changes at 300 K now and
    # then: 3 of 29 in 0.5 ps, measured), none far from it in energy
    assert (group(nets).match(back) == np.arange(6)).sum() >= 4
    assert np.abs(back.energy - nets.energy).max() / nets.n_atoms < 0.005
    assert np.abs(frames.positions - nets.positions).max() < 1.0  # no atom wrapped or lost


def test_thermalize_keeps_positions_continuous_and_repeats_with_its_seed(heldout):
    nets = heldout.inherent_structures()[:2]
    shifted = nets.positions.copy()
    shifted[:, ::3] += nets.frame_cells()[0][0] * 2  # some atoms two cells away along a
    moved = Trajectory(shifted, nets.cell, nets.numbers, nets.pbc, nets.energy)
    a = thermalize(moved, 300.0, 0.1, seed=5)
    assert np.abs(a.positions - shifted).max() < 1.0
    b = thermalize(moved, 300.0, 0.1, seed=5)
    c = thermalize(moved, 300.0, 0.1, seed=6)
    assert np.array_equal(a.positions, b.positions) and not np.allclose(a.positions, c.positions)
    assert a.info["thermalize"] == {"temperature_K": 300.0, "time_ps": 0.1,
                                    "potential": "vink", "seed": 5}  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, r"^temperature: expected a positive number, got 0.0$"),
        ({"time_ps": -1.0}, r"^time_ps: expected a positive number, got -1.0$"),
        ({"potential": "tersoff"}, r"^potential: expected one of"),
        ({"seed": 0}, r"^seed: expected an integer in \[1, "),
    ],
)
def test_thermalize_refuses_bad_arguments(heldout, kwargs, message):
    with pytest.raises(ValueError, match=message):
        thermalize(heldout.inherent_structures()[:1], **kwargs)


def test_thermalize_in_a_skewed_cell():
    """Diamond Si in its FCC-primitive (triclinic) cell, 3 x 3 x 3: atoms given a lattice
    vector away come back continuous (the image flags unwrapped through the tilt), and the
    potential energy rises by ~3/2 kB T per atom above the crystal's, at a numpy temperature."""
    atoms = bulk("Si", "diamond", a=5.431) * (3, 3, 3)
    cell = np.array(atoms.cell)
    pos = atoms.positions.copy()
    pos[::2] += cell[0] - cell[2]  # another image of every other atom
    traj = Trajectory(pos[None], cell, atoms.numbers)
    base = energy(traj)[0]
    hot = thermalize(traj, np.float64(300.0), 0.3, seed=3)
    assert np.abs(hot.positions - pos).max() < 0.8
    rise = hot.energy[0] / len(atoms) - base
    assert rise == pytest.approx(1.5 * 8.617333e-5 * 300, rel=0.35)
