"""RDF: repap.rdf (Numba) against freud, ASE and MDAnalysis, in one run, 2 threads.

(a) many small frames: the shipped a-Si, 40,000 frames of 30 atoms, rmax 4.2 A, 100 bins
    (REPAP_BENCH_RDF_FRAMES shrinks it; ASE and MDAnalysis get every 20th frame, scaled up);
(b) one frame of 100,000 atoms at a-Si density (0.05 / A^3), rmax 6 A, 100 bins.
Install the peers with ``pip install -e .[bench]`` (freud-analysis, MDAnalysis).
"""

import os

import numba
import numpy as np
import pytest

import repap
from repap.analysis.radial import rdf

FRAMES = int(os.environ.get("REPAP_BENCH_RDF_FRAMES", 40_000))
THREADS = 2
SLOW_PEER_STRIDE = 20  # ASE and MDAnalysis run on every 20th frame; times are scaled back up
numba.set_num_threads(THREADS)


@pytest.fixture(scope="module")
def small():
    traj = repap.reference()[:FRAMES]
    rdf(traj[:10], rmax=4.2, nbins=100)  # compile outside the timing
    return traj


@pytest.fixture(scope="module")
def large():
    rng = np.random.default_rng(0)
    length = (100_000 / 0.05) ** (1 / 3)
    pos = rng.random((100_000, 3)) * length
    rdf(pos[:3000], np.eye(3) * length, 6.0, 100)
    return pos, np.eye(3) * length


def freud_small(traj, threads=THREADS):
    import freud

    freud.parallel.set_num_threads(threads)
    box = freud.box.Box.from_matrix(traj.cell.T)
    calc = freud.density.RDF(bins=100, r_max=4.2)
    for frame in traj.positions:
        calc.compute((box, box.wrap(frame - traj.cell[0, 0] / 2)), reset=False)
    return calc.rdf


def ase_small(traj):
    from ase.geometry.rdf import get_rdf

    return get_rdf(list(traj[::SLOW_PEER_STRIDE]), 4.2, 100)[0]


def mda_universe(positions, cell):
    import MDAnalysis as mda

    n_frames, n_atoms = positions.shape[:2]
    u = mda.Universe.empty(n_atoms, trajectory=True)
    from MDAnalysis.coordinates.memory import MemoryReader

    dims = np.tile([cell[0, 0], cell[1, 1], cell[2, 2], 90, 90, 90], (n_frames, 1))
    u.load_new(positions.astype(np.float32), format=MemoryReader, dimensions=dims)
    return u


def mda_small(traj):
    from MDAnalysis.analysis.rdf import InterRDF

    u = mda_universe(traj.positions[::SLOW_PEER_STRIDE], traj.cell)
    calc = InterRDF(u.atoms, u.atoms, nbins=100, range=(0.0, 4.2), exclusion_block=(1, 1))
    calc.run()
    return calc.results.rdf


@pytest.mark.parametrize("peer", ["repap", "freud", "ase", "mdanalysis"])
def test_many_small_frames(benchmark, small, peer):
    benchmark.group = f"(a) {len(small)} frames x 30 atoms, rmax 4.2, 100 bins"
    if peer in ("ase", "mdanalysis"):
        benchmark.extra_info["scaled_from_every"] = SLOW_PEER_STRIDE
    fn = {
        "repap": lambda: rdf(small, rmax=4.2, nbins=100),
        "freud": lambda: freud_small(small),
        "ase": lambda: ase_small(small),
        "mdanalysis": lambda: mda_small(small),
    }[peer]
    benchmark.pedantic(fn, rounds=3 if peer == "repap" else 1, iterations=1)


@pytest.mark.parametrize("peer", ["repap", "freud"])
def test_many_small_frames_one_thread(benchmark, small, peer):
    """(a) with one thread each: the kernels themselves, no thread scheduling."""
    benchmark.group = f"(a) {len(small)} frames x 30 atoms, rmax 4.2, 100 bins, 1 thread"
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        fn = {"repap": lambda: rdf(small, rmax=4.2, nbins=100),
              "freud": lambda: freud_small(small, threads=1)}[peer]  # fmt: skip
        benchmark.pedantic(fn, rounds=3 if peer == "repap" else 1, iterations=1)
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("peer", ["repap", "freud", "ase", "mdanalysis"])
def test_one_large_frame(benchmark, large, peer):
    pos, cell = large
    benchmark.group = "(b) 1 frame x 100,000 atoms, rmax 6, 100 bins"

    def freud_large():
        import freud

        freud.parallel.set_num_threads(THREADS)
        box = freud.box.Box.from_matrix(cell.T)
        return freud.density.RDF(bins=100, r_max=6.0).compute((box, box.wrap(pos))).rdf

    def ase_large():
        from ase import Atoms
        from ase.geometry.rdf import get_rdf

        return get_rdf(Atoms(f"Si{len(pos)}", positions=pos, cell=cell, pbc=True), 6.0, 100)

    def mda_large():
        from MDAnalysis.analysis.rdf import InterRDF

        u = mda_universe(pos[None], cell)
        return InterRDF(u.atoms, u.atoms, nbins=100, range=(0.0, 6.0), exclusion_block=(1, 1)).run()

    fn = {
        "repap": lambda: rdf(pos, cell, 6.0, 100),
        "freud": freud_large,
        "ase": ase_large,
        "mdanalysis": mda_large,
    }[peer]
    benchmark.pedantic(fn, rounds=3 if peer in ("repap", "freud") else 1, iterations=1)
