"""Relaxation of an ensemble to inherent structures: repap against ASE's optimisers driving LAMMPS.

20 thermal frames of the shipped 30-atom a-Si run (Vink's Stillinger-Weber), fixed cell, to a
largest force below 1e-3 eV/A. Peers, as a user of ASE writes it: ASE's BFGS and FIRE with
ASE's LAMMPSlib calculator, one LAMMPS instance per structure. ``extra_info`` holds ms per
structure and the mean final energy, so that every peer is seen to reach the same minimum.
Run: ``make bench`` or ``.venv/bin/pytest bench/bench_relax.py``.
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest

import repap
from repap.sim.md import _preload_mpi
from repap.sim.relaxation import Potential, relax

FMAX = 1e-3
FRAMES = 20


@pytest.fixture(scope="module")
def frames():
    return repap.reference(heldout=True)[:: 5000 // FRAMES][:FRAMES]


def ase_relax(frames, optimizer: str) -> np.ndarray:
    _preload_mpi()
    from ase.calculators.lammpslib import LAMMPSlib
    from ase.optimize import BFGS, FIRE

    opt_class = {"BFGS": BFGS, "FIRE": FIRE}[optimizer]
    energies = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "vink.sw")
        path.write_text(Potential.named("vink").files["vink.sw"])
        for atoms in frames:
            atoms.calc = LAMMPSlib(
                lmpcmds=["pair_style sw", f"pair_coeff * * {path} Si"],
                atom_types={"Si": 1}, log_file=None,
            )  # fmt: skip
            opt_class(atoms, logfile=None).run(fmax=FMAX, steps=5000)
            energies.append(atoms.get_potential_energy() / len(atoms))
    return np.array(energies)


def run(benchmark, fn):
    energies = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ms_per_structure"] = round(1e3 * benchmark.stats.stats.min / FRAMES, 2)
    benchmark.extra_info["energy_eV_per_atom"] = round(float(np.mean(energies)), 6)
    assert np.ptp(energies) < 1e-5  # one network: every frame reaches the same minimum


@pytest.mark.benchmark(group=f"relax {FRAMES} x 30-atom a-Si, fmax {FMAX} eV/A")
def test_repap_relax(benchmark, frames):
    run(benchmark, lambda: relax(frames, fmax=FMAX, progress=False).energy_after)


@pytest.mark.benchmark(group=f"relax {FRAMES} x 30-atom a-Si, fmax {FMAX} eV/A")
@pytest.mark.parametrize("optimizer", ["BFGS", "FIRE"])
def test_ase_with_lammps(benchmark, frames, optimizer):
    run(benchmark, lambda: ase_relax(list(frames), optimizer))
