"""How far from the training networks `repap rebuild` can go when it rebuilds its own networks:
generation 1 is rebuilt from the set's training networks, generation g + 1 from the networks
of generation g, each kept under the training networks' energy ceiling and new against the
training networks and every generation made before. A rebuilt network keeps ~95 % of its
source's bonds (README, "Rebuilding one region"); the question is whether the lineage drifts
away from its root at the same quality and cost, or degrades (energy, rings, crystal-like
order). Per generation: the relaxed quality against the held-out networks, the fingerprint
distance to the nearest training network, the fraction of the root's bonds kept (the
training network whose atoms, matched one to one by position in its frame, share the most
bonds: rebuilding does not move the frame), the diamond-like fraction, tries and seconds per
network. Run:

    .venv/bin/python research/rebuild/rebuild_lineage.py OUT.json GENERATIONS PER_GENERATION [ATOMS]

(resumable: the networks of each generation are kept in build/lineage-ATOMS.npz and read
back, not made again)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

import repap
from repap.analysis.metrics import diamond_like_fraction
from repap.analysis.networks import fingerprints, group
from repap.analysis.radial import rdf
from repap.evaluation.network_report import CUTOFF, quality
from repap.generation.rebuild import rebuild
from repap.geometry import minimum_image_vectors


def bonds(pos: np.ndarray, cell: np.ndarray) -> np.ndarray:
    r = np.linalg.norm(minimum_image_vectors(pos[:, None] - pos[None], cell), axis=-1)
    return (r < CUTOFF) & ~np.eye(len(pos), dtype=bool)


def root_bonds_kept(nets: repap.Trajectory, roots: repap.Trajectory) -> np.ndarray:
    """Per network, the largest fraction of a root's bonds it keeps, atoms matched to the
    root's by a one-to-one assignment on minimum-image distance (no shift: same frame)."""
    cell = roots.frame_cells()[0]
    root_bonds = [bonds(p, cell) for p in roots.positions]
    out = np.empty(len(nets))
    for k, x in enumerate(nets.positions):
        best = 0.0
        for r, rb in zip(roots.positions, root_bonds, strict=True):
            cost = np.linalg.norm(minimum_image_vectors(x[:, None] - r[None], cell), axis=-1)
            row, col = linear_sum_assignment(cost)
            moved = np.empty_like(x)
            moved[col] = x[row]
            best = max(best, float((bonds(moved, cell) & rb).sum() / rb.sum()))
        out[k] = best
    return out


if __name__ == "__main__":
    path, generations, per = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    atoms = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    nset = repap.reference_set(atoms=atoms)
    train = nset.inherent_structures("train")
    held = nset.inherent_structures("heldout")
    e = train.energy / train.n_atoms
    ceiling = float(e.mean() + e.std())
    train_nets = group(train)
    _, g_ref = rdf(held, rmax=4.2, nbins=100)
    _, held_far = train_nets.nearest(held)
    out = json.loads(path.read_text()) if path.is_file() else {}
    store = Path(f"build/lineage-{atoms}.npz")
    made = dict(np.load(store)) if store.is_file() else {}
    if "held-out networks" not in out:
        row, _ = quality(held, g_ref, 4.2, 100)
        row["nearest_training_A"] = float(np.median(held_far))
        row["diamond_like_mean"] = float(diamond_like_fraction(held).mean())
        kept = root_bonds_kept(held, train)  # networks unrelated to any: the measure's floor
        row["root_bonds_kept"], row["root_bonds_kept_max"] = float(kept.mean()), float(kept.max())
        out["held-out networks"] = row
    avoid = [fingerprints(train)]
    sources = train
    for g in range(1, generations + 1):
        key = f"{atoms} atoms, generation {g}, n={per}"
        if key in out and f"{g}/positions" in made:
            sources = repap.Trajectory(made[f"{g}/positions"], train.cell, train.numbers,
                                       train.pbc, made[f"{g}/energy"])  # fmt: skip
            avoid.append(fingerprints(sources))
            continue
        ens, summary = rebuild(sources, per, max_energy=ceiling, seed=g,
                               avoid=np.concatenate(avoid), progress=True)  # fmt: skip
        row, _ = quality(ens, g_ref, 4.2, 100)
        _, far = train_nets.nearest(ens)
        kept = root_bonds_kept(ens, train)
        dl = diamond_like_fraction(ens)
        row.update(rebuild=summary, novelty=float(np.mean(far > train_nets.tolerance)),
                   nearest_training_A=float(np.median(far)),
                   novel_as_heldout=float(np.mean(far >= held_far.min())),
                   root_bonds_kept=float(kept.mean()), root_bonds_kept_min=float(kept.min()),
                   diamond_like_mean=float(dl.mean()),
                   diamond_like_max=float(dl.max()))  # fmt: skip
        out[key] = row
        made |= {f"{g}/positions": ens.positions, f"{g}/energy": ens.energy}
        store.parent.mkdir(exist_ok=True)
        np.savez(store, **made)
        path.write_text(json.dumps(out, indent=1, default=float) + "\n")
        brief = {k: row[k] for k in ("fourfold_fraction", "bond_angle_std_deg",
                                     "energy_mean_eV", "err_rdf_relaxed", "nearest_training_A",
                                     "root_bonds_kept", "diamond_like_mean")}  # fmt: skip
        print(f"== {key}: tried {summary['tried']}, {summary['seconds_per_network']:.3f} s "
              f"per network; {brief}", flush=True)  # fmt: skip
        avoid.append(fingerprints(ens))
        sources = ens
