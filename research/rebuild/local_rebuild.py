"""New networks by rebuilding one region of a training network, then relaxing (issue 16's
"model proposing changes to whole networks", in its simplest form). Each of N structures
starts from one of the 64-atom set's training networks (its inherent structure, in turn):
the HOLE atoms nearest a random atom are taken out and put back by one METHOD, the rest of
the network is kept as it is, and the whole is relaxed (SW) and judged by the network-level
report as generated structures are (novelty against all training networks, uniqueness,
quality beside the held-out networks, random + relax and training + noise).

METHODS put the hole's atoms back one at a time, none closer than 2 A to any atom:
- ``noise``: nothing taken out; the hole's atoms moved by Gaussian noise of NOISE A;
- ``random``: uniform in the hole's sphere (centre the chosen atom, radius the distance to
  the farthest atom taken out);
- ``site model``: the trained site model (research/site-model/site_model.py; anchors among
  atoms with a free bond, then the offset's axis projections) given everything placed so far;
- ``..., SW best of 8``: 8 proposals per atom, the lowest SW insertion energy kept; the
  random one is the peer that tells the model's share from the SW guidance's;
- ``..., kept if new and low``: generate and filter: holes rebuilt, relaxed, and kept when
  the relaxed structure is no training network and no higher in energy than the training
  networks' mean + one standard deviation (training data only), until N are kept; its cost
  counts every structure tried and relaxed;
- ``..., at a defect, ...``: the hole centred on an atom that is not four-fold (where the
  source has one) instead of any atom (what ``repap rebuild`` does, with its fill in numpy,
  distinct networks only and a relaxation screen; this script's rows keep their own draws).

The atoms kept are ordered from the farthest from the hole to the nearest, so the model's
"last atom placed" is the hole's nearest. Run:

    .venv/bin/python research/rebuild/local_rebuild.py OUT.json SITE.pt [N HOLE METHOD ...]

(resumable: entries already in OUT.json are kept; SITE.pt from ``site_model.py train``)."""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

# the sibling studies this one imports from
sys.path[:0] = [
    str(Path(__file__).resolve().parents[1] / s) for s in ("perturbation", "site-model")
]
from perturb_relax import bonds
from site_model import VARIANTS, SiteModel, fill, mic, propose

import repap
from repap.analysis.networks import group
from repap.data.trajectory import Trajectory
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.sim.relaxation import relax

NOISE = 0.7  # A
MIN_DIST = 2.0
ROUNDS = 20  # fills of a hole before giving up
METHODS = ["noise", "random", "random, SW best of 8", "site model", "site model, SW best of 8"]
KEPT = ", kept if new and low"  # a METHOD with this suffix: see kept_if_new_and_low
AT_DEFECT = ", at a defect"  # in a METHOD: the hole centred on an atom not four-fold


def holes(train: Trajectory, n: int, hole: int, seed: int, at_defect: bool = False):
    """Per structure: the source's positions reordered (kept atoms from the farthest from the
    centre to the nearest, then the hole's), the centre (3,) and the hole's radius. The
    centre is a random atom, or with ``at_defect`` a random one of those not four-fold
    (bonds within CUTOFF) where the source has any."""
    rng = np.random.default_rng(seed)
    length = float(train.cell[0, 0])
    src = train.positions[np.arange(n) % len(train)]
    pick = rng.integers(train.n_atoms, size=n)
    if at_defect:
        defect = bonds(train.positions, length).sum(-1) != 4
        weight = np.where(defect.any(1, keepdims=True), defect, 1.0)[np.arange(n) % len(train)]
        cum = np.cumsum(weight, 1)
        pick = (cum < rng.random((n, 1)) * cum[:, -1:]).sum(1)  # a defect atom, uniformly
    centre = src[np.arange(n), pick]
    d = np.linalg.norm(mic(torch.from_numpy(src - centre[:, None]), length).numpy(), axis=-1)
    order = np.argsort(-d, axis=1, kind="stable")  # hole last, its nearest atom at the end
    pos = np.take_along_axis(src, order[..., None], 1)
    return pos, centre, np.take_along_axis(d, order, 1)[:, -hole]


def rebuild(method: str, model: SiteModel, pos: np.ndarray, centre: np.ndarray,
            radius: np.ndarray, hole: int, length: float, seed: int) -> np.ndarray:  # fmt: skip
    """The structures with their last ``hole`` atoms put back by ``method``; a row that
    finds no place for an atom is filled again from its hole."""
    n, n_atoms = pos.shape[:2]
    if method == "noise":
        rng = np.random.default_rng(seed)
        out = pos.copy()
        out[:, -hole:] += rng.normal(0.0, NOISE, (n, hole, 3))
        return out % length
    gen = torch.Generator().manual_seed(seed)
    guide = 8 if method.endswith("best of 8") else 0
    rules = VARIANTS["open anchors"]
    out = torch.from_numpy(pos).float()
    todo = torch.arange(n)

    def by_model(rows, p, pl, ls):
        return propose(model, p, pl, ls, length, 1.0, gen, MIN_DIST, rules)

    centres, radii = torch.from_numpy(centre).float(), torch.from_numpy(radius).float()
    for _ in range(ROUNDS):
        if not len(todo):
            break
        p = out[todo].clone()
        placed = torch.arange(n_atoms).expand(len(todo), -1) < n_atoms - hole
        fn = by_model
        if not method.startswith("site model"):
            fn = partial(at_random, centres[todo], radii[todo], length, gen)
        alive, _ = fill(fn, p, placed, n_atoms - hole, length, guide)
        out[todo[alive]] = p[alive]
        todo = todo[~alive]
    else:
        raise RuntimeError(f"{method}: {len(todo)} holes found no fill in {ROUNDS} rounds")
    return out.numpy().astype(np.float64) % length


def at_random(centre, radius, length, gen, rows, p, pl, ls):
    """A point uniform in each row's hole sphere; acceptable where no atom is within
    MIN_DIST."""
    v = torch.randn(len(p), 3, generator=gen)
    v *= (radius[rows] * torch.rand(len(p), generator=gen) ** (1 / 3) / v.norm(dim=1))[:, None]
    new = torch.remainder(centre[rows] + v, length)
    r_new = torch.where(pl, mic(p - new[:, None], length).norm(dim=-1), torch.inf)
    return new, r_new.min(1).values >= MIN_DIST


def kept_if_new_and_low(
    method: str, model: SiteModel, train: Trajectory, n: int, hole: int, seed: int, at_defect: bool
) -> tuple[Trajectory, int, np.ndarray]:
    """Generate and filter: rebuild holes by ``method`` (fresh holes each round), relax, and
    keep the relaxed structures that are no training network and lie no higher than the
    training networks' mean energy + one standard deviation, until n are kept. Returns
    (those n, how many were tried, their sources in the same atom order)."""
    known, e_train = group(train), train.energy / train.n_atoms
    ceiling = e_train.mean() + e_train.std()
    length = float(train.cell[0, 0])
    kept: list[Trajectory] = []
    sources = []
    tried = 0
    while sum(map(len, kept)) < n:
        round_seed = seed + 1000 * (tried // n + 1)
        pos, centre, radius = holes(train, n, hole, round_seed, at_defect)
        new = rebuild(method, model, pos, centre, radius, hole, length, round_seed)
        r = relax(Trajectory(new, train.cell, train.numbers, train.pbc), progress=False)
        done = np.flatnonzero(r.status == "converged")
        s = r.structures[done]
        ok = np.flatnonzero((known.match(s) == -1) & (s.energy / s.n_atoms <= ceiling))
        if ok.size:  # a round may keep none (hole 16)
            kept.append(s[ok])
            sources.append(pos[done[ok]])
        tried += n
        print(f"{method}: kept {sum(map(len, kept))} of {tried}", flush=True)
    pos = np.concatenate([k.positions for k in kept])[:n]
    energy = np.concatenate([k.energy for k in kept])[:n]
    kept_traj = Trajectory(pos, train.cell, train.numbers, train.pbc, energy)
    return kept_traj, tried, np.concatenate(sources)[:n]


def bond_changes(source: np.ndarray, relaxed: np.ndarray, hole: int, length: float) -> dict:
    """Bonds of the source (F, N, 3) that the relaxed structures keep, and the bonds gained
    per atom, as research/perturbation/perturb_relax.py counts them; the atoms put back in the hole
    are matched to the source's hole atoms by the assignment nearest in total distance."""
    from scipy.optimize import linear_sum_assignment

    relaxed = relaxed.copy()
    for f in range(len(source)):
        d = source[f, -hole:, None] - relaxed[f, None, -hole:]
        cost = np.linalg.norm(d - length * np.round(d / length), axis=-1)
        relaxed[f, -hole:] = relaxed[f, -hole:][linear_sum_assignment(cost)[1]]
    a, b = bonds(source, length), bonds(relaxed, length)
    kept = (a & b).sum((1, 2)) / a.sum((1, 2))
    gained = (b & ~a).sum((1, 2)) / 2 / source.shape[1]
    return {"bonds_kept": float(kept.mean()), "bonds_gained_per_atom": float(gained.mean())}


if __name__ == "__main__":
    path, site = Path(sys.argv[1]), Path(sys.argv[2])
    args = sys.argv[3:]
    n = int(args[0]) if args else 1000
    sizes = [int(args[1])] if len(args) > 1 else [8, 16]
    methods = args[2:] or METHODS
    nset = repap.reference_set()
    held, train_set = nset.inherent_structures("heldout"), nset.subset("train")
    train = train_set.inherent_structures()
    length = float(nset.cell[0, 0])
    model = SiteModel()
    model.load_state_dict(torch.load(site, weights_only=False)["state_dict"])  # our own file
    model.eval()
    out = json.loads(path.read_text()) if path.is_file() else {}
    for hole in sizes:
        for method in methods:
            key = f"{method}, hole {hole}, n={n}"
            if key in out:
                continue
            t = time.perf_counter()
            tried, sources = n, None
            at_defect, base = AT_DEFECT in method, method.replace(AT_DEFECT, "")
            pos, centre, radius = holes(train, n, hole, hole, at_defect)
            with torch.no_grad():
                if base.endswith(KEPT):
                    ens, tried, sources = kept_if_new_and_low(base[: -len(KEPT)], model, train,
                                                              n, hole, hole, at_defect)  # fmt: skip
                else:
                    new = rebuild(base, model, pos, centre, radius, hole, length, seed=hole)
                    ens = Trajectory(new, train.cell, train.numbers, train.pbc)
            ens.info["seconds_per_structure"] = (time.perf_counter() - t) / n
            report, _ = evaluate_networks(ens, held, train_set, baseline_size=200)
            report.update(method=method, hole_atoms=hole, hole_radius_A=float(radius.mean()),
                          tried=tried)  # fmt: skip
            if sources is not None:
                report["bonds"] = bond_changes(sources, ens.positions, hole, length)
            out[key] = report
            path.write_text(json.dumps(out, indent=1, default=float) + "\n")
            print(f"== {key}\n{markdown(report)}\n", flush=True)
