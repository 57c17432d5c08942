"""A score-based (denoising diffusion) model of a-Si networks: every atom moves at once
(issue 16: a model that is not grown atom by atom, whose growth front froze the RePAP
models' mistakes). A small message-passing network reads the minimum-image distances between
all atoms of a noised structure and returns, per atom, a vector (a sum of unit pair vectors
weighted by learnt invariants: rotation-, translation- and permutation-equivariant), trained
by denoising score matching: positions of the 64-atom set's training frames plus Gaussian
noise of sigma (log-uniform in [SIG_MIN, SIG_MAX] A), the model predicting the noise. It
generates by annealed Langevin dynamics from uniform random positions down the sigma
ladder, then relaxes (SW), and is judged as networks against the held-out networks. Run:

    .venv/bin/python research/score-model/denoiser.py train OUT [STEPS]
    .venv/bin/python research/score-model/denoiser.py judge OUT [N CORRECTOR_STEPS LEVELS]
    .venv/bin/python research/score-model/denoiser.py fill OUT TRIES HOLE LEVELS START_SIGMA

OUT/denoiser.pt (checkpointed, resumed), OUT/denoiser.json: the held-out denoising loss
per sigma band, and the network-level report of N structures."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import repap
from repap.data.trajectory import Trajectory
from repap.evaluation.network_report import evaluate_networks, markdown

SIG_MIN, SIG_MAX = 0.02, 4.0  # A (4 A in the 10.86 A cell: nearly uniform)
CUT = 5.0  # A: messages between atoms closer than this (the cell is 10.86 A)
RBF, H, K, CV = 32, 64, 24, 16
BATCH, LR = 16, 2e-3


def mic(d: torch.Tensor, length: float) -> torch.Tensor:
    return d - length * torch.round(d / length)


class PairMLP(nn.Module):
    """MLP over [h_i, h_j, e_ij] (e: the pair's invariants) with its first layer split per
    node (computed once per atom, not per pair)."""

    def __init__(self, edge: int, out: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(H, H), nn.Linear(H, H, bias=False)
        self.r = nn.Linear(edge, H, bias=False)
        self.o = nn.Sequential(nn.SiLU(), nn.Linear(H, out))

    def forward(self, h: torch.Tensor, nb: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.o(self.a(h)[:, :, None] + gather(self.b(h), nb) + self.r(e))


def gather(v: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
    """Per atom i and neighbour slot k, v of neighbour nb[:, i, k]: (B, N, K, ...)."""
    b, n, k = nb.shape
    flat = nb.reshape(b, n * k)
    out = torch.gather(v, 1, flat.view(b, n * k, *([1] * (v.dim() - 2))).expand(
        -1, -1, *v.shape[2:]))  # fmt: skip
    return out.view(b, n, k, *v.shape[2:])


class Denoiser(nn.Module):
    """Invariant atom features h (H) and equivariant vector features V (CV x 3) per atom
    (PaiNN-like): each layer's pair MLP reads h_i, h_j, the distance's radial basis and the
    projections of V_i and V_j on the bond (bond angles enter there), gives messages for h
    and weights for new V (sums of weighted unit bond vectors); h reads |V|^2."""

    def __init__(self, layers: int = 3) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, CUT, RBF))
        self.sig = nn.Sequential(nn.Linear(1, H), nn.SiLU(), nn.Linear(H, H))
        edge = RBF + 2 * CV
        self.pair = nn.ModuleList(PairMLP(edge, H + CV) for _ in range(layers))
        self.upd = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * H + CV, H), nn.SiLU(), nn.Linear(H, H))
            for _ in range(layers)
        )
        self.out = PairMLP(edge, 1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, length: float) -> torch.Tensor:
        """x (B, N, 3) A, sigma (B,) A: the predicted noise (B, N, 3) in units of sigma."""
        b, n, _ = x.shape
        d = mic(x[:, None, :, :] - x[:, :, None, :], length)  # d[:, i, j] = x_j - x_i
        r = d.norm(dim=-1) + torch.eye(n) * 4 * CUT
        r, nb = torch.topk(r, K, dim=-1, largest=False)  # the K nearest of each atom
        d = torch.gather(d, 2, nb[..., None].expand(-1, -1, -1, 3))
        unit = d / r[..., None]
        fc = torch.where(r < CUT, 0.5 * (torch.cos(math.pi * r / CUT) + 1), 0.0)[..., None]
        width = (CUT / RBF) * (1 + sigma)[:, None, None, None]  # smoother when noisier
        rbf = torch.exp(-(((r[..., None] - self.centres) / width) ** 2)) * fc
        h = self.sig(torch.log(sigma)[:, None])[:, None, :].expand(b, n, H)
        v = torch.zeros(b, n, CV, 3)

        def edges(v):
            vi = torch.einsum("bnkx,bncx->bnkc", unit, v)
            vj = torch.einsum("bnkx,bnkcx->bnkc", unit, gather(v, nb))
            return torch.cat([rbf, vi, vj], -1)

        for pair, upd in zip(self.pair, self.upd, strict=True):
            out = pair(h, nb, edges(v)) * fc
            v = torch.einsum("bnkc,bnkx->bncx", out[..., H:], unit) / 4.0
            h = h + upd(torch.cat([h, out[..., :H].sum(2) / 8.0, (v * v).sum(-1)], -1))
        w = self.out(h, nb, edges(v)) * fc  # (B, N, K, 1)
        return -(w * unit).sum(2)  # eps points from clean to noised: minus the pull


def load(out: Path) -> Denoiser:
    """The trained model of OUT/denoiser.pt, in eval mode."""
    model = Denoiser()
    model.load_state_dict(torch.load(out / "denoiser.pt", weights_only=False)["state_dict"])
    return model.eval()


def noised(x: torch.Tensor, length: float, gen: torch.Generator):
    sigma = SIG_MIN * (SIG_MAX / SIG_MIN) ** torch.rand(len(x), generator=gen)
    eps = torch.randn(x.shape, generator=gen)
    return torch.remainder(x + sigma[:, None, None] * eps, length), sigma, eps


def data(which: str) -> tuple[torch.Tensor, float]:
    nset = repap.reference_set()
    sub = nset.subset(which)
    return torch.from_numpy(sub.positions).float(), float(nset.cell[0, 0])


def held_loss(model: Denoiser, x: torch.Tensor, length: float) -> dict:
    gen = torch.Generator().manual_seed(0)
    pick = x[torch.randperm(len(x), generator=gen)[:256]]
    out = {}
    with torch.no_grad():
        for lo, hi in [(0.02, 0.1), (0.1, 0.3), (0.3, 0.8), (0.8, 2.5)]:
            sigma = lo * (hi / lo) ** torch.rand(len(pick), generator=gen)
            eps = torch.randn(pick.shape, generator=gen)
            xt = torch.remainder(pick + sigma[:, None, None] * eps, length)
            pred = torch.cat([model(xt[i : i + 32], sigma[i : i + 32], length)
                              for i in range(0, len(pick), 32)])  # fmt: skip
            out[f"{lo}-{hi}"] = float(((pred - eps) ** 2).mean())
    return out


def train(out: Path, steps: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x, length = data("train")
    xh, _ = data("heldout")
    model = Denoiser()
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    ckpt, start = out / "denoiser.pt", 0
    log = {"held": []}
    if ckpt.is_file():
        c = torch.load(ckpt, weights_only=False)
        model.load_state_dict(c["state_dict"])
        opt.load_state_dict(c["opt"])
        start, log = c["step"], c["log"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps))
    )
    for _ in range(start):
        sched.step()
    gen = torch.Generator().manual_seed(start)
    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), desc="denoiser", initial=start, total=steps)
    for k in bar:
        batch = x[torch.randint(len(x), (BATCH,), generator=gen)]
        xt, sigma, eps = noised(batch, length, gen)
        loss = ((model(xt, sigma, length) - eps) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (k + 1) % 500 == 0 or k + 1 == steps:
            model.eval()
            log["held"].append({"step": k + 1, **held_loss(model, xh, length),
                                "seconds": time.perf_counter() - t0})  # fmt: skip
            model.train()
            torch.save({"state_dict": model.state_dict(), "opt": opt.state_dict(),
                        "step": k + 1, "log": log}, ckpt)  # fmt: skip
            print(json.dumps(log["held"][-1]), flush=True)


@torch.no_grad()
def sample(model: Denoiser, n: int, n_atoms: int, length: float, per_level: int, levels: int,
           seed: int = 0, snr: float = 0.1, batch: int = 100) -> np.ndarray:  # fmt: skip
    """The reverse variance-exploding SDE down a geometric sigma ladder (``levels`` from
    SIG_MAX to SIG_MIN; ancestral steps) from uniform random positions, with ``per_level``
    Langevin corrector steps at each level (step from the signal-to-noise ratio ``snr``,
    Song et al. 2021); a last denoising step (Tweedie) at SIG_MIN."""
    gen = torch.Generator().manual_seed(seed)
    ladder = SIG_MAX * (SIG_MIN / SIG_MAX) ** (torch.arange(levels + 1) / levels)
    out = []
    for i in tqdm(range(0, n, batch), desc="sampling", leave=False):
        b = min(batch, n - i)
        x = torch.rand(b, n_atoms, 3, generator=gen) * length
        for k in range(levels):
            sig, nxt = float(ladder[k]), float(ladder[k + 1])
            s = torch.full((b,), sig)
            for _ in range(per_level):  # corrector
                score = -model(x, s, length) / sig
                z = torch.randn(x.shape, generator=gen)
                alpha = 2 * (snr * z.norm(dim=(1, 2)) / score.norm(dim=(1, 2))) ** 2
                x = x + alpha[:, None, None] * score + (2 * alpha).sqrt()[:, None, None] * z
            score = -model(x, s, length) / sig  # predictor
            var = sig**2 - nxt**2
            x = x + var * score + math.sqrt(var) * torch.randn(x.shape, generator=gen)
            x = torch.remainder(x, length)
        s = torch.full((b,), float(ladder[-1]))
        x = torch.remainder(x - float(ladder[-1]) * model(x, s, length), length)
        out.append(x.numpy())
    return np.concatenate(out).astype(np.float64)


@torch.no_grad()
def inpaint(model: Denoiser, pos: np.ndarray, hole: int, centre: np.ndarray, radius: np.ndarray,
            length: float, levels: int, start: float, seed: int = 0,
            batch: int = 100) -> np.ndarray:  # fmt: skip
    """The last ``hole`` atoms of each row of ``pos`` (B, N, 3) drawn again by the model, the
    rest kept (RePaint-style: at each level the kept atoms are their known positions noised
    to that level): hole atoms start uniform in their sphere (``centre`` (B, hole, 3),
    ``radius`` (B, hole), as rebuild.holes gives them) plus noise of ``start`` A, then
    follow the reverse SDE from ``start`` down to SIG_MIN."""
    gen = torch.Generator().manual_seed(seed)
    ladder = start * (SIG_MIN / start) ** (torch.arange(levels + 1) / levels)
    out = []
    for i in range(0, len(pos), batch):
        known = torch.from_numpy(pos[i : i + batch]).float()
        b, n = known.shape[:2]
        c = torch.from_numpy(centre[i : i + batch]).float()
        r = torch.from_numpy(radius[i : i + batch]).float()
        v = torch.randn(b, hole, 3, generator=gen)
        v *= (r * torch.rand(b, hole, generator=gen) ** (1 / 3) / v.norm(dim=-1))[..., None]
        x = known.clone()
        x[:, -hole:] = c + v + start * torch.randn(b, hole, 3, generator=gen)
        for k in range(levels):
            sig, nxt = float(ladder[k]), float(ladder[k + 1])
            x[:, :-hole] = known[:, :-hole] + sig * torch.randn(b, n - hole, 3, generator=gen)
            score = -model(torch.remainder(x, length), torch.full((b,), sig), length) / sig
            var = sig**2 - nxt**2
            x[:, -hole:] += var * score[:, -hole:] + math.sqrt(var) * torch.randn(
                b, hole, 3, generator=gen)  # fmt: skip
        x[:, :-hole] = known[:, :-hole]
        s = torch.full((b,), float(ladder[-1]))
        x[:, -hole:] -= float(ladder[-1]) * model(torch.remainder(x, length), s, length)[:, -hole:]
        out.append(torch.remainder(x, length).numpy())
    return np.concatenate(out).astype(np.float64)


def fill_compare(out: Path, tries: int, hole: int, levels: int, start: float) -> None:
    """The same holes (rebuild's, at defects of the training networks) filled at random
    and by the model, relaxed, and counted as repap rebuild counts them: new (no training
    network), at most the ceiling (the training networks' mean + 1 std), distinct."""
    from repap.analysis.metrics import close_pairs
    from repap.analysis.networks import group
    from repap.generation.rebuild import defects, fill_uniform, holes
    from repap.sim.relaxation import relax

    model = load(out)
    nset = repap.reference_set()
    train = nset.inherent_structures("train")
    length, cell = float(nset.cell[0, 0]), nset.cell
    e = train.energy / train.n_atoms
    ceiling = e.mean() + e.std()
    known = group(train)
    rng = np.random.default_rng(0)
    sources = np.arange(tries) % len(train)
    pos, centre, radius = holes(train, sources, hole, rng, defects(train))
    rows = {}
    for name in ("random", "model"):
        t = time.perf_counter()
        if name == "random":
            new = fill_uniform(pos, hole, centre, radius, cell, 2.0, rng)
        else:
            new = inpaint(model, pos, hole, centre, radius, length, levels, start)
        made = time.perf_counter() - t
        ok = np.isfinite(new).all((1, 2))
        r = relax(Trajectory(new[ok] % length, nset.cell, nset.numbers, nset.pbc), progress=False)
        s = r.structures
        per = s.energy / s.n_atoms
        good = (known.match(s) == -1) & (per <= ceiling) & (r.status == "converged")
        distinct = len(group(s[np.flatnonzero(good)])) if good.any() else 0
        rows[name] = {"tries": int(tries), "filled": int(ok.sum()), "kept": int(good.sum()),
                      "kept_distinct": distinct, "new": float(np.mean(known.match(s) == -1)),
                      "energy_mean_eV": float(per.mean()),
                      "closest_before_A": float(close_pairs(
                          Trajectory(new[ok] % length, nset.cell, nset.numbers),
                          threshold=2.0)["min_distance"].min()),
                      "fill_seconds_per_try": made / tries}  # fmt: skip
        print(name, rows[name], flush=True)
    path = out / "denoiser.json"
    log = json.loads(path.read_text()) if path.is_file() else {}
    log[f"fill: hole {hole}, {tries} tries, {levels} levels from {start} A"] = rows
    path.write_text(json.dumps(log, indent=1, default=float) + "\n")


def judge(out: Path, n: int, per_level: int, levels: int) -> None:
    model = load(out)
    nset = repap.reference_set()
    length = float(nset.cell[0, 0])
    t = time.perf_counter()
    pos = sample(model, n, nset.n_atoms, length, per_level, levels)
    seconds = time.perf_counter() - t
    ens = Trajectory(pos, nset.cell, nset.numbers, nset.pbc)
    ens.info["seconds_per_structure"] = seconds / n
    report, _ = evaluate_networks(ens, nset.inherent_structures("heldout"), nset.subset("train"),
                                  baseline_size=200)  # fmt: skip
    from repap.sim.reference_sets import quality

    report["before_relaxation"] = quality(ens)  # coordination, four-fold, angles (2.85 A)
    path = out / "denoiser.json"
    log = json.loads(path.read_text()) if path.is_file() else {}
    log[f"n={n}, {levels} levels, {per_level} corrector steps each"] = report
    path.write_text(json.dumps(log, indent=1, default=float) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    torch.set_num_threads(1)
    what, where = sys.argv[1], Path(sys.argv[2])
    rest = [int(a) for a in sys.argv[3:]] if what != "fill" else []
    if what == "train":
        train(where, *(rest or [20000]))
    elif what == "fill":
        fill_compare(where, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                     float(sys.argv[6]))  # fmt: skip
    else:
        judge(where, *(rest + [200, 0, 100][len(rest) :]))
