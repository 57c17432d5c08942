"""repap.rdf against ASE's get_rdf, a plain numpy reference and a brute-force image sum."""

import itertools

import numpy as np
import pytest
from ase import Atoms
from ase.geometry.rdf import get_rdf

import repap
from repap.analysis import radial as rdf_module
from repap.analysis.radial import rdf

CUBIC = np.eye(3) * 9.0
TRICLINIC = np.array([[9.0, 0.0, 0.0], [2.0, 8.5, 0.0], [-1.0, 1.5, 10.0]])


def numpy_rdf(positions, cell, rmax, nbins, images=1):
    """All ordered pairs over explicit lattice translations -images..images, ASE's bins."""
    pos = np.atleast_3d(positions) if positions.ndim == 3 else positions[None]
    dr = float(rmax / nbins)
    edges = np.linspace(0, rmax, nbins + 1)
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    shifts = np.array(list(itertools.product(range(-images, images + 1), repeat=3))) @ cell
    out = []
    for frame in pos:
        d = frame[None, :, None, :] - frame[:, None, None, :] + shifts[None, None]
        r = np.linalg.norm(d, axis=-1).ravel()
        k = np.ceil(r[r > 0] / dr).astype(int)
        hist = np.bincount(k[k <= nbins], minlength=nbins + 1)[1:]
        n = len(frame)
        out.append(hist / (n * n / abs(np.linalg.det(cell)) * shells))
    return np.mean(out, axis=0)


@pytest.mark.parametrize("cell", [CUBIC, TRICLINIC], ids=["cubic", "triclinic"])
@pytest.mark.parametrize("frames", [1, 5])
def test_equals_ase_and_numpy(rng, cell, frames):
    pos = rng.random((frames, 40, 3)) @ cell
    r, g = rdf(pos if frames > 1 else pos[0], cell, rmax=3.9, nbins=60)
    g_ase, r_ase = get_rdf([Atoms("Si40", positions=p, cell=cell, pbc=True) for p in pos], 3.9, 60)
    np.testing.assert_allclose(r, r_ase, rtol=0, atol=1e-12)
    np.testing.assert_allclose(g, g_ase, rtol=0, atol=1e-9)
    np.testing.assert_allclose(g, numpy_rdf(pos, cell, 3.9, 60), rtol=0, atol=1e-9)
    assert g.sum() > 0  # something was counted


def test_partial_rdf_equals_ase(rng):
    numbers = rng.choice([8, 14], 40)
    pos = rng.random((3, 40, 3)) @ TRICLINIC
    frames = [Atoms(numbers=numbers, positions=p, cell=TRICLINIC, pbc=True) for p in pos]
    for pair in [(8, 14), (14, 8), (14, 14)]:
        _, g = rdf(pos, TRICLINIC, 3.9, 50, pairs=pair, numbers=numbers)
        g_ase, _ = get_rdf(frames, 3.9, 50, elements=pair)
        np.testing.assert_allclose(g, g_ase, rtol=0, atol=1e-9)


def test_rmax_beyond_half_the_cell_sums_images(rng):
    cell = np.array([[5.0, 0.0, 0.0], [1.0, 5.5, 0.0], [0.5, -0.8, 6.0]])
    pos = rng.random((2, 12, 3)) @ cell
    _, g = rdf(pos, cell, rmax=7.0, nbins=70)
    np.testing.assert_allclose(g, numpy_rdf(pos, cell, 7.0, 70, images=3), rtol=0, atol=1e-9)
    with pytest.raises(Exception, match="not large enough"):  # ASE refuses this rmax
        get_rdf(Atoms("Si12", positions=pos[0], cell=cell, pbc=True), 7.0, 70)


def test_per_frame_cells(rng):
    cells = TRICLINIC * rng.uniform(0.9, 1.1, (3, 1, 1))
    pos = np.einsum("fni,fij->fnj", rng.random((3, 30, 3)), cells)
    _, g = rdf(pos, cells, 3.5, 40)
    expected = np.mean([numpy_rdf(p, c, 3.5, 40) for p, c in zip(pos, cells, strict=True)], 0)
    np.testing.assert_allclose(g, expected, rtol=0, atol=1e-9)


def test_cell_list_equals_all_pairs(rng, monkeypatch):
    cell = np.array([[24.0, 0.0, 0.0], [3.0, 23.0, 0.0], [-2.0, 1.0, 25.0]])
    pos = rng.random((1, 3000, 3)) @ cell
    _, g_cells = rdf(pos, cell, 6.0, 80)  # one large frame: the cell list
    monkeypatch.setattr(rdf_module, "_CELL_LIST_MIN_ATOMS", 10**9)
    _, g_pairs = rdf(pos, cell, 6.0, 80)
    np.testing.assert_allclose(g_cells, g_pairs, rtol=0, atol=1e-9)


def test_ideal_gas_tends_to_one(rng):
    pos = rng.random((200, 100, 3)) @ CUBIC
    _, g = rdf(pos, CUBIC, 4.4, 20)
    assert np.abs(g[5:] - 1).max() < 0.05  # inner shells are noisier


def test_trajectory_input_and_non_periodic(rng):
    traj = repap.Trajectory(rng.random((4, 20, 3)) @ CUBIC, CUBIC, [14] * 20)
    np.testing.assert_array_equal(
        rdf(traj, rmax=4.0, nbins=30)[1], rdf(traj.positions, CUBIC, 4.0, 30)[1]
    )
    open_traj = repap.Trajectory(traj.positions, CUBIC, [14] * 20, pbc=False)
    atoms = [Atoms("Si20", positions=p, cell=CUBIC, pbc=False) for p in traj.positions]
    np.testing.assert_allclose(
        rdf(open_traj, rmax=4.0, nbins=30)[1], get_rdf(atoms, 4.0, 30)[0], atol=1e-9
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rmax": 0.0}, r"^rmax: expected a positive number, got 0.0$"),
        ({"nbins": 0}, r"^nbins: expected a positive integer, got 0$"),
        ({"cell": np.zeros((3, 3))}, r"^cell: singular \(volume 0\) or not finite$"),
        ({"positions": np.full((5, 3), np.nan)}, r"^positions: contain NaN or infinite values$"),
        ({"pairs": (8, 14)}, r"^pairs: partial RDFs need numbers="),
    ],
)
def test_errors(kwargs, message):
    args = {
        "positions": np.zeros((5, 3)) + np.arange(5)[:, None],
        "cell": CUBIC,
        "rmax": 3.0,
        "nbins": 10,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        rdf(**args)
