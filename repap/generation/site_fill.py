"""A learnt fill for ``repap rebuild``'s holes: the site model places each missing atom relative
to an atom already there (docs/results.md: "Across networks", the site model; "Rebuilding
one region").

For each atom to place the model picks an *anchor* among the atoms placed so far (trained to
pick the nearest earlier atom; here only among atoms with fewer than four bonds, where there
are any), then draws the offset from it one axis at a time, each a discretised Gaussian axis
projection on a local grid of [-W, W) A in G bins: dx, then dy given dx, then dz given both.
Each axis's logits are a context term (an MLP over the K nearest earlier atoms around the
anchor, as vectors) plus a per-bin term that reads histograms of the distances, in the axes
drawn so far, from the candidate point to those atoms (plain and weighted by their missing
bonds). A proposal with an atom closer than ``min_dist`` is redrawn. The anchors are not
held to the hole: any atom with a free bond may take the next atom, though in a sound
network with a hole those are mostly the hole's rim.

The shipped weights (``repap/data/models/site-64.pt``) were trained by
``research/site-model/site_model.py train build/site 8 10 5`` on the 92 networks that
``repap.pretrained("networks-64")`` was fitted on (never a held-out network): 8 orderings of
the first 10 frames of each, 5 epochs.
Cubic cells only; trained at 64 atoms.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repap.data import DATA_DIR
from repap.errors import InputError

BOND, NEAR = 2.75, 4.0  # A: a bond; the neighbourhood counted for the anchor
K, REACH = 12, 5.0  # earlier atoms around the anchor that the offset model sees, within REACH A
W, G = 4.0, 100  # offset grid per axis: [-W, W) A in G bins (0.08 A)
CHANNELS, SPACING = 24, 0.25  # per-bin distance histograms: channel m at m * SPACING A
TRIES = 50  # draws for one atom before its structure is filled again
CENTRES = -W + (torch.arange(G, dtype=torch.float32) + 0.5) * (2 * W / G)
WEIGHTS = DATA_DIR / "models" / "site-64.pt"


def mic(d: torch.Tensor, length: float) -> torch.Tensor:
    return d - length * torch.round(d / length)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, o))


def state(pos: torch.Tensor, placed: torch.Tensor, last: torch.Tensor, length: float):
    """Per-atom features of partly built structures: pos (B, N, 3) A, placed (B, N), last (B,)
    the atom placed last. Returns (anchor features (B, N, 6), pairwise vectors (B, N, N, 3),
    distances (B, N, N), bonds so far (B, N), radius (B, N))."""
    b = len(pos)
    d = mic(pos[:, None, :, :] - pos[:, :, None, :], length)  # d[:, j, k] = pos_k - pos_j
    dist = d.norm(dim=-1)
    cn, near = _counts(dist, placed)
    feats, radius = _anchor_features(pos, placed, last, length, cn, near,
                                     dist[torch.arange(b), :, last])  # fmt: skip
    return feats, d, dist, cn, radius


def _counts(dist: torch.Tensor, placed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bonds (< BOND) and neighbours (< NEAR) of each atom among the placed ones: (B, N) each."""
    n = placed.shape[1]
    pair = placed[:, :, None] & placed[:, None, :] & ~torch.eye(n, dtype=torch.bool)
    return ((dist < BOND) & pair).sum(-1).float(), ((dist < NEAR) & pair).sum(-1).float()


def _anchor_features(pos, placed, last, length, cn, near, dist_last):
    """(anchor features (B, N, 6), radius (B, N)) from the bond and neighbour counts and the
    distances from every atom to the last one placed (B, N)."""
    b, n, _ = pos.shape
    radius = torch.remainder(pos, length).norm(dim=-1)
    r_last = radius[torch.arange(b), last][:, None]
    progress = placed.float().mean(1, keepdim=True).expand(b, n)
    feats = torch.stack([(radius - r_last) / 3.0, cn / 4.0, near / 10.0, dist_last / REACH,
                         progress, (cn == 0).float()], -1)  # fmt: skip
    return feats, radius


def _from(pos: torch.Tensor, atom: torch.Tensor, length: float):
    """Minimum-image vectors (B, N, 3) from atom ``atom`` (B,) of each row to every atom, and
    their lengths (B, N): the rows ``atom`` of :func:`state`'s pairwise arrays."""
    v = mic(pos - pos[torch.arange(len(pos)), atom][:, None, :], length)
    return v, v.norm(dim=-1)


def context(anchor, placed, d, dist, cn, radius, last, length):
    """The offset model's view of the anchor's neighbourhood: (flat features (B, 6K + 6),
    vectors (B, K + 1, 3) of the anchor (0) and its K nearest earlier atoms, their missing
    bonds (B, K + 1) and validity (B, K + 1))."""
    rows = torch.arange(len(placed))
    return _context(d[rows, anchor], dist[rows, anchor], anchor, placed, cn, radius, last)


def _context(v, dd, anchor, placed, cn, radius, last):
    """:func:`context` from the anchor's vectors v (B, N, 3) and distances dd (B, N)."""
    b = len(placed)
    rows = torch.arange(b)
    ok = placed & (dd < REACH)
    ok[rows, anchor] = False
    dd = torch.where(ok, dd, torch.inf)
    near_d, idx = dd.topk(K, dim=1, largest=False)  # cells of more than K atoms
    valid = torch.isfinite(near_d)
    vk = v.gather(1, idx[..., None].expand(b, K, 3)) * valid[..., None]
    ck = cn.gather(1, idx) * valid
    per = torch.cat([vk / REACH, torch.where(valid, near_d, 0.0)[..., None] / REACH,
                     ck[..., None] / 4.0, valid[..., None].float()], -1)  # fmt: skip
    apos = torch.gather(radius, 1, anchor[:, None])
    r_last = torch.gather(radius, 1, last[:, None])
    extra = torch.cat([cn[rows, anchor][:, None] / 4.0, (apos - r_last) / 3.0,
                       placed.float().mean(1, keepdim=True)], -1)  # fmt: skip
    vecs = torch.cat([torch.zeros(b, 1, 3), vk], 1)
    missing = (4.0 - torch.cat([cn[rows, anchor][:, None], ck], 1)).clamp(min=0.0)
    return (
        torch.cat([per.flatten(1), extra], -1),
        vecs,
        missing,
        torch.cat([torch.ones(b, 1, dtype=torch.bool), valid], 1),
    )


def radial_dir(pos_anchor: torch.Tensor, length: float) -> torch.Tensor:
    """Unit vector from the origin to the anchor (wrapped): the direction the order grows."""
    p = torch.remainder(pos_anchor, length)
    return p / p.norm(dim=-1, keepdim=True).clamp(min=1e-6)


def bin_hist(known: torch.Tensor, axis: int, vecs, missing, valid) -> torch.Tensor:
    """(B, G, 2C): histograms over the context atoms of the distance, in axes <= axis, from
    (the offset's drawn axes ``known`` (B, axis), each bin centre of ``axis``) to each atom."""
    part = torch.zeros(vecs.shape[:2])
    for a in range(axis):
        part = part + (known[:, a, None] - vecs[..., a]).square()
    r2 = part[:, None, :] + (CENTRES[None, :, None] - vecs[:, None, :, axis]).square()
    u = r2.sqrt() / SPACING  # (B, G, K + 1)
    i0 = u.floor()
    w1 = u - i0
    keep = valid[:, None, :] & (i0 < CHANNELS - 1)
    i0 = i0.clamp(max=CHANNELS - 2).long()
    w1 = torch.where(keep, w1, 0.0)
    w0 = torch.where(keep, 1.0 - w1, 0.0)
    out = []
    for w in (torch.ones_like(missing), missing):
        h = torch.zeros(*u.shape[:2], CHANNELS)
        w = w[:, None, :]
        out.append(h.scatter_add(-1, i0, w0 * w).scatter_add(-1, i0 + 1, w1 * w))
    return torch.log1p(torch.cat(out, -1))


class SiteModel(nn.Module):
    """Anchor logits over placed atoms, then three offset axes (see the module doc)."""

    def __init__(self, hidden: int = 256):
        super().__init__()
        self.anchor = _mlp(6, 64, 1)
        self.enc = _mlp(6 * K + 3 + 3, hidden, hidden)
        self.emb = nn.Embedding(G, 32)
        self.heads = nn.ModuleList([_mlp(hidden + 32 * a, hidden, G) for a in range(3)])
        self.proj = nn.ModuleList([nn.Linear(hidden, 16) for _ in range(3)])
        self.bins = nn.ModuleList([_mlp(2 * CHANNELS + 16, 64, 1) for _ in range(3)])

    def anchor_logits(self, feats: torch.Tensor, placed: torch.Tensor) -> torch.Tensor:
        return self.anchor(feats).squeeze(-1).masked_fill(~placed, -torch.inf)

    def encode(self, flat: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
        return self.enc(torch.cat([flat, direction], -1))

    def axis_logits(self, a: int, h, known_bins, known, vecs, missing, valid) -> torch.Tensor:
        """Logits (B, G) of the offset's axis a given the axes drawn before it."""
        x = torch.cat([h, *(self.emb(known_bins[:, i]) for i in range(a))], -1)
        hist = bin_hist(known, a, vecs, missing, valid)
        p = self.proj[a](h)[:, None, :].expand(-1, G, -1)
        return self.heads[a](x) + self.bins[a](torch.cat([hist, p], -1)).squeeze(-1)


def propose(model: SiteModel, p, pl, ls, length: float, inv_t: float, gen: torch.Generator,
            min_dist: float, open_only: bool = True, counts=None):  # fmt: skip
    """One proposal per row of p (B, N, 3) with placed atoms pl (B, N), the last ls (B,):
    anchor (``open_only``: among atoms with a free bond, where any), then offset. Returns
    (positions (B, 3), acceptable (B,): no placed atom closer than ``min_dist``).
    ``counts``: the rows' bond and neighbour counts (:func:`_counts`), kept up to date by the
    caller; then only the last atom's and the anchor's distances are computed (O(N) per row
    instead of every pair), the same features to the bit."""
    rows = torch.arange(len(p))
    if counts is None:
        feats, d, dist, cn, radius = state(p, pl, ls, length)
    else:
        cn, near = counts
        feats, radius = _anchor_features(p, pl, ls, length, cn, near, _from(p, ls, length)[1])
    la = model.anchor_logits(feats, pl) * inv_t
    if open_only:
        open_ = pl & (cn < 4)
        la = torch.where(open_.any(1, keepdim=True) & ~open_, -torch.inf, la)
    anchor = torch.multinomial(torch.softmax(la, -1), 1, generator=gen).squeeze(1)
    if counts is None:
        flat, vecs, missing, valid = context(anchor, pl, d, dist, cn, radius, ls, length)
    else:
        v, dd = _from(p, anchor, length)
        flat, vecs, missing, valid = _context(v, dd, anchor, pl, cn, radius, ls)
    h = model.encode(flat, radial_dir(p[rows, anchor], length))
    kb = torch.zeros(len(p), 3, dtype=torch.long)
    off = torch.zeros(len(p), 3)
    for a in range(3):
        logits = model.axis_logits(a, h, kb, off, vecs, missing, valid) * inv_t
        kb[:, a] = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(1)
        u = torch.rand(len(p), generator=gen)
        off[:, a] = -W + (kb[:, a].float() + u) * (2 * W / G)
    new = torch.remainder(p[rows, anchor] + off, length)
    r_new = torch.where(pl, mic(p - new[:, None], length).norm(dim=-1), torch.inf)
    return new, r_new.min(1).values >= min_dist


def place(
    propose_fn: Callable,
    pos: torch.Tensor,
    placed: torch.Tensor,
    start: int,
    guide: int = 0,
    score: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Place atoms start .. N-1 of every row of pos (B, N, 3) A in turn (in place), each by
    ``propose_fn(rows, pos, placed, last) -> (positions, acceptable)`` (rows: which of the
    B each proposal is for), redrawn when not acceptable up to TRIES times; with ``guide``,
    that many proposals per atom of which the lowest ``score(pos, placed, new)`` is kept.
    Returns (rows that placed every atom (B,), redraws (B,))."""
    b, n_atoms = pos.shape[:2]
    redrawn = torch.zeros(b, dtype=torch.long)
    alive = torch.ones(b, dtype=torch.bool)
    for i in range(start, n_atoms):
        todo = torch.nonzero(alive).squeeze(1)
        last = torch.full((b,), i - 1, dtype=torch.long)
        for attempt in range(TRIES):
            if not len(todo):
                break
            rows = todo.repeat_interleave(guide) if guide else todo
            p, pl, ls = pos[rows], placed[rows], last[rows]  # `guide` proposals per structure
            new, ok = propose_fn(rows, p, pl, ls)
            if guide:
                e = torch.where(ok, score(p, pl, new), torch.inf)
                pick = torch.arange(len(todo)) * guide + e.view(-1, guide).argmin(1)
                new, ok = new[pick], ok[pick]
            pos[todo[ok], i] = new[ok]
            placed[todo[ok], i] = True
            if attempt:
                redrawn[todo] += 1
            todo = todo[~ok]
        alive[todo] = False  # no place in TRIES draws
    return alive, redrawn


def load(path: str | Path = WEIGHTS) -> SiteModel:
    """The site model of a weights file (the shipped one by default), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no site-model weights (this repap was installed without its "
                         "pretrained models?)")  # fmt: skip
    model = SiteModel()
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not site-model weights ({detail})") from None
    return model.eval()


def check_cell(cell: np.ndarray) -> float:
    """The edge of a cubic cell; anything else is refused (the model reads cubic images)."""
    length = float(cell[0, 0])
    if not np.allclose(cell, np.eye(3) * length, atol=1e-9):
        raise InputError("fill: the site model works in cubic cells only")
    return length


def _incremental(model: SiteModel, batch: torch.Tensor, start: int, length: float,
                 gen: torch.Generator, min_dist: float) -> Callable:  # fmt: skip
    """A ``propose_fn`` for :func:`place` filling ``batch`` (B, N, 3) from atom ``start`` on,
    that keeps every row's bond and neighbour counts as atoms are placed (one atom's
    distances per step) instead of recounting every pair at every proposal."""
    b, n, _ = batch.shape
    placed = torch.arange(n).expand(b, -1) < start
    cn, near = torch.empty(b, n), torch.empty(b, n)
    for lo in range(0, b, 64):  # every pair once, in blocks of rows (memory)
        block = batch[lo : lo + 64]
        dist = mic(block[:, None, :, :] - block[:, :, None, :], length).norm(dim=-1)
        cn[lo : lo + 64], near[lo : lo + 64] = _counts(dist, placed[lo : lo + 64])
    counted = [start]  # atoms 0 .. counted - 1 are in the counts

    def proposal(rows: torch.Tensor, p, pl, ls):
        while counted[0] < int(ls[0]) + 1:  # the atom placed since: add its bonds
            a = counted[0]
            _, da = _from(batch, torch.full((b,), a), length)
            earlier = torch.arange(n) < a
            bond, nb = (da < BOND) & earlier, (da < NEAR) & earlier
            cn.add_(bond.float())
            near.add_(nb.float())
            cn[:, a], near[:, a] = bond.sum(1).float(), nb.sum(1).float()
            counted[0] += 1
        return propose(model, p, pl, ls, length, 1.0, gen, min_dist, counts=(cn[rows], near[rows]))

    return proposal


@torch.no_grad()
def fill(model: SiteModel, pos: np.ndarray, hole: int, cell: np.ndarray, min_dist: float,
         seed: int, refills: int = 20, incremental: bool = True) -> np.ndarray:  # fmt: skip
    """``pos`` (B, N, 3) with its last ``hole`` atoms placed again by the model, none closer
    than ``min_dist`` to any atom (a structure whose atom finds no place in TRIES draws is
    filled again, up to ``refills`` times); NaN rows: no fill. ``incremental=False``
    recounts every pair at every proposal: the reference the incremental counts match
    exactly, O(N^2) per proposal instead of O(N). The caller's torch state (threads, global
    generator, grad mode outside this call) is left as it was."""
    length = check_cell(cell)
    gen = torch.Generator().manual_seed(int(seed))
    start = pos.shape[1] - hole
    out = torch.from_numpy(np.ascontiguousarray(pos)).float()
    done = np.zeros(len(pos), bool)

    def recount(rows: Any, p, pl, ls):
        return propose(model, p, pl, ls, length, 1.0, gen, min_dist)

    todo = torch.arange(len(pos))
    for _ in range(refills):
        if not len(todo):
            break
        p = out[todo].clone()
        placed = torch.arange(pos.shape[1]).expand(len(todo), -1) < start
        proposal = _incremental(model, p, start, length, gen, min_dist) if incremental else recount
        alive, _ = place(proposal, p, placed, start)
        out[todo[alive]] = p[alive]
        done[todo[alive].numpy()] = True
        todo = todo[~alive]
    result = out.numpy().astype(np.float64)
    # the kept atoms exactly as given (float32 only for the model's arithmetic)
    result[:, :start] = pos[:, :start]
    result[:, start:] %= length
    result[~done] = np.nan
    return result
