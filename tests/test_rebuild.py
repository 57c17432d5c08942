"""Rebuilding a region of known networks: the hole and its fill keep every rule (checked with
ASE's minimum-image distances), what is kept is new, relaxed and under the ceiling (checked
with LAMMPS energies and the networks' fingerprints), chunked output resumes."""

import numpy as np
import pytest
from ase.geometry import get_distances

import repap
from repap.analysis.networks import distance, fingerprints
from repap.cli import main
from repap.errors import InputError
from repap.evaluation.network_report import CUTOFF
from repap.generation.rebuild import fill_uniform, holes, rebuild
from repap.sim.md import energy


@pytest.fixture(scope="module")
def networks():
    return repap.reference_set().inherent_structures("train")[:6]


def pair_distances(pos, cell):
    return get_distances(pos, cell=cell, pbc=True)[1]


def test_holes_move_the_atoms_nearest_a_defect_to_the_end(networks):
    rng = np.random.default_rng(0)
    sources = np.arange(12) % len(networks)
    pos, centre, radius = holes(networks, sources, 8, rng)
    cell = networks.cell
    for k, s in enumerate(sources):
        src = networks.positions[s]
        # the same atoms, reordered
        assert np.allclose(np.sort(pos[k], axis=0), np.sort(src, axis=0))
        assert np.allclose(centre[k], centre[k, 0]) and np.allclose(radius[k], radius[k, 0])
        r = get_distances(centre[k, 0], src, cell=cell, pbc=True)[1][0]
        assert np.allclose(np.sort(r)[:8], np.sort(get_distances(centre[k, 0], pos[k, -8:],
                           cell=cell, pbc=True)[1][0]))  # fmt: skip
        assert radius[k, 0] == pytest.approx(np.sort(r)[7])
        bonds = (pair_distances(src, cell) < CUTOFF).sum(1) - 1  # minus the atom itself
        at = int(np.argmin(r))
        assert r[at] == 0.0 and (bonds[at] != 4 or (bonds == 4).all())


def test_fill_keeps_the_network_and_no_pair_closer_than_min_dist(networks):
    rng = np.random.default_rng(1)
    sources = np.arange(20) % len(networks)
    pos, centre, radius = holes(networks, sources, 8, rng)
    new = fill_uniform(pos, 8, centre, radius, networks.cell, 2.0, rng)
    assert np.isfinite(new).all()
    assert np.array_equal(new[:, :-8], pos[:, :-8])  # the rest of the network untouched
    for k in range(len(new)):
        d = pair_distances(new[k], networks.cell)
        assert d[np.triu_indices(len(d), 1)].min() >= 2.0
        r = get_distances(centre[k, 0], new[k, -8:], cell=networks.cell, pbc=True)[1][0]
        assert (r <= radius[k] + 1e-9).all()
        assert not np.allclose(new[k, -8:], pos[k, -8:])


def test_fill_reports_a_hole_too_small_to_fill(networks):
    rng = np.random.default_rng(2)
    pos, centre, _ = holes(networks, np.arange(2), 8, rng)
    new = fill_uniform(pos, 8, centre, np.full((2, 8), 0.5), networks.cell, 2.0, rng)  # 8 in 0.5 A
    assert np.isnan(new).all()


def test_regions_are_separate_holes_each_around_its_own_centre():
    """Three holes of 8 atoms in 216-atom networks: disjoint, each the atoms nearest its
    centre of those in no earlier hole, the centre more than twice each earlier hole's radius
    from that hole's centre and a defect where such an atom is one; the fill keeps every
    atom in its own hole's sphere."""
    nets = repap.reference_set(atoms=216).inherent_structures("train")[:4]
    rng = np.random.default_rng(5)
    sources = np.arange(8) % len(nets)
    pos, centre, radius = holes(nets, sources, 8, rng, regions=3)
    assert centre.shape == (8, 24, 3) and radius.shape == (8, 24)
    cell, n = nets.cell, nets.n_atoms
    for k, s in enumerate(sources):
        src = nets.positions[s]
        assert np.allclose(np.sort(pos[k], axis=0), np.sort(src, axis=0))  # the same atoms
        defect = (pair_distances(src, cell) < CUTOFF).sum(1) - 1 != 4
        free = np.ones(n, bool)  # source atoms in no earlier hole
        allowed = np.ones(n, bool)  # ... and far enough from every earlier centre
        for j in range(3):
            c, atoms = centre[k, 8 * j], pos[k, n - 24 + 8 * j : n - 24 + 8 * (j + 1)]
            assert np.allclose(centre[k, 8 * j : 8 * j + 8], c)
            assert np.allclose(radius[k, 8 * j : 8 * j + 8], radius[k, 8 * j])
            r = get_distances(c, src, cell=cell, pbc=True)[1][0]
            at = int(np.argmin(r))
            assert r[at] == 0.0 and free[at] and allowed[at]  # (room in these cells)
            assert defect[at] or not (defect & free & allowed).any()
            mine = np.flatnonzero(free)[np.argsort(r[free], kind="stable")[:8]]
            got = get_distances(c, atoms, cell=cell, pbc=True)[1][0]
            assert np.allclose(np.sort(got), np.sort(r[mine]))
            assert radius[k, 8 * j] == pytest.approx(r[mine].max())
            free[mine] = False
            allowed &= r > 2 * radius[k, 8 * j]
    new = fill_uniform(pos, 24, centre, radius, cell, 2.0, rng)
    assert np.isfinite(new).all() and np.array_equal(new[:, :-24], pos[:, :-24])
    for k in range(len(new)):
        d = pair_distances(new[k], cell)
        assert d[np.triu_indices(n, 1)].min() >= 2.0
        for j in range(24):
            r = get_distances(centre[k, j], new[k, n - 24 + j], cell=cell, pbc=True)[1][0, 0]
            assert r <= radius[k, j] + 1e-9


def test_rebuild_keeps_new_relaxed_networks_under_the_ceiling(networks):
    out, summary = rebuild(networks, 4, hole=8, seed=3, batch=32)
    assert len(out) == 4 and summary["tried"] >= 4
    e = energy(out)  # LAMMPS, independently of the relaxation's record
    assert np.allclose(e, out.energy / out.n_atoms, atol=1e-6)
    per_atom = networks.energy / networks.n_atoms
    assert (e <= per_atom.mean() + per_atom.std() + 1e-9).all()
    fp_new, fp_old = fingerprints(out), fingerprints(networks)
    for i, f in enumerate(fp_new):  # none is one of the networks it was built from, or another
        assert distance(fp_old, f).min() > 0.01
        assert distance(np.delete(fp_new, i, 0), f).min() > 0.01
    d = np.stack([pair_distances(p, out.cell) for p in out.positions])
    assert (d + np.eye(out.n_atoms) * 9 > 2.0).all()  # sound: no two atoms on top of each other
    assert out.info["seconds_per_structure"] == pytest.approx(summary["seconds"] / 4)
    # each records its source, the network it lies on (closeness, aligned independently)
    from repap.analysis.closeness import closeness

    c = closeness(out, networks)
    assert out.info["source"] == c.nearest.tolist() and (c.atoms >= 0.8).all()


def test_rebuild_avoids_networks_made_before(networks):
    first, _ = rebuild(networks, 3, seed=4, batch=32)
    same, _ = rebuild(networks, 3, seed=4, batch=32)
    assert np.allclose(same.positions, first.positions)  # the draws repeat: avoid must act
    again, _ = rebuild(networks, 3, seed=4, batch=32, avoid=first)
    fp = fingerprints(first)
    for f in fingerprints(again):
        assert distance(fp, f).min() > 0.01


def test_bad_arguments_are_refused(networks):
    with pytest.raises(InputError, match="hole: expected 1 to 63"):
        rebuild(networks, 2, hole=64)
    with pytest.raises(InputError, match="min_dist"):
        rebuild(networks, 2, min_dist=0)
    with pytest.raises(InputError, match="hole, min_dist: no hole of 8"):
        rebuild(networks, 2, min_dist=4.0)  # 8 atoms 4 A apart fit no hole
    with pytest.raises(InputError, match="max_energy: 0 of 1 new networks"):
        rebuild(networks, 1, max_energy=-3.5, batch=16)
    with pytest.raises(InputError, match="regions: 8 holes of 8 atoms leave none"):
        rebuild(networks, 2, regions=8)
    with pytest.raises(InputError, match="seed"):
        rebuild(networks, 1, seed=-1)
    bare = repap.Trajectory(networks.positions, networks.cell, networks.numbers, networks.pbc)
    with pytest.raises(InputError, match="energies"):
        rebuild(bare, 2)


def test_cli_writes_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "new.npz"
    import repap.generation.rebuild as rb

    calls = []
    real = rb.rebuild

    def once_then_fail(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted in the second chunk
        return real(*args, **kwargs)

    monkeypatch.setattr(rb, "rebuild", once_then_fail)
    # --workers 1: in this process, where the test replaces rebuild
    argv = ["rebuild", "--out", str(out), "-n", "2", "--chunk", "1", "--quiet", "--seed", "7",
            "--workers", "1"]  # fmt: skip
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "interrupted; run the same command again to resume: finished chunks are kept" in err
    assert not out.exists() and len(list((tmp_path / "new.npz.parts").glob("chunk-*.npz"))) == 1
    again = []
    monkeypatch.setattr(rb, "rebuild", lambda *a, **k: again.append(k["seed"]) or real(*a, **k))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "new.npz.parts: resuming, 1 finished chunk(s) kept" in captured.err
    assert calls == [7, 8] and again == [8]  # the first chunk was not made again
    got = repap.read(out)
    assert len(got) == 2 and got.energy is not None
    assert len(got.info["source"]) == 2  # the chunks' sources, joined
    fp = fingerprints(got)
    assert distance(fp[0], fp[1]) > 0.01  # the resumed chunk avoided the one made before
    printed = captured.out
    assert "2 new networks" in printed and "not independent networks" in printed
    near = got.info["rebuild"]["closeness_to_source"]
    assert near["atoms_median"] >= 0.8  # a hole of 8 of 64 atoms: the rest stays
    assert not (tmp_path / "new.npz.parts").exists()
    assert main(["rebuild", "--out", str(tmp_path / "x.npz"), "--hole", "0"]) == 2
    assert "hole: expected 1 to 63" in capsys.readouterr().err


def test_cli_writes_frames_at_a_temperature(tmp_path, capsys):
    """--temperature 300: each new network as one 300 K frame of it (the same draws as
    without, then MD), its MD time counted in the cost; bad MD settings refused first."""
    plain, hot = tmp_path / "plain.npz", tmp_path / "hot.npz"
    argv = ["rebuild", "-n", "2", "--chunk", "1", "--quiet", "--seed", "7"]
    assert main([*argv, "--out", str(plain)]) == 0
    assert main([*argv, "--out", str(hot), "--temperature", "300", "--md-time", "0.2"]) == 0
    assert "as frames at 300 K" in capsys.readouterr().out
    a, b = repap.read(plain), repap.read(hot)
    assert np.abs(b.positions - a.positions).max() < 1.0  # the same atoms, thermally moved
    rise = (b.energy - a.energy) / a.n_atoms
    assert ((rise > 0.02) & (rise < 0.06)).all()  # ~3/2 kB T = 0.039 eV/atom
    assert b.info["rebuild"]["md_seconds"] > 0
    assert b.info["rebuild"]["seconds"] > b.info["rebuild"]["md_seconds"]
    assert main([*argv, "--out", str(tmp_path / "x.npz"), "--temperature", "300",
                 "--md-time", "0"]) == 2  # fmt: skip
    assert "md_time: expected a positive number, got 0.0" in capsys.readouterr().err
    assert not (tmp_path / "x.npz.parts").exists()


def test_cli_resumes_the_md_and_refuses_other_md_settings(tmp_path, capsys, monkeypatch):
    import repap.sim.md as md

    out = tmp_path / "hot.npz"
    real, calls = md.thermalize, []

    def once_then_fail(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted in the second chunk's MD
        return real(*args, **kwargs)

    monkeypatch.setattr(md, "thermalize", once_then_fail)
    # --workers 1: in this process, where the test replaces thermalize
    argv = ["rebuild", "--out", str(out), "-n", "2", "--chunk", "1", "--quiet", "--seed", "7",
            "--workers", "1", "--temperature", "300", "--md-time", "0.1"]  # fmt: skip
    assert main(argv) != 0
    parts = tmp_path / "hot.npz.parts"
    assert len(list(parts.glob("chunk-*.md.npz"))) == 1  # the first chunk's frames kept
    other = [*argv[:-1], "0.2"]
    assert main(other) == 2  # the parts were made with another --md-time
    assert "md_time" in capsys.readouterr().err
    again = []
    monkeypatch.setattr(md, "thermalize", lambda *a, **k: again.append(k["seed"]) or real(*a, **k))
    assert main(argv) == 0
    assert calls == [8, 9] and again == [9]  # seed + 1 + chunk: chunk 0's MD not run again
    assert len(repap.read(out)) == 2 and not parts.exists()


def test_md_settings_are_checked_before_any_rebuilding(tmp_path, capsys):
    base = ["rebuild", "-n", "2", "--quiet", "--out"]
    assert main([*base, str(tmp_path / "a.npz"), "--md-time", "0.5"]) == 2
    assert "md_time: only with temperature" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "b.npz"), "--temperature", "300",
                 "--seed", "899999998"]) == 2  # fmt: skip
    assert "seed: expected below 899999997 with temperature" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
