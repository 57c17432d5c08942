"""How close to a sound network must a structure be to relax into one? The 29 held-out
networks of the shipped 64-atom set: one 300 K frame of each, every coordinate moved by
Gaussian noise of SIGMA A, relaxed (SW) and matched against the network it came from; beside
it the k-th neighbour distances (k = 1..6) of the unrelaxed structures, the same for random
structures (min 2 A) and for structures of the shipped ``networks-64`` model. Run:
``.venv/bin/python research/network-models/network_basin.py OUT.json``."""

import json
import sys

import numpy as np
from ase.neighborlist import neighbor_list

import repap
from repap.analysis.networks import group
from repap.evaluation.baselines import random_min_distance
from repap.sim.relaxation import relax

SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def neighbour_shells(traj) -> list[float]:
    """Mean distance of each atom's k-th nearest neighbour, k = 1..6 (A)."""
    rows = []
    for atoms in traj.to_atoms():
        i, d = neighbor_list("id", atoms, 5.0)
        rows += [np.sort(d[i == n])[:6] for n in range(len(atoms))]
    return np.mean(rows, axis=0).round(3).tolist()


if __name__ == "__main__":
    nset = repap.reference_set()
    held = np.flatnonzero(nset.heldout)
    own = group(nset.inherent_structures("heldout"))  # network k of the held-out ones
    frames = np.array([nset.system(int(k)).positions[100] for k in held])
    rng = np.random.default_rng(0)
    out = {"noise": {}}
    for sigma in SIGMAS:
        moved = frames + rng.normal(0.0, sigma, frames.shape)
        start = repap.Trajectory(moved, nset.cell, nset.numbers, nset.pbc)
        r = relax(start, progress=False)
        same = own.match(r.structures) == own.labels
        out["noise"][sigma] = {
            "same_network": float(same.mean()),
            "energy_IS_eV": float(np.mean(r.energy_after)),
            "neighbour_shells_A": neighbour_shells(start),
        }  # fmt: skip
        print(sigma, out["noise"][sigma], flush=True)
    rand = random_min_distance(len(held), nset.cell, nset.numbers, min_dist=2.0, seed=0)
    out["random_shells_A"] = neighbour_shells(rand)
    ens = repap.pretrained("networks-64").sample(len(held), seed=0, min_dist=2.0)
    out["networks64_shells_A"] = neighbour_shells(ens)
    print(out["random_shells_A"], out["networks64_shells_A"])
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)
