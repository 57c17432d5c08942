"""Relaxation to inherent structures: against ASE's BFGS on the same LAMMPS potential, status
for every structure, custom potentials, resumable chunked output."""

import sys

import numpy as np
import pytest

import repap
from repap.cli import main
from repap.sim.md import _preload_mpi
from repap.sim.relaxation import Potential, Relaxed, relax


@pytest.fixture(scope="module")
def frames():
    return repap.reference(heldout=True)[::1250]  # 4 thermal frames of one network


def ase_bfgs(atoms, potential_file, fmax=1e-4):
    """Independent reference: ASE's BFGS driving LAMMPS through ASE's own calculator."""
    _preload_mpi()
    from ase.calculators.lammpslib import LAMMPSlib
    from ase.optimize import BFGS

    atoms = atoms.copy()
    atoms.calc = LAMMPSlib(
        lmpcmds=["pair_style sw", f"pair_coeff * * {potential_file} Si"],
        atom_types={"Si": 1}, log_file=None,
    )  # fmt: skip
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=2000)
    return atoms


def test_minimum_equals_ase_bfgs_on_the_same_potential(frames, tmp_path):
    pot = Potential.named("vink")
    (tmp_path / "vink.sw").write_text(pot.files["vink.sw"])
    ref = ase_bfgs(frames[0], tmp_path / "vink.sw")
    r = relax(frames[:1], fmax=1e-4, progress=False)
    assert r.status.tolist() == ["converged"] and r.fmax[0] < 1e-4
    e_ref = ref.get_potential_energy() / len(ref)
    assert abs(r.energy_after[0] - e_ref) < 1e-6
    d = r.structures.positions[0] - ref.positions
    frac = np.linalg.solve(frames.cell.T, d.T).T
    frac -= np.round(frac)  # same atoms, up to wrapping
    assert np.abs(frac @ frames.cell).max() < 1e-3


def test_thermal_frames_of_one_run_reach_one_minimum(frames):
    r = relax(frames, progress=False)
    assert (r.status == "converged").all() and (r.fmax < 1e-3).all()
    assert (r.energy_after < r.energy_before).all() and (r.steps > 0).all()
    assert np.ptp(r.energy_after) < 1e-6
    assert r.structures.energy is not None and len(r.structures) == len(frames)


def test_custom_pair_style_equals_the_built_in(frames, tmp_path):
    pot = Potential.named("sw")
    (tmp_path / "orig.sw").write_text(pot.files["sw.sw"])
    custom = relax(frames[:2], ("sw", f"* * {tmp_path / 'orig.sw'} Si"), progress=False)
    builtin = relax(frames[:2], "sw", progress=False)
    np.testing.assert_allclose(custom.energy_after, builtin.energy_after, rtol=0, atol=1e-9)
    vink = relax(frames[:2], "vink", progress=False)
    assert np.all(np.abs(vink.energy_after - builtin.energy_after) > 0.1)  # another potential


def test_every_structure_gets_a_status(frames):
    bad = repap.Trajectory(frames.positions[:3].copy(), frames.cell, frames.numbers, frames.pbc)
    bad.positions[1, 1] = bad.positions[1, 0]  # two atoms on top of each other
    r = relax(bad, max_steps=3, progress=False)
    assert r.status.tolist() == ["max_steps", "failed", "max_steps"]
    assert (r.steps[[0, 2]] == 3).all() and np.isnan(r.energy_after[1])
    assert r.summary()["failed"] == 1 and r.summary()["max_steps"] == 2


def test_cell_relaxation_lowers_the_energy_further(frames):
    fixed = relax(frames[:1], progress=False)
    free = relax(frames[:1], cell=True, progress=False)
    assert free.status[0] == "converged"
    assert free.energy_after[0] < fixed.energy_after[0] - 1e-4
    assert not np.allclose(free.structures.frame_cells()[0], frames.cell)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmax": 0}, "fmax: expected a positive"),
        ({"max_steps": 0}, "max_steps"),
        ({"potential": "lj"}, "potential: expected one of"),
    ],
)
def test_bad_arguments_are_refused(frames, kwargs, message):
    with pytest.raises(ValueError, match=message):
        relax(frames[:1], progress=False, **kwargs)


def test_cli_writes_resumes_and_refuses_other_arguments(frames, tmp_path, capsys, monkeypatch):
    module = sys.modules["repap.sim.relaxation"]

    src = tmp_path / "in.npz"
    frames.write(src)
    whole = tmp_path / "whole.npz"
    assert main(["relax", str(src), "--out", str(whole), "--chunk", "2", "--quiet"]) == 0
    assert "4 structures, 4 converged" in capsys.readouterr().out
    assert not (tmp_path / "whole.npz.parts").exists()
    expected = Relaxed.from_trajectory(repap.read(whole))

    real = module.relax
    chunks = []  # relax() calls that relax a chunk (not the one-step check of the potential)

    def counted(*args, **kwargs):
        if kwargs.get("max_steps") != 1:
            if len(chunks) == limit:
                raise KeyboardInterrupt
            chunks.append(1)
        return real(*args, **kwargs)

    out = tmp_path / "out.npz"
    monkeypatch.setattr(module, "relax", counted)
    limit = 1  # interrupted after the first chunk
    here = ["--workers", "1"]  # in this process, where the test replaces relax
    assert main(["relax", str(src), "--out", str(out), "--chunk", "2", "--quiet", *here]) == 130
    assert len(list((tmp_path / "out.npz.parts").glob("chunk-*.npz"))) == 1
    chunks.clear()
    limit = 2
    assert main(["relax", str(src), "--out", str(out), "--chunk", "2", "--quiet", *here]) == 0
    assert len(chunks) == 1  # only the chunk left to do
    got = Relaxed.from_trajectory(repap.read(out))
    np.testing.assert_array_equal(got.structures.positions, expected.structures.positions)
    assert got.status.tolist() == expected.status.tolist()

    other = tmp_path / "other.npz"
    (tmp_path / "other.npz.parts").mkdir()
    (tmp_path / "other.npz.parts" / "run.json").write_text("{}")
    (tmp_path / "other.npz.parts" / "chunk-000000.npz").write_bytes(b"that run's")
    assert main(["relax", str(src), "--out", str(other), "--quiet"]) == 2
    assert "finished chunk(s) of a run with other arguments" in capsys.readouterr().err
    assert main(["relax", str(src), "--out", str(whole), "--quiet"]) == 2  # never overwritten


def test_cli_db_output_and_a_bad_potential_leaves_nothing(frames, tmp_path, capsys):
    src = tmp_path / "in.extxyz"
    frames[:2].write(src)
    bad = tmp_path / "bad.npz"
    argv = ["relax", str(src), "--out", str(bad), "--quiet", "--pair-style", "sw",
            "--pair-coeff", "* * missing.sw Si"]  # fmt: skip
    assert main(argv) == 1
    assert "cannot open sw potential file missing.sw" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.extxyz"]  # no parts, no output
    import ase.db

    assert main(["relax", str(src), "--out", str(tmp_path / "r.db"), "--quiet"]) == 0
    rows = list(ase.db.connect(str(tmp_path / "r.db")).select())
    assert [r.status for r in rows] == ["converged"] * 2 and all(r.max_force < 1e-3 for r in rows)


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(tmp_path):
    """Issue 17's lost-output race: the output is locked by the run that holds it, against
    another process and within one; released, the same run may resume."""
    import subprocess
    import time

    from repap.jobs import claim_parts, output_job

    out = tmp_path / "out.npz"
    holder = subprocess.Popen(  # another process holds the output for a while
        [sys.executable, "-c", "import sys, time; from repap.jobs import output_job; "
         "job = output_job(sys.argv[1]); job.__enter__(); print('held', flush=True); "
         "time.sleep(30)", str(out)],
        stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match="another run is writing it"):
            with output_job(out):
                pass
        assert time.perf_counter() - t0 < 1.0  # refused at once, not after waiting
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    parts = tmp_path / "out.npz.parts"
    with output_job(out):  # the killed holder's lock went with it
        claim_parts(parts, {"a": 1})
        with pytest.raises(ValueError, match="another run is writing it"):
            with output_job(out):  # also a second hold within one process
                pass
    (parts / "chunk-000000.npz").write_bytes(b"done")
    with output_job(out):  # released: the same run may resume
        claim_parts(parts, {"a": 1})
    with output_job(out), pytest.raises(ValueError, match="of a run with other arguments"):
        claim_parts(parts, {"a": 2})
    assert not list(tmp_path.glob(".out.npz.lock"))  # released locks leave nothing behind
