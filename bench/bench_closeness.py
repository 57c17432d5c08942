"""Closeness of 64-atom networks to the shipped set's training networks: repap's voted and
refined alignment (repap.analysis.closeness) beside a brute-force search over every
translation that puts an atom on an atom, for the 48 cubic symmetries (numpy, one pair: the
measure as the issue "Networks as new as a melt-quench's" computed it independently). Same
matched count within one atom (tests/test_closeness.py checks it on small cells); the figure
to compare is seconds per pair. Run: ``.venv/bin/pytest bench/bench_closeness.py``."""

import numpy as np
import pytest

import repap
from repap.analysis.closeness import cell_symmetries, closeness

HELD = 20  # held-out networks against every training network


@pytest.fixture(scope="module")
def sets():
    s = repap.reference_set(atoms=64)
    train, held = s.inherent_structures("train"), s.inherent_structures("heldout")
    closeness(held[:1], train[:2])  # compiled outside the timing
    return train, held[:HELD]


def brute_force(a, b, length):
    best = 0
    for op in cell_symmetries(np.eye(3) * length):
        r = a @ op.T
        for t in (b[:, None] - r[None]).reshape(-1, 3):
            d = b[None] - (r + t)[:, None]
            d -= length * np.round(d / length)
            best = max(best, int((np.linalg.norm(d, axis=-1).min(1) <= 0.6).sum()))
    return best


def test_repap_closeness(benchmark, sets):
    train, held = sets
    c = benchmark.pedantic(closeness, args=(held, train), rounds=3, iterations=1)
    benchmark.extra_info["pairs"] = len(held) * len(train)
    assert 0.5 <= np.median(c.atoms) <= 0.65


def test_brute_force_one_pair(benchmark, sets):
    train, held = sets
    length = train.cell[0, 0]
    got = benchmark.pedantic(brute_force, args=(held.positions[0], train.positions[0], length),
                             rounds=1, iterations=1)  # fmt: skip
    benchmark.extra_info["pairs"] = 1
    assert got > 0
