"""Trajectory: ASE interop, file round trips, streaming reads and the one-line errors."""

import tracemalloc

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

import repap
from repap.data.trajectory import Trajectory, read

TRICLINIC = np.array([[8.4, 0.0, 0.0], [1.3, 7.9, 0.0], [-0.7, 0.9, 8.8]])


def make_traj(rng, frames=6, atoms=5, cell=TRICLINIC, energy=True, decimals=None):
    positions = rng.uniform(-2, 10, (frames, atoms, 3))
    if decimals is not None:  # values a fixed-decimal text format writes and reads exactly
        positions = np.array(
            [[[float(f"{v:.{decimals}f}") for v in atom] for atom in frame] for frame in positions]
        )
    e = rng.normal(-90, 1, frames).round(6) if energy else None
    return Trajectory(positions, cell, rng.choice([14, 8], atoms), [True, True, True], e)


def assert_same(a: Trajectory, b: Trajectory, energy=True):
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.cell, b.cell)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    if energy:
        np.testing.assert_array_equal(a.energy, b.energy)


@pytest.mark.parametrize("suffix", ["npz", "traj"])
def test_binary_round_trips_are_bit_exact(tmp_path, rng, suffix):
    traj = make_traj(rng)
    traj.write(tmp_path / f"t.{suffix}")
    assert_same(read(tmp_path / f"t.{suffix}"), traj)


def test_extxyz_round_trip_is_exact_at_its_printed_precision(tmp_path, rng):
    # ASE writes extxyz positions with 8 decimals: values with 8 decimals come back unchanged
    traj = make_traj(rng, decimals=8)
    traj.write(tmp_path / "t.extxyz")
    assert_same(read(tmp_path / "t.extxyz"), traj)


def test_per_frame_cells_round_trip(tmp_path, rng):
    cells = TRICLINIC * rng.uniform(0.95, 1.05, (6, 1, 1))
    traj = make_traj(rng, cell=cells)
    for name in ("t.npz", "t.traj"):
        traj.write(tmp_path / name)
        back = read(tmp_path / name)
        assert back.cell.shape == (6, 3, 3)
        assert_same(back, traj)


def test_npz_with_precision_rounds_to_it_and_is_smaller(tmp_path, rng):
    base = rng.uniform(0, 8, (1, 30, 3))
    traj = Trajectory(base + rng.normal(0, 0.1, (2000, 30, 3)), np.eye(3) * 8.4, [14] * 30)
    traj.write(tmp_path / "exact.npz")
    traj.write(tmp_path / "compact.npz", precision=1e-3)
    back = read(tmp_path / "compact.npz")
    assert np.abs(back.positions - traj.positions).max() <= 0.5e-3 + 1e-12
    assert (tmp_path / "compact.npz").stat().st_size < 0.4 * (tmp_path / "exact.npz").stat().st_size
    with pytest.raises(ValueError, match=r"^precision: expected a length in \(0, 1\) A"):
        traj.write(tmp_path / "bad.npz", precision=-1.0)


def test_atoms_round_trip_keeps_energy(rng):
    traj = make_traj(rng)
    atoms = traj.to_atoms()
    assert len(atoms) == len(traj) and all(isinstance(a, Atoms) for a in atoms)
    assert atoms[2].get_potential_energy() == traj.energy[2]
    np.testing.assert_array_equal(atoms[3].cell.array, TRICLINIC)
    assert_same(Trajectory.from_atoms(atoms), traj)


def test_indexing_and_read_index(tmp_path, rng):
    traj = make_traj(rng, frames=10)
    assert isinstance(traj[3], Atoms)
    np.testing.assert_array_equal(traj[3].positions, traj.positions[3])
    assert len(traj[2:8:2]) == 3
    traj.write(tmp_path / "t.npz")
    traj.write(tmp_path / "t.traj")
    for name in ("t.npz", "t.traj"):
        np.testing.assert_array_equal(
            read(tmp_path / name, index="2:8:2").positions, traj.positions[2:8:2]
        )
        np.testing.assert_array_equal(
            read(tmp_path / name, index=-1).positions, traj.positions[-1:]
        )


def test_reads_other_ase_formats(tmp_path, rng):
    traj = make_traj(rng, cell=np.diag([8.0, 9.0, 10.0]), energy=False, decimals=6)
    # VASP XDATCAR (fractional coordinates) and a LAMMPS text dump, both written by ASE/numpy
    import ase.io

    ase.io.write(tmp_path / "XDATCAR", traj.to_atoms(), format="vasp-xdatcar")
    back = read(tmp_path / "XDATCAR")
    np.testing.assert_allclose(back.fractional(), traj.fractional(), atol=1e-7)
    dump = []
    for f, pos in enumerate(traj.positions):
        dump += [
            "ITEM: TIMESTEP",
            str(f),
            "ITEM: NUMBER OF ATOMS",
            str(traj.n_atoms),
            "ITEM: BOX BOUNDS pp pp pp",
            "0 8",
            "0 9",
            "0 10",
            "ITEM: ATOMS id type x y z",
        ]
        dump += [f"{i + 1} 1 {x:.17g} {y:.17g} {z:.17g}" for i, (x, y, z) in enumerate(pos)]
    (tmp_path / "run.dump").write_text("\n".join(dump) + "\n")
    back = read(tmp_path / "run.dump", format="lammps-dump-text", species=["Si"])
    np.testing.assert_allclose(back.positions, traj.positions, atol=1e-12)
    np.testing.assert_array_equal(back.cell, traj.cell)


def test_streaming_read_holds_no_list_of_atoms(rng):
    # a generator of frames: the collector must keep arrays, not the Atoms objects
    n_frames, n_atoms = 12_000, 30
    base = rng.uniform(0, 8, (n_atoms, 3))

    def frames():
        for f in range(n_frames):
            yield Atoms("Si30", positions=base + 1e-3 * f, cell=np.eye(3) * 8.4, pbc=True)

    tracemalloc.start()
    traj = Trajectory.from_atoms(frames())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(traj) == n_frames
    final = traj.positions.nbytes
    assert peak < 2.5 * final, f"peak {peak / final:.2f}x the final positions"


def test_fractional_wraps_into_unit_interval(rng):
    traj = make_traj(rng)
    frac = traj.fractional()
    assert frac.min() >= 0 and frac.max() < 1
    np.testing.assert_allclose(
        frac @ TRICLINIC,
        traj.positions - np.floor(traj.positions @ np.linalg.inv(TRICLINIC)) @ TRICLINIC,
        atol=1e-12,
    )


# -- bad input: one line, naming the file and frame -------------------------------------------
def write_xyz(path, frames):
    ase_frames = []
    for symbols, positions, cell, pbc in frames:
        atoms = Atoms(symbols, positions=positions, cell=cell, pbc=pbc)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0)
        ase_frames.append(atoms)
    import ase.io

    ase.io.write(path, ase_frames, format="extxyz")


def good_frame(symbols="Si3"):
    n = len(Atoms(symbols))
    return symbols, np.arange(3.0 * n).reshape(n, 3) / 3, np.eye(3) * 5, True


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([good_frame(), good_frame("Si4")], "frame 1 has 4 atoms, frame 0 has 3"),
        ([good_frame(), good_frame("Si2O")], "frame 1 has other species or atom order"),
        (
            [good_frame(), ("Si3", np.full((3, 3), np.nan), np.eye(3) * 5, True)],
            "frame 1 has NaN or infinite positions",
        ),
        (
            [good_frame(), ("Si3", np.zeros((3, 3)), np.zeros((3, 3)), True)],
            "frame 1 is periodic but has no cell",
        ),
    ],
)
def test_bad_trajectories_name_file_and_frame(tmp_path, frames, message):
    path = tmp_path / "bad.extxyz"
    write_xyz(path, frames)
    with pytest.raises(ValueError, match=rf"^{path}: {message}") as info:
        read(path)
    assert "\n" not in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.xyz: no such file$"):
        read(tmp_path / "nope.xyz")
    (tmp_path / "empty.extxyz").write_text("")
    with pytest.raises(ValueError, match=r"empty.extxyz: no frames$"):
        read(tmp_path / "empty.extxyz")
    (tmp_path / "data.weird").write_text("hello\n")
    with pytest.raises(ValueError, match=r"data.weird: unknown file format"):
        read(tmp_path / "data.weird")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=r"cut.npz: damaged or truncated .npz"):
        read(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"other.npz: not a repap trajectory"):
        read(tmp_path / "other.npz")


def test_damaged_and_foreign_files_name_the_file(tmp_path, rng):
    make_traj(rng, frames=3, atoms=4).write(tmp_path / "full.extxyz")
    text = (tmp_path / "full.extxyz").read_text()
    (tmp_path / "cut.extxyz").write_text(text[:-40])  # ends inside the last atom line
    (tmp_path / "noise.extxyz").write_bytes(bytes(rng.integers(128, 256, 3000, dtype=np.uint8)))
    (tmp_path / "noise.npz").write_bytes(bytes(rng.integers(0, 256, 3000, dtype=np.uint8)))
    for name, message in [
        ("cut.extxyz", r"cannot read frame 2: damaged, truncated or not this format"),
        ("noise.extxyz", r"cannot read frame 0: damaged, truncated or not this format"),
        ("noise.npz", r"not an .npz file \(no zip archive inside\)$"),
    ]:
        with pytest.raises(ValueError, match=rf"^{tmp_path / name}: {message}") as info:
            read(tmp_path / name)
        assert "\n" not in str(info.value) and "pickle" not in str(info.value)


LAMMPS_DUMP = """ITEM: TIMESTEP
0
ITEM: NUMBER OF ATOMS
3
ITEM: BOX BOUNDS pp pp pp
0 6
0 6
0 6
ITEM: ATOMS id type x y z
1 1 0.0 0.0 0.0
2 2 1.5 0.0 0.0
3 1 0.0 2.35 0.0
"""


def test_lammps_dump_types_become_the_named_species(tmp_path):
    path = tmp_path / "run.lammpstrj"
    path.write_text(LAMMPS_DUMP)
    traj = read(path, format="lammps-dump-text", species=["Si", "O"])
    np.testing.assert_array_equal(traj.numbers, [14, 8, 14])
    np.testing.assert_allclose(traj.positions[0, 2], [0.0, 2.35, 0.0])
    with pytest.warns(UserWarning, match=r"run.lammpstrj: a LAMMPS dump holds atom types"):
        assert read(path, format="lammps-dump-text").numbers[0] == 1  # ASE's default: H
    with pytest.raises(ValueError, match=r"^species: expected element symbols"):
        read(path, format="lammps-dump-text", species=["Xx"])
    with pytest.raises(ValueError, match=r"^species: only for LAMMPS dump files"):
        read(tmp_path / "run.lammpstrj", format="extxyz", species=["Si"])


def test_constructor_checks():
    with pytest.raises(ValueError, match=r"^trajectory: no frames$"):
        Trajectory(np.zeros((0, 3, 3)), np.eye(3), [14] * 3)
    with pytest.raises(ValueError, match=r"^trajectory: 2 atomic numbers for 3 atoms$"):
        Trajectory(np.zeros((1, 3, 3)), np.eye(3), [14] * 2)
    with pytest.raises(ValueError, match=r"^trajectory: frame 0 is periodic but has no cell"):
        Trajectory(np.zeros((1, 3, 3)), np.zeros((3, 3)), [14] * 3)
    # a non-periodic system may come without a cell
    assert len(Trajectory(np.zeros((1, 3, 3)), np.zeros((3, 3)), [14] * 3, pbc=False)) == 1


def test_top_level_exports():
    assert repap.read is read and repap.Trajectory is Trajectory


def test_single_frame_formats(tmp_path, rng):
    traj = make_traj(rng, cell=np.diag([8.0, 9.0, 10.0]), energy=False)
    traj[:1].write(tmp_path / "POSCAR")
    np.testing.assert_allclose(read(tmp_path / "POSCAR").positions, traj.positions[:1], atol=1e-6)
    with pytest.raises(ValueError, match=r"POSCAR: this format holds one frame, the trajectory"):
        traj.write(tmp_path / "POSCAR")
    with pytest.raises(ValueError, match=r"t.weird: unknown or read-only file format"):
        traj.write(tmp_path / "t.weird")


def test_an_index_that_selects_nothing_names_the_file(tmp_path):
    positions = np.tile(np.array([[0.0, 0, 0], [1, 1, 1]]), (3, 1, 1))
    traj = repap.Trajectory(positions, np.eye(3) * 5, [14, 14])
    traj.write(tmp_path / "t.npz")
    with pytest.raises(ValueError, match=r"t.npz: index '9:' selects none of its 3 frames"):
        repap.read(tmp_path / "t.npz", index="9:")
    assert len(repap.read(tmp_path / "t.npz", index="1:")) == 2
