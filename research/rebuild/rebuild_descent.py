"""Networks owing nothing to the training ones: random structures (no pair under 2 A)
relaxed, then rebuilt region by region downhill. `repap rebuild` keeps networks that are
neighbours of training networks (~95 % of a source's bonds kept); this asks whether its move,
a hole of HOLE atoms around a defect filled again and the whole structure relaxed, also works
as a descent from random + relax quality, and at what cost: each iteration makes TRIES
rebuilds of every structure and keeps the lowest, when lower than the structure's energy.
Per iteration: the mean energy, four-fold fraction, moves accepted, seconds per structure so
far; at the end, the structures relaxed to 1e-3 eV/A are judged as networks against the
held-out networks (novelty against the training ones), with the training network whose bonds
each keeps most (research/rebuild/rebuild_lineage.py's count; the held-out networks score 0.645 by
it).
Run:

    .venv/bin/python research/rebuild/rebuild_descent.py OUT.json N ITERATIONS TRIES [HOLE [FILL]]

FILL: uniform (default) or site, the learnt site model's fill (generation.site_fill) (resumable:
the structures after each iteration are kept in build/descent-N-TRIES-HOLE-FILL.npz)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from rebuild_lineage import root_bonds_kept
from tqdm import tqdm

import repap
from repap.data.trajectory import Trajectory
from repap.evaluation.baselines import random_min_distance
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.generation import site_fill
from repap.generation.rebuild import defects, fill_uniform, holes, wrapped
from repap.sim.relaxation import relax

SCREEN = 1e-2  # eV/A: every try is relaxed to this (repap rebuild's screen)


def step(cur: Trajectory, tries: int, hole: int, rng: np.random.Generator, site=None) -> tuple:
    """One iteration: ``tries`` rebuilds of every structure, the lowest kept when lower."""
    n_atoms, cell = cur.n_atoms, cur.frame_cells()[0]
    src = np.repeat(np.arange(len(cur)), tries)
    pos, centre, radius = holes(cur, src, hole, rng, defects(cur))
    if site is None:
        new = fill_uniform(pos, hole, centre, radius, cell, 2.0, rng)
    else:
        new = site_fill.fill(site, pos, hole, cell, 2.0, seed=int(rng.integers(2**62)))
    ok = np.flatnonzero(np.isfinite(new).all((1, 2)))
    r = relax(wrapped(new[ok], cur), fmax=SCREEN, progress=False)
    e = np.full(len(src), np.inf)
    e[ok] = np.where(r.status == "converged", r.structures.energy / n_atoms, np.inf)
    moved = np.full_like(new, np.nan)
    moved[ok] = r.structures.positions
    e, moved = e.reshape(len(cur), tries), moved.reshape(len(cur), tries, n_atoms, 3)
    best = e.argmin(1)
    lowest = e[np.arange(len(cur)), best]
    better = lowest < cur.energy / n_atoms - 1e-5
    pos = cur.positions.copy()
    pos[better] = moved[np.flatnonzero(better), best[better]]
    energy = np.where(better, lowest * n_atoms, cur.energy)
    out = Trajectory(pos, cur.cell, cur.numbers, cur.pbc, energy=energy)
    return out, float(better.mean())


def main() -> None:
    path, n, iterations, tries = Path(sys.argv[1]), *map(int, sys.argv[2:5])
    hole = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    fill = sys.argv[6] if len(sys.argv) > 6 else "uniform"
    site = site_fill.load() if fill == "site" else None
    nset = repap.reference_set()
    held, train_set = nset.inherent_structures("heldout"), nset.subset("train")
    state = Path(f"build/descent-{n}-{tries}-{hole}{'' if fill == 'uniform' else '-' + fill}.npz")
    log = json.loads(path.read_text()) if path.is_file() else {}
    key = f"n={n}, tries={tries}, hole={hole}" + ("" if fill == "uniform" else f", fill={fill}")
    row = log.get(key, {"iterations": [], "seconds": 0.0})
    if state.is_file():
        z = np.load(state)
        cur = Trajectory(z["positions"], nset.cell, nset.numbers, nset.pbc, energy=z["energy"])
    else:
        t = time.perf_counter()
        start = random_min_distance(n, nset.cell, nset.numbers, 2.0, seed=7, pbc=nset.pbc)
        cur = relax(start, fmax=SCREEN, progress=False).structures
        row["seconds"] = time.perf_counter() - t
    rng = np.random.default_rng(len(row["iterations"]))
    for it in tqdm(range(len(row["iterations"]), iterations), desc="descent"):
        t = time.perf_counter()
        cur, accepted = step(cur, tries, hole, rng, site)
        row["seconds"] += time.perf_counter() - t
        four, e = float((~defects(cur)).mean()), float(cur.energy.mean() / cur.n_atoms)
        row["iterations"].append({"iteration": it + 1, "energy_eV": e,
                                  "fourfold": four, "accepted": accepted,
                                  "seconds_per_structure": row["seconds"] / n})  # fmt: skip
        np.savez(state, positions=cur.positions, energy=cur.energy)
        log[key] = row
        path.write_text(json.dumps(log, indent=1, default=float) + "\n")
        print(f"== {row['iterations'][-1]}", flush=True)
    if "report" not in row:
        final = relax(cur, progress=False).structures
        final.info["seconds_per_structure"] = row["seconds"] / n
        report, _ = evaluate_networks(final, held, train_set, baseline_size=100, perturbed=None)
        kept = root_bonds_kept(final, train_set.inherent_structures())
        report["training_bonds_kept"] = {"mean": float(kept.mean()), "max": float(kept.max())}
        row["report"] = report
        log[key] = row
        path.write_text(json.dumps(log, indent=1, default=float) + "\n")
        print(markdown(report), report["training_bonds_kept"], flush=True)


if __name__ == "__main__":
    main()
