"""The search from random structures: the bond switch is the Wooten-Winer-Weaire move
(checked geometrically), Metropolis at a vanishing temperature never goes uphill, energies
are LAMMPS's, the same seed gives the same networks, none is a training network's near-copy,
chunked output resumes and the CLI refuses bad arguments in one line."""

import numpy as np
import pytest

import repap
from repap.analysis.closeness import closeness
from repap.analysis.metrics import CUTOFF
from repap.cli import main
from repap.errors import InputError
from repap.generation.search import SearchOptions, search, switch_bond
from repap.sim.md import energy


@pytest.fixture(scope="module")
def train():
    return repap.reference_set().inherent_structures("train")


def vectors(pos, length):
    d = pos[None] - pos[:, None]
    return d - length * np.round(d / length)


def test_switch_turns_one_bond_towards_the_neighbours(train, rng):
    length = train.cell[0, 0]
    lengths = np.diag(train.cell)
    for k in range(10):
        pos = train.positions[k] % length
        new = switch_bond(pos, lengths, rng)
        shift = (new - pos + length / 2) % length - length / 2
        moved = np.flatnonzero(np.linalg.norm(shift, axis=-1) > 1e-9)
        assert len(moved) == 2  # B and C only
        b, c = moved
        before, after = vectors(pos, length), vectors(new, length)
        assert np.linalg.norm(before[b, c]) < CUTOFF  # a bond
        assert np.linalg.norm(after[b, c]) == pytest.approx(np.linalg.norm(before[b, c]))
        mid_shift = (new[b] + after[b, c] / 2) - (pos[b] + before[b, c] / 2)
        assert np.linalg.norm((mid_shift + length / 2) % length - length / 2) < 1e-9
        assert abs(before[b, c] @ after[b, c]) < 1e-9  # turned by 90 degrees
        # each end moved towards a neighbour of the other end: now within a bond of it
        bonded = np.linalg.norm(before, axis=-1) < CUTOFF
        near_b = np.linalg.norm(after[b], axis=-1) < np.linalg.norm(before[b], axis=-1)
        assert any(near_b[j] for j in np.flatnonzero(bonded[c]) if j != b)
        near_c = np.linalg.norm(after[c], axis=-1) < np.linalg.norm(before[c], axis=-1)
        assert any(near_c[j] for j in np.flatnonzero(bonded[b]) if j != c)


def test_search_goes_downhill_from_random_and_repeats_by_seed(train):
    opts = SearchOptions(moves_per_atom=0.5, t_start=1e-6, t_end=1e-6)
    out, s = search(train, 4, opts, seed=3)
    trace = np.array(s["energy_trace_eV_per_atom"])
    assert np.all(np.diff(trace) <= 1e-9)  # at T -> 0 no move uphill is kept
    assert trace[-1] < trace[0] - 0.01 and s["accepted"] > 0
    e = energy(out)  # LAMMPS, independently of the search's record
    np.testing.assert_allclose(e, out.energy / out.n_atoms, atol=1e-6)
    assert e.mean() < trace[0]
    assert s["converged"] == 4
    again, _ = search(train, 4, opts, seed=3)
    np.testing.assert_array_equal(again.positions, out.positions)
    other, _ = search(train, 4, opts, seed=4)
    assert not np.allclose(other.positions, out.positions)
    near = closeness(out, train)
    assert near.atoms.max() < 0.9  # none started from a training network


def test_refill_moves_and_model_starts(train):
    opts = SearchOptions(moves_per_atom=0.25, refill=1.0, start="model")
    starts = repap.pretrained("networks-64").sample(2, seed=0, min_dist=2.0, temperature=0.5,
                                                    progress=False)  # fmt: skip
    out, s = search(train, 2, opts, seed=1, starts=starts)
    assert len(out) == 2 and s["moves"] == 2 * 16 and np.isfinite(out.energy).all()
    with pytest.raises(InputError, match="starts: expected 3"):
        search(train, 3, opts, seed=1, starts=starts)


@pytest.mark.parametrize(
    "field, value, message",
    [("refill", 1.5, "refill: expected a fraction"), ("t_end", 1.0, "t_end: expected at most"),
     ("hole", 40, "hole: expected 1 to 31"), ("start", "melt", "start: expected one of"),
     ("moves_per_atom", -1, "moves_per_atom")],
)  # fmt: skip
def test_bad_options_are_refused(train, field, value, message):
    with pytest.raises(InputError, match=message):
        search(train, 1, SearchOptions(**{field: value}))


def test_cli_writes_and_resumes(tmp_path, capsys, monkeypatch):
    import repap.generation.search as sr

    out = tmp_path / "s.npz"
    real, calls = sr.search, []

    def once_then_fail(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sr, "search", once_then_fail)
    # --workers 1: in this process, where the test replaces search
    argv = ["search", "--out", str(out), "-n", "2", "--chunk", "1", "--moves-per-atom", "0.2",
            "--quiet", "--seed", "5", "--workers", "1"]  # fmt: skip
    assert main(argv) == 130
    assert not out.exists() and len(list((tmp_path / "s.npz.parts").glob("chunk-*.npz"))) == 1
    monkeypatch.setattr(sr, "search", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    assert main(argv) == 0
    assert calls == [5, 6, 6]  # the first chunk was not made again
    got = repap.read(out)
    assert len(got) == 2 and got.info["search"]["networks"] == 2
    printed = capsys.readouterr().out
    assert "2 networks" in printed and "held-out melt-quench networks: 0.5" in printed
    assert got.info["search"]["closeness"]["near_copy_share"] == 0.0
    assert main(["search", "--out", str(tmp_path / "x.npz"), "--refill", "2"]) == 2
    assert "refill: expected a fraction" in capsys.readouterr().err
    assert main(argv) == 2  # the output exists
