"""Network-level evaluation of 2,000 structures of 64 atoms: time per stage.

The structures are 300 K frames of the 64-atom melt-quench runs in ``datasets/a-si-64-runs``
(``repap dataset``; skipped where absent): the first half of the runs serve as training data
for novelty, the rest as held-out networks. Stages (``report["seconds"]``): relaxation of the
ensemble, network identity (grouping, training and held-out networks), the random baseline
(200 structures relaxed), quality (coordination, angles, rings, relaxed RDF), S(Q), and the
CHGNet judge on 50 structures per ensemble (where ``repap[judge]`` is installed). One round:
the figures are the stage times printed and kept in ``extra_info``.
Run: ``.venv/bin/pytest bench/bench_evaluate.py -s``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import repap
from repap.evaluation.network_report import evaluate_networks

RUNS = Path(__file__).parent.parent / "datasets" / "a-si-64-runs"
N = 2000


@pytest.mark.skipif(len(list(RUNS.glob("run-*.npz"))) < 4, reason=f"no 64-atom runs in {RUNS}")
def test_evaluate_2000_structures_of_64_atoms(benchmark):
    runs = [repap.read(p) for p in sorted(RUNS.glob("run-*.npz"))]
    half = len(runs) // 2
    frames = np.concatenate([r.positions for r in runs])
    rng = np.random.default_rng(0)
    pick = rng.choice(len(frames), N, replace=len(frames) < N)
    ensemble = repap.Trajectory(frames[pick], runs[0].cell, runs[0].numbers)
    training = repap.Trajectory(np.concatenate([r.positions[::20] for r in runs[:half]]),
                                runs[0].cell, runs[0].numbers)  # fmt: skip
    heldout = repap.Trajectory(np.concatenate([r.positions[::20] for r in runs[half:]]),
                               runs[0].cell, runs[0].numbers)  # fmt: skip
    judge = importlib.util.find_spec("chgnet") is not None

    def run():
        return evaluate_networks(ensemble, heldout, training, judge=judge, judge_sample=50)

    report, _ = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update({f"{k}_s": round(v, 2) for k, v in report["seconds"].items()})
    print({k: round(v, 1) for k, v in report["seconds"].items()})
    row = report["networks"]["generated"]
    assert row["structures"] > 0.99 * N and 0 < row["novelty"] < 1
