"""A RePAP model that places each atom relative to an earlier one: a site proposal, then the
axis projections around it (issue 16; the pointer the local head and latent model left).

Atoms are in the paper's order within each network (distance to the origin). For atom i the
model picks an *anchor* among the atoms placed so far (trained to pick the nearest earlier
atom to atom i) from per-atom features (its radius against the last atom's, its bonds so far,
its neighbours, its distance to the last atom), then draws the offset from the anchor one
axis at a time, each a discretised Gaussian axis projection on a local grid of [-W, W) A in G
bins: dx, then dy given dx, then dz given both. Each axis's logits are a context term (an MLP
over the K nearest earlier atoms around the anchor, as vectors) plus a per-bin term that reads
histograms of the distances, in the axes drawn so far, from the candidate point to those
atoms (plain and weighted by their missing bonds), as the local head does. Trained by
cross-entropy against the Gaussian targets (sigma 0.1 A) on the shipped ``networks-64``
model's fit networks (``AUGMENT`` orderings of the first ``FRAMES`` frames), validated on its
validation networks. Generation rejects a proposal with an earlier atom closer than 2 A (a
structure whose atom finds no place in ``TRIES`` draws restarts); the order's own rule (no
nearer the origin than the last atom) is not enforced: per frame the training data breaks it
too (atoms at a face wrap), and enforced it kills nearly every structure. ``VARIANTS`` adds
rules beyond the model (anchors with a free bond, a-Si's bond/second-shell gap, SW-guided
choice among proposals). Run:

    .venv/bin/python research/site-model/site_model.py train OUT [AUGMENT FRAMES EPOCHS]
    .venv/bin/python research/site-model/site_model.py judge OUT [N TEMPERATURE VARIANT ...]

OUT/site.pt (a checkpoint per epoch, resumed), OUT/site-model.json (resumable): validation
NLL of the anchor and of each offset axis, the SW insertion energy checked against LAMMPS,
and per variant the network-level report of N structures at TEMPERATURE (relaxed, grouped,
novelty against the set's training networks, quality beside its held-out networks and
random + relax) with what the structures were before relaxation. Cubic cells only."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import repap
from repap.data.ensemble import Ensemble
from repap.data.sequences import prepare_networks
from repap.data.trajectory import Trajectory
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.generation.site_fill import (
    CENTRES,
    G,
    SiteModel,
    W,
    context,
    mic,
    place,
    radial_dir,
    state,
)
from repap.generation.site_fill import propose as site_propose
from repap.sim.md import POTENTIALS, energy

SIGMA = 0.1  # A: the axis projections' Gaussian
RESTARTS = 20
# the model and its features live in generation.site_fill (repap rebuild --fill site uses them)


def offsets_to_bins(off: torch.Tensor) -> torch.Tensor:
    return ((off + W) / (2 * W) * G).floor().clamp(0, G - 1).long()


def soft_targets(off: torch.Tensor) -> torch.Tensor:
    """(..., G) discretised Gaussians of SIGMA at the true offsets (the axis projections)."""
    z = (CENTRES - off[..., None]) / SIGMA
    p = torch.exp(-0.5 * z.square())
    return p / p.sum(-1, keepdim=True).clamp(min=1e-30)


def examples(frac: np.ndarray, length: float, lo: int, hi: int):
    """Teacher-forced examples for atoms 1 .. N-1 of sequences lo:hi: the state before each
    atom, the anchor (nearest earlier atom) and the offset to it."""
    pos = torch.from_numpy(np.ascontiguousarray(frac[lo:hi])).float() * length
    s, n, _ = pos.shape
    i = torch.arange(1, n)
    pos_e = pos[:, None].expand(s, n - 1, n, 3).reshape(-1, n, 3)
    placed = (torch.arange(n)[None, :] < i[:, None]).repeat(s, 1)
    last = (i - 1).repeat(s)
    target = i.repeat(s)
    feats, d, dist, cn, radius = state(pos_e, placed, last, length)
    rows = torch.arange(len(target))
    to_new = torch.where(placed, dist[rows, target], torch.inf)
    anchor = to_new.argmin(1)
    off = d[rows, anchor, target]
    flat, vecs, missing, valid = context(anchor, placed, d, dist, cn, radius, last, length)
    direction = radial_dir(pos_e[rows, anchor], length)
    return feats, placed, anchor, flat, direction, vecs, missing, valid, off


def losses(model: SiteModel, ex) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor NLL (E,), offset cross-entropy per axis (E, 3)) against the soft targets."""
    feats, placed, anchor, flat, direction, vecs, missing, valid, off = ex
    la = torch.log_softmax(model.anchor_logits(feats, placed), -1)
    anchor_nll = -la.gather(1, anchor[:, None]).squeeze(1)
    h = model.encode(flat, direction)
    kb = offsets_to_bins(off)
    out = []
    for a in range(3):
        logp = torch.log_softmax(model.axis_logits(a, h, kb, off, vecs, missing, valid), -1)
        out.append(-(soft_targets(off[:, a]) * logp).sum(-1))
    return anchor_nll, torch.stack(out, -1)


def validate(model: SiteModel, frac: np.ndarray, length: float) -> dict:
    """Validation NLL: the anchor (nats per atom) and each offset axis (nats per coordinate as
    a density: the true bin's log-probability less log(bin width in A)), and the mass within
    2 bins (0.16 A) of the true bin per axis."""
    sums, count = np.zeros(8), 0
    with torch.no_grad():
        for lo in range(0, len(frac), 16):
            ex = examples(frac, length, lo, lo + 16)
            feats, placed, anchor, flat, direction, vecs, missing, valid, off = ex
            la = torch.log_softmax(model.anchor_logits(feats, placed), -1)
            sums[0] += float(-la.gather(1, anchor[:, None]).sum())
            sums[7] += float((la.argmax(1) == anchor).sum())
            h = model.encode(flat, direction)
            kb = offsets_to_bins(off)
            for a in range(3):
                logp = torch.log_softmax(model.axis_logits(a, h, kb, off, vecs, missing, valid), -1)
                true = logp.gather(1, kb[:, a : a + 1]).squeeze(1)
                sums[1 + a] += float((-true + np.log(2 * W / G)).sum())
                near = (torch.arange(G)[None] - kb[:, a : a + 1]).abs() <= 2
                sums[4 + a] += float((logp.exp() * near).sum())
            count += len(anchor)
    s = sums / count
    return {"anchor_nll": s[0], "anchor_top1": s[7], "offset_nll_xyz": list(s[1:4]),
            "mass_near_true_xyz": list(s[4:7])}  # fmt: skip


@dataclass(frozen=True)
class Rules:
    """Generation options beyond the model: anchors only among atoms with a free bond;
    a-Si's pair rules (no pair in [gap[0], gap[1]) A, at most 4 bonds shorter than gap[0] per
    atom) while fewer than ``gap_until`` atoms are placed; ``guide`` proposals per atom of
    which the lowest SW insertion energy is kept (0: one, as drawn)."""

    open_only: bool = False
    gap: tuple[float, float] | None = None
    gap_until: int = 10**9
    guide: int = 0


VARIANTS = {
    "plain": Rules(),
    "open anchors": Rules(open_only=True),
    "open + gap rule to atom 50": Rules(open_only=True, gap=(2.7, 3.0), gap_until=50),
    "SW-guided, best of 8": Rules(guide=8),
}


def propose(model, p, pl, ls, length, inv_t, gen, min_dist, rules):
    """One proposal per row: anchor, then offset; (positions (B, 3), acceptable (B,))."""
    new, ok = site_propose(model, p, pl, ls, length, inv_t, gen, min_dist, rules.open_only)
    if rules.gap and pl.sum(1).max() < rules.gap_until:
        _, _, _, cn, _ = state(p, pl, ls, length)
        r_new = torch.where(pl, mic(p - new[:, None], length).norm(dim=-1), torch.inf)
        bonded = r_new < rules.gap[0]
        ok &= ~((r_new >= rules.gap[0]) & (r_new < rules.gap[1])).any(1)
        ok &= (bonded.sum(1) <= 4) & ~(bonded & (cn >= 4)).any(1)
    return new, ok


# Vink's Stillinger-Weber silicon, the relaxation's potential
EPS, SIG, A_CUT, LAM, GAM, COS0, A_SW, B_SW = (POTENTIALS["vink"][i] for i in range(8))
RC = A_CUT * SIG


def sw_insertion(
    p: torch.Tensor, pl: torch.Tensor, new: torch.Tensor, length: float
) -> torch.Tensor:
    """SW energy (eV) that atom ``new`` (B, 3) adds to the placed atoms of p (B, N, 3): its
    pair terms, the three-body terms centred on it and those centred on its neighbours."""
    v = mic(p - new[:, None], length)  # new -> j
    r = v.norm(dim=-1)
    nb = pl & (r < RC)
    rs = torch.where(nb, r, 2 * RC)
    e2 = A_SW * EPS * (B_SW * (SIG / rs) ** 4 - 1) * torch.exp(SIG / (rs - RC))
    e2 = torch.where(nb, e2, 0.0).sum(1)
    g = torch.where(nb, torch.exp(GAM * SIG / (rs - RC)), 0.0)  # (B, N)
    u = v / rs[..., None]
    cos = u @ u.transpose(1, 2)  # angle j-new-k
    e3 = (LAM * EPS * (cos - COS0).square() * g[:, :, None] * g[:, None, :]).triu(1).sum((1, 2))
    d = mic(p[:, None, :, :] - p[:, :, None, :], length)  # j -> k
    rjk = d.norm(dim=-1)
    nbj = pl[:, :, None] & pl[:, None, :] & (rjk < RC) & ~torch.eye(p.shape[1], dtype=torch.bool)
    gjk = torch.where(nbj, torch.exp(GAM * SIG / (torch.where(nbj, rjk, 2 * RC) - RC)), 0.0)
    ujk = d / torch.where(nbj, rjk, 1.0)[..., None]
    cos_j = (-u[:, :, None, :] * ujk).sum(-1)  # angle new-j-k: (j -> new) . (j -> k)
    e3j = (LAM * EPS * (cos_j - COS0).square() * g[:, :, None] * gjk).sum((1, 2))
    return e2 + e3 + e3j


def fill(
    propose_fn, pos: torch.Tensor, placed: torch.Tensor, start: int, length: float, guide: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place atoms start .. N-1 (``repap.generation.site_fill.place``); with ``guide``, that many
    proposals per atom of which the lowest SW insertion energy is kept."""
    return place(propose_fn, pos, placed, start, guide,
                 lambda p, pl, new: sw_insertion(p, pl, new, length))  # fmt: skip


@torch.no_grad()
def generate(model: SiteModel, n: int, n_atoms: int, length: float, first: np.ndarray,
             seed: int = 0, min_dist: float = 2.0, temperature: float = 1.0,
             rules: Rules = Rules(), batch: int = 250) -> tuple[Ensemble, int]:  # fmt: skip
    """n structures and the number restarted; atom 0 at a first atom of the training
    sequences (``first`` (M, 3) A), then each atom by anchor and offset, redrawn on a clash
    (or a broken rule) up to TRIES times, else the structure restarts."""
    gen = torch.Generator().manual_seed(seed)
    out, redrawn_all, restarts_all, failed = [], [], [], []
    inv_t = 1.0 / temperature

    def proposal(rows, p, pl, ls):
        return propose(model, p, pl, ls, length, inv_t, gen, min_dist, rules)

    pbar = tqdm(total=n, desc="site model", unit="structure", leave=False)
    done = 0
    while done < n:
        b = min(batch, n - done)
        pos = torch.zeros(b, n_atoms, 3)
        pos[:, 0] = torch.from_numpy(first[torch.randint(len(first), (b,), generator=gen)]).float()
        placed = torch.zeros(b, n_atoms, dtype=torch.bool)
        placed[:, 0] = True
        alive, redrawn = fill(proposal, pos, placed, 1, length, rules.guide)
        for k in range(b):
            if alive[k]:
                out.append(pos[k].numpy())
                redrawn_all.append(int(redrawn[k]))
            else:
                failed.append(done + k)
        kept = int(alive.sum())
        restarts_all.append(b - kept)
        pbar.update(kept)
        done += kept
        if sum(restarts_all) > RESTARTS * n:
            raise RuntimeError("site model: too many structures found no place for an atom")
    pbar.close()
    cell = np.eye(3) * length
    return Ensemble(np.stack(out), cell, np.full(n_atoms, 14), np.ones(3, bool), None, {},
                    index=np.arange(n), redrawn=np.array(redrawn_all),
                    restarts=np.zeros(n, np.int64),
                    failed_redrawn=np.zeros(0, np.int64), failed_restarts=np.zeros(0, np.int64),
                    failed=np.zeros(0, np.int64)), len(failed)  # fmt: skip


def train(out: Path, augment: int, frames: int, epochs: int) -> None:
    """Fit on the shipped model's fit networks; a checkpoint after every epoch (resumed)."""
    nset, (fit_ids, val_ids) = repap.reference_set(), split_ids()
    length = float(nset.cell[0, 0])
    val = prepare_networks(nset, val_ids, 0, 0, 10).seqs.frac
    fit = prepare_networks(nset, fit_ids, augment, 1, frames).seqs.frac
    torch.manual_seed(0)
    model = SiteModel()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    per_epoch = (len(fit) + 15) // 16
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * per_epoch,
                                                pct_start=0.05)  # fmt: skip
    saved = {"epoch": 0, "train_seconds": 0.0, "history": []}
    if (out / "site.pt").is_file():
        saved = torch.load(out / "site.pt", weights_only=False)  # our own file
        for obj, key in ((model, "state_dict"), (opt, "opt"), (sched, "sched")):
            obj.load_state_dict(saved[key])
    for epoch in range(saved["epoch"], epochs):
        start = time.perf_counter()
        model.train()
        order = np.random.default_rng(epoch).permutation(len(fit))
        for lo in tqdm(range(0, len(fit), 16), desc=f"epoch {epoch}", leave=False):
            anchor_nll, axes = losses(model, examples(fit[order[lo : lo + 16]], length, 0, 16))
            loss = anchor_nll.mean() + axes.sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        saved["history"].append(validate(model, val, length))
        saved.update(
            epoch=epoch + 1,
            state_dict=model.state_dict(),
            opt=opt.state_dict(),
            sched=sched.state_dict(),
            augment=augment,
            frames=frames,
            fit_sequences=len(fit),
            train_seconds=saved["train_seconds"] + time.perf_counter() - start,
        )
        torch.save(saved, out / "site.pt")
        print(epoch, saved["history"][-1], flush=True)


def split_ids() -> tuple[np.ndarray, np.ndarray]:
    seen = repap.pretrained("networks-64").meta["data"]  # the same fit / validation split
    return np.array(seen["networks_fit"]), np.array(seen["networks_val"])


def sw_energy(pos: np.ndarray, length: float) -> np.ndarray:
    """SW energy per atom (eV) of whole structures (F, N, 3): the atoms' insertion energies
    summed in order."""
    p = torch.from_numpy(np.asarray(pos)).float()
    e = torch.zeros(len(p))
    for m in range(1, p.shape[1]):
        placed = (torch.arange(p.shape[1]) < m).expand(len(p), -1)
        e += sw_insertion(p, placed, p[:, m], length)
    return (e / p.shape[1]).numpy()


def unrelaxed(ens: Trajectory, length: float) -> dict:
    """What the structures are before relaxation: SW energy, coordination within 2.6 A and
    its four-fold fraction, the mean k-th neighbour distances (k = 1..6)."""
    pos = ens.positions
    d = mic(torch.from_numpy(pos[:, :, None] - pos[:, None]).float(), length).norm(dim=-1)
    d += torch.eye(pos.shape[1]) * 1e9
    cn = (d < 2.6).sum(-1).float()
    return {"sw_energy_eV": float(energy(ens).mean()),
            "coordination": float(cn.mean()), "fourfold_fraction": float((cn == 4).float().mean()),
            "neighbour_shells_A": d.sort(-1).values[..., :6].mean((0, 1)).tolist()}  # fmt: skip


def judge(out: Path, n: int, temperature: float, names: list[str]) -> None:
    """The network-level report of each variant (resumable: variants done are kept)."""
    nset, (fit_ids, _) = repap.reference_set(), split_ids()
    length = float(nset.cell[0, 0])
    saved = torch.load(out / "site.pt", weights_only=False)  # our own file
    model = SiteModel()
    model.load_state_dict(saved["state_dict"])
    model.eval()
    first = prepare_networks(nset, fit_ids, 0, 0, 5).seqs.frac[:, 0] * length
    held, train_is = nset.inherent_structures("heldout"), nset.subset("train")
    path = out / "site-model.json"
    log = json.loads(path.read_text()) if path.is_file() else {"variants": {}}
    log.update({k: saved[k] for k in ("augment", "frames", "epoch", "fit_sequences",
                                      "train_seconds", "history")})  # fmt: skip
    frame = nset[:1]  # the SW insertion energies against LAMMPS
    log["sw_check_eV"] = [float(sw_energy(frame.positions % length, length)[0]) * nset.n_atoms,
                          float(energy(frame)[0]) * nset.n_atoms]  # fmt: skip
    for name in names:
        key = f"{name}, T={temperature:g}, n={n}"
        if key in log["variants"]:
            continue
        start = time.perf_counter()
        ens, restarted = generate(model, n, nset.n_atoms, length, first, 0, 2.0, temperature,
                                  VARIANTS[name])  # fmt: skip
        ens.info["seconds_per_structure"] = (time.perf_counter() - start) / n
        report, _ = evaluate_networks(ens, held, train_is, baseline_size=n)
        report["generation_summary"] = {**ens.summary(), "restarted": restarted}
        report["unrelaxed"] = unrelaxed(ens, length)
        log["variants"][key] = report
        path.write_text(json.dumps(log, indent=1, default=float) + "\n")
        print(key, json.dumps(report["unrelaxed"]), markdown(report), sep="\n", flush=True)


if __name__ == "__main__":
    what, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    if what == "train":
        train(out, *(int(a) for a in [*sys.argv[3:], "8", "10", "5"][:3]))
    else:
        args = sys.argv[3:]
        n, t = int(args[0]) if args else 1000, float(args[1]) if len(args) > 1 else 1.0
        judge(out, n, t, args[2:] or ["plain"])
