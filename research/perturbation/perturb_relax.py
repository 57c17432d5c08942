"""The bar a generative model must clear, short of learning anything: training networks
perturbed and relaxed. Each of N structures is the inherent structure of one of the 64-atom
set's training networks (in turn) with every coordinate moved by Gaussian noise of SIGMA A,
then relaxed (SW) and judged by the network-level report as generated structures are:
novelty against the training networks (the sources: a structure that relaxes back is not
new), uniqueness, quality beside the held-out networks and random + relax. How novelty trades
against quality as SIGMA grows says what "new networks of melt-quench quality" asks of a
model: to land within some tenths of an Angstrom of sound networks without landing in the
training ones. Here each structure has a source, atom for atom, so how new a new network is
can be told bond by bond too: the fraction of the source's bonds (within the report's 2.85 A)
that the relaxed structure keeps, and the bonds it gained, per atom. Run:

    .venv/bin/python research/perturbation/perturb_relax.py OUT.json [N SIGMA ...]

(resumable: sigmas already in OUT.json are kept)."""

import json
import sys
import time
from pathlib import Path

import numpy as np

import repap
from repap.analysis.networks import group
from repap.evaluation.baselines import perturbed
from repap.evaluation.network_report import CUTOFF, evaluate_networks, markdown
from repap.sim.relaxation import relax


def bonds(pos: np.ndarray, length: float) -> np.ndarray:
    """(F, N, N) bool: pairs closer than CUTOFF (minimum image, cubic cell)."""
    d = pos[:, :, None] - pos[:, None]
    r = np.linalg.norm(d - length * np.round(d / length), axis=-1)
    return (r < CUTOFF) & ~np.eye(pos.shape[1], dtype=bool)


def bond_changes(source: np.ndarray, moved: repap.Trajectory, known) -> dict:
    """Bonds of the source kept by the relaxed structures, over all and over the new ones
    (those ``known``, the training networks, does not match), and the bonds gained."""
    relaxed = relax(moved, progress=False).structures
    new = known.match(relaxed) == -1
    length = float(moved.cell[0, 0])
    a, b = bonds(source, length), bonds(relaxed.positions, length)
    kept = (a & b).sum((1, 2)) / a.sum((1, 2))
    gained = (b & ~a).sum((1, 2)) / 2 / moved.n_atoms
    return {"bonds_kept": float(kept.mean()), "bonds_kept_new": float(kept[new].mean()),
            "bonds_gained_per_atom_new": float(gained[new].mean())}  # fmt: skip


if __name__ == "__main__":
    path = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    sigmas = [float(s) for s in sys.argv[3:]] or [0.3, 0.4, 0.45, 0.5, 0.6]
    nset = repap.reference_set()
    held, train_set = nset.inherent_structures("heldout"), nset.subset("train")
    train = train_set.inherent_structures()  # the sources; novelty against all of them
    out = json.loads(path.read_text()) if path.is_file() else {}
    for sigma in sigmas:
        key = f"sigma={sigma:g}, n={n}"
        if key in out:
            continue
        t = time.perf_counter()
        ens = perturbed(train, n, sigma, seed=round(sigma * 1000))  # sources in turn
        ens.info["seconds_per_structure"] = (time.perf_counter() - t) / n
        report, _ = evaluate_networks(ens, held, train_set, baseline_size=200)
        report["sigma_A"] = sigma
        source = train.positions[np.arange(n) % len(train)]
        report["bonds"] = bond_changes(source, ens, group(train))
        out[key] = report
        path.write_text(json.dumps(out, indent=1, default=float) + "\n")
        print(f"== {key}\n{markdown(report)}\n{report['bonds']}\n", flush=True)
