"""Does the score model beat the perturbation bar? (issue 16: "a model is worth its training
when it beats this curve"). SDEdit-style: each of N structures is a training network's
inherent structure with every coordinate moved by Gaussian noise of SIGMA A (exactly
research/perturbation/perturb_relax.py's, same seed), then, before relaxation, taken by the score
model (research/score-model/denoiser.py, trained on the training networks' 300 K frames) down the
reverse SDE from SIGMA to its smallest level and a last denoising step. The noise at SIGMA takes a
structure out of its source's basin (novelty); a perfect score would bring it to a sound network
near it, not necessarily the source. Both arms, relaxed as they are and denoised first, are judged
in one run by the network-level report against the held-out networks, with the source bonds
kept. Run:

    .venv/bin/python research/score-model/denoise_perturbed.py DN_DIR OUT.json [N LEVELS SIGMA ...]
    .venv/bin/python research/score-model/denoise_perturbed.py filter DN_DIR OUT.json \
        TRIES LEVELS SIGMA ...

The second is generate and filter, as repap rebuild does: every try relaxed and kept when it
is no training network, no higher than the training networks' mean + one standard deviation
and not a network kept before; the kept ones judged, with the tries and seconds (denoising
and relaxation) per kept network (resumable: rows already in OUT.json are kept)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

# the sibling studies this one imports from
sys.path[:0] = [str(Path(__file__).resolve().parents[1] / s) for s in ("perturbation",)]
from denoiser import SIG_MIN, Denoiser, load
from perturb_relax import bond_changes, bonds

import repap
from repap.analysis.networks import TOLERANCE, distance, fingerprints, group
from repap.data.trajectory import Trajectory
from repap.evaluation.baselines import perturbed
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.sim.relaxation import relax


@torch.no_grad()
def denoise(model: Denoiser, pos: np.ndarray, length: float, start: float, levels: int,
            seed: int = 0, batch: int = 100, ode: bool = False) -> np.ndarray:  # fmt: skip
    """Every atom of ``pos`` (B, N, 3), taken as a sample noised to ``start`` A, down the
    reverse variance-exploding SDE (ancestral steps on a geometric ladder to SIG_MIN; with
    ``ode`` its probability-flow ODE instead, no noise added), then a last Tweedie step."""
    gen = torch.Generator().manual_seed(seed)
    ladder = start * (SIG_MIN / start) ** (torch.arange(levels + 1) / levels)
    out = []
    for i in range(0, len(pos), batch):
        x = torch.remainder(torch.from_numpy(pos[i : i + batch]).float(), length)
        b = len(x)
        for k in range(levels):
            sig, nxt = float(ladder[k]), float(ladder[k + 1])
            score = -model(x, torch.full((b,), sig), length) / sig
            var = sig**2 - nxt**2
            if ode:
                x = torch.remainder(x + 0.5 * var * score, length)
            else:
                x = torch.remainder(
                    x + var * score + math.sqrt(var) * torch.randn(x.shape, generator=gen), length
                )
        s = torch.full((b,), float(ladder[-1]))
        out.append(torch.remainder(x - float(ladder[-1]) * model(x, s, length), length).numpy())
    return np.concatenate(out).astype(np.float64)


def kept_distinct(s: Trajectory, fp: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Indices of ``good`` whose fingerprints differ from every earlier kept one."""
    keep: list[int] = []
    for i in np.flatnonzero(good):
        if not keep or distance(fp[keep], fp[i]).min() > TOLERANCE:
            keep.append(int(i))
    return np.asarray(keep, dtype=int)


def filtered() -> None:
    dn, path, tries, levels = Path(sys.argv[2]), Path(sys.argv[3]), *map(int, sys.argv[4:6])
    sigmas = [float(a) for a in sys.argv[6:]]
    model = load(dn)
    nset = repap.reference_set()
    held, train_set = nset.inherent_structures("heldout"), nset.subset("train")
    train = train_set.inherent_structures()
    length, known = float(nset.cell[0, 0]), group(train)
    e = train.energy / train.n_atoms
    ceiling = float(e.mean() + e.std())
    source = train.positions[np.arange(tries) % len(train)]
    out = json.loads(path.read_text()) if path.is_file() else {}
    for sigma in sigmas:
        moved = perturbed(train, tries, sigma, seed=round(sigma * 1000))
        for arm in ("noise only", f"SDE, {levels} levels", f"ODE, {levels} levels"):
            key = f"filter: sigma={sigma:g}, {tries} tries: {arm}"
            if key in out:
                continue
            t = time.perf_counter()
            pos = moved.positions
            if arm != "noise only":
                pos = denoise(model, pos, length, sigma, levels, ode=arm.startswith("ODE"))
            made = time.perf_counter() - t
            r = relax(Trajectory(pos % length, moved.cell, moved.numbers, moved.pbc),
                      progress=False)  # fmt: skip
            seconds = time.perf_counter() - t
            s = r.structures
            fp = fingerprints(s)
            per = s.energy / s.n_atoms
            good = (known.match(fp) == -1) & (per <= ceiling) & (r.status == "converged")
            keep = kept_distinct(s, fp, good)
            row = {"tries": tries, "new": float(np.mean(known.match(fp) == -1)),
                   "kept": len(keep), "ceiling_eV": ceiling,
                   "seconds_denoise_per_try": made / tries,
                   "seconds_per_kept": seconds / max(len(keep), 1)}  # fmt: skip
            if len(keep):
                a, b = bonds(source[keep], length), bonds(s.positions[keep], length)
                row["source_bonds_kept"] = float(((a & b).sum((1, 2)) / a.sum((1, 2))).mean())
                row["bonds_gained_per_atom"] = float(((b & ~a).sum((1, 2)) / 2 / s.n_atoms).mean())
                ens = s[keep]
                ens.info["seconds_per_structure"] = row["seconds_per_kept"]
                report, _ = evaluate_networks(ens, held, train_set, baseline_size=100,
                                              perturbed=None)  # fmt: skip
                row["report"] = report
                print(f"== {key}\n{markdown(report)}", flush=True)
            out[key] = row
            path.write_text(json.dumps(out, indent=1, default=float) + "\n")
            print(f"== {key}: { ({k: v for k, v in row.items() if k != 'report'}) }", flush=True)


def main() -> None:
    torch.set_num_threads(1)
    if sys.argv[1] == "filter":
        return filtered()
    dn, path = Path(sys.argv[1]), Path(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    levels = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    sigmas = [float(s) for s in sys.argv[5:]] or [0.45, 0.5, 0.6]
    model = load(dn)
    nset = repap.reference_set()
    held, train_set = nset.inherent_structures("heldout"), nset.subset("train")
    train = train_set.inherent_structures()
    length = float(nset.cell[0, 0])
    known = group(train)
    source = train.positions[np.arange(n) % len(train)]
    out = json.loads(path.read_text()) if path.is_file() else {}
    for sigma in sigmas:
        moved = perturbed(train, n, sigma, seed=round(sigma * 1000))  # perturb_relax's
        arms = ("relaxed as perturbed", f"denoised, SDE ({levels} levels), then relaxed",
                f"denoised, ODE ({levels} levels), then relaxed")  # fmt: skip
        for arm in arms:
            key = f"sigma={sigma:g}, n={n}: {arm}"
            if key in out:
                continue
            t = time.perf_counter()
            ens = moved
            if arm.startswith("denoised"):
                pos = denoise(model, moved.positions, length, sigma, levels, ode="ODE" in arm)
                ens = Trajectory(pos, moved.cell, moved.numbers, moved.pbc)
            ens.info["seconds_per_structure"] = (time.perf_counter() - t) / n
            report, _ = evaluate_networks(ens, held, train_set, baseline_size=100, perturbed=None)
            report["sigma_A"] = sigma
            report["bonds"] = bond_changes(source, ens, known)
            out[key] = report
            path.write_text(json.dumps(out, indent=1, default=float) + "\n")
            print(f"== {key}\n{markdown(report)}\n{report['bonds']}\n", flush=True)


if __name__ == "__main__":
    main()
