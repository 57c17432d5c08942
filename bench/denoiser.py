"""A score-based (denoising diffusion) model of a-Si networks: every atom moves at once
(issue 16: a model that is not grown atom by atom, whose growth front froze the RePAP
models' mistakes). A small message-passing network reads the minimum-image distances between
all atoms of a noised structure and returns, per atom, a vector (a sum of unit pair vectors
weighted by learnt invariants: rotation-, translation- and permutation-equivariant), trained
by denoising score matching: positions of the 64-atom set's training frames plus Gaussian
noise of sigma (log-uniform in [SIG_MIN, SIG_MAX] A), the model predicting the noise. It
generates by annealed Langevin dynamics from uniform random positions down the sigma
ladder, then relaxes (SW), and is judged as networks against the held-out networks. Run:

    .venv/bin/python bench/denoiser.py train OUT [STEPS]
    .venv/bin/python bench/denoiser.py judge OUT [N STEPS_PER_LEVEL LEVELS]

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
from repap.network_eval import evaluate_networks, markdown
from repap.trajectory import Trajectory

SIG_MIN, SIG_MAX = 0.02, 2.5  # A
CUT = 5.0  # A: messages between atoms closer than this (the cell is 10.86 A)
RBF, H, K = 32, 64, 24
BATCH, LR = 16, 2e-3


def mic(d: torch.Tensor, length: float) -> torch.Tensor:
    return d - length * torch.round(d / length)


class PairMLP(nn.Module):
    """MLP over [h_i, h_j, rbf_ij] with its first layer split per node (computed once per
    atom, not per pair)."""

    def __init__(self, out: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(H, H), nn.Linear(H, H, bias=False)
        self.r = nn.Linear(RBF, H, bias=False)
        self.o = nn.Sequential(nn.SiLU(), nn.Linear(H, out))

    def forward(self, h: torch.Tensor, nb: torch.Tensor, rbf: torch.Tensor) -> torch.Tensor:
        hj = torch.gather(self.b(h)[:, None].expand(-1, h.shape[1], -1, -1), 2,
                          nb[..., None].expand(-1, -1, -1, H))  # fmt: skip
        return self.o(self.a(h)[:, :, None] + hj + self.r(rbf))


class Denoiser(nn.Module):
    def __init__(self, layers: int = 3) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, CUT, RBF))
        self.sig = nn.Sequential(nn.Linear(1, H), nn.SiLU(), nn.Linear(H, H))
        self.msg = nn.ModuleList(PairMLP(H) for _ in range(layers))
        self.upd = nn.ModuleList(
            nn.Sequential(nn.Linear(2 * H, H), nn.SiLU(), nn.Linear(H, H)) for _ in range(layers)
        )
        self.out = PairMLP(1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, length: float) -> torch.Tensor:
        """x (B, N, 3) A, sigma (B,) A: the predicted noise (B, N, 3) in units of sigma."""
        b, n, _ = x.shape
        d = mic(x[:, None, :, :] - x[:, :, None, :], length)  # d[:, i, j] = x_j - x_i
        r = d.norm(dim=-1) + torch.eye(n) * 4 * CUT
        r, nb = torch.topk(r, K, dim=-1, largest=False)  # the K nearest of each atom
        d = torch.gather(d, 2, nb[..., None].expand(-1, -1, -1, 3))
        fc = torch.where(r < CUT, 0.5 * (torch.cos(math.pi * r / CUT) + 1), 0.0)[..., None]
        width = (CUT / RBF) * (1 + sigma)[:, None, None, None]  # smoother when noisier
        rbf = torch.exp(-(((r[..., None] - self.centres) / width) ** 2)) * fc
        h = self.sig(torch.log(sigma)[:, None])[:, None, :].expand(b, n, H)
        for msg, upd in zip(self.msg, self.upd, strict=True):
            m = (msg(h, nb, rbf) * fc).sum(2) / 8.0
            h = h + upd(torch.cat([h, m], -1))
        w = self.out(h, nb, rbf) * fc  # (B, N, K, 1)
        return -(w * d / r[..., None]).sum(2)  # eps points from clean to noised


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
           seed: int = 0, eps_step: float = 0.6, batch: int = 50) -> np.ndarray:  # fmt: skip
    """Annealed Langevin dynamics (Song and Ermon) down a geometric sigma ladder from
    SIG_MAX to SIG_MIN: at level sigma_k, step alpha = eps_step * (sigma_k / SIG_MIN)^2 *
    SIG_MIN^2 ... scaled as alpha_k = eps_step * sigma_k^2, x += alpha/2 score + sqrt(alpha) z,
    score = -model/sigma. A last noise-free step at the lowest level."""
    gen = torch.Generator().manual_seed(seed)
    ladder = SIG_MAX * (SIG_MIN / SIG_MAX) ** (torch.arange(levels) / (levels - 1))
    out = []
    for i in tqdm(range(0, n, batch), desc="sampling", leave=False):
        b = min(batch, n - i)
        x = torch.rand(b, n_atoms, 3, generator=gen) * length
        for sig in ladder:
            s = torch.full((b,), float(sig))
            alpha = eps_step * sig**2
            for _ in range(per_level):
                score = -model(x, s, length) / sig
                x = x + 0.5 * alpha * score + alpha.sqrt() * torch.randn(x.shape, generator=gen)
                x = torch.remainder(x, length)
        x = torch.remainder(x - SIG_MIN * model(x, s, length), length)  # Tweedie's denoise
        out.append(x.numpy())
    return np.concatenate(out).astype(np.float64)


def judge(out: Path, n: int, per_level: int, levels: int) -> None:
    model = Denoiser()
    model.load_state_dict(torch.load(out / "denoiser.pt", weights_only=False)["state_dict"])
    model.eval()
    nset = repap.reference_set()
    length = float(nset.cell[0, 0])
    t = time.perf_counter()
    pos = sample(model, n, nset.n_atoms, length, per_level, levels)
    seconds = time.perf_counter() - t
    ens = Trajectory(pos, nset.cell, nset.numbers, nset.pbc)
    ens.info["seconds_per_structure"] = seconds / n
    report, _ = evaluate_networks(ens, nset.inherent_structures("heldout"), nset.subset("train"),
                                  baseline_size=200)  # fmt: skip
    path = out / "denoiser.json"
    log = json.loads(path.read_text()) if path.is_file() else {}
    log[f"n={n}, {levels} levels x {per_level}"] = report
    path.write_text(json.dumps(log, indent=1, default=float) + "\n")
    print(markdown(report))


if __name__ == "__main__":
    torch.set_num_threads(1)
    what, where = sys.argv[1], Path(sys.argv[2])
    rest = [int(a) for a in sys.argv[3:]]
    if what == "train":
        train(where, *(rest or [20000]))
    else:
        judge(where, *(rest + [200, 10, 50][len(rest) :]))
