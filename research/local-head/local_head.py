"""A RePAP model that sees earlier atoms by position (issue: generate new networks, "a more
advanced sequence model"): the shipped ``networks-64`` LSTM, frozen, plus a local head. For
each candidate bin of the next coordinate (atom k, axis a) the head gets two histograms of
the distances, in the subspace of axes <= a, from (atom k's drawn axes, the bin's centre) to
every earlier atom: one plain, one weighted by the earlier atom's missing bonds
(max(0, 4 - its neighbours within 2.75 A so far)); a small MLP turns them into a logit added
to the LSTM's (scaled per axis). Trained by the same cross-entropy against the Gaussian
targets on the model's own fitted networks (``--augment`` orderings), validated on its
validation networks; generation is the CPU sampling loop with the head added at every step
(clash rejection at 2 A as usual). Run:

    .venv/bin/python research/local-head/local_head.py OUT [AUGMENT FRAMES EPOCHS N TEMPERATURE]

OUT/head.pt, OUT/local-head.json (validation NLL, probability mass near the true bin per
axis, the network-level report of N structures at TEMPERATURE, default 1; another
temperature writes local-head-T{T}.json). Orthogonal cells only."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

import repap
from repap.data.sequences import prepare_networks
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.model.projection import bin_index, project
from repap.model.sampling import SOFTMAX, SamplingOptions, cpu_loop

BOND = 2.75  # A: neighbours counted for an earlier atom's missing bonds
SPACING, CHANNELS = 0.3, 16  # histogram: channel m at distance m * SPACING


def _hist(u, keep, weight):
    """Linear-interpolation histograms over the last axis of u (distances / SPACING)."""
    i0 = u.floor()
    w1 = u - i0
    keep = keep & (i0 < CHANNELS - 1)
    i0 = i0.clamp_(max=CHANNELS - 2).long()
    w1 = torch.where(keep, w1, 0.0)
    w0 = torch.where(keep, 1.0 - w1, 0.0)
    out = []
    for w in (1.0, weight):
        h = torch.zeros(*u.shape[:-1], CHANNELS)
        out.append(h.scatter_add_(-1, i0, w0 * w).scatter_add_(-1, i0 + 1, w1 * w))
    return torch.cat(out, -1)


def features(frac, lengths, g, chunk=16):
    """(B, 3N-1, G, 2C) float16: the head's input for coordinates 1 .. 3N-1 of frac (B, N, 3)."""
    b_all, n, _ = frac.shape
    lengths = torch.as_tensor(list(lengths), dtype=torch.float32)
    centre = (torch.arange(g, dtype=torch.float32) + 0.5) / g
    earlier = torch.tril(torch.ones(n, n, dtype=torch.bool), -1)[None, :, None, :]
    out = torch.zeros(b_all, 3 * n, g, 2 * CHANNELS, dtype=torch.float16)
    for lo in range(0, b_all, chunk):
        x = frac[lo : lo + chunk]
        b = x.shape[0]
        d = x[:, :, None, :] - x[:, None, :, :]
        p = ((d - torch.round(d)) * lengths).square()  # (b, k, j, 3)
        bonded = (p.sum(-1) < BOND**2) & ~torch.eye(n, dtype=torch.bool)
        cn = torch.cat([torch.zeros(b, 1, n), bonded.float().cumsum(1)[:, :-1]], 1)  # i < k
        weight = (4.0 - cn).clamp_(min=0.0)[:, :, None, :]
        known = torch.zeros(b, n, n)
        for a in range(3):
            c = centre[None, :, None] - x[:, None, :, a]
            c = ((c - torch.round(c)) * lengths[a]).square()
            u = (known[:, :, None, :] + c[:, None, :, :]).sqrt_().div_(SPACING)
            out[lo : lo + b, a::3] = _hist(u, earlier.expand_as(u), weight.expand_as(u)).half()
            known = known + p[..., a]
    return out[:, 1:]


def step_features(coords, t, lengths, g):
    """(B, G, 2C): the head's input for coordinate t[b] of partly drawn coords (B, 3N)."""
    batch, n = coords.shape[0], coords.shape[1] // 3
    lengths = torch.as_tensor(list(lengths), dtype=torch.float32)
    x = coords.view(batch, n, 3)
    atom, a = t // 3, t % 3
    d = x[torch.arange(batch), atom][:, None, :] - x
    p = ((d - torch.round(d)) * lengths).square()
    known = (p * (torch.arange(3)[None, None, :] < a[:, None, None])).sum(-1)
    centre = (torch.arange(g, dtype=torch.float32) + 0.5) / g
    xa = x.gather(2, a[:, None, None].expand(batch, n, 1)).squeeze(-1)
    c = centre[None, :, None] - xa[:, None, :]
    c = ((c - torch.round(c)) * lengths[a][:, None, None]).square()
    u = (known[:, None, :] + c).sqrt_().div_(SPACING)
    before = torch.arange(n)[None, :] < atom[:, None]
    dd = x[:, :, None, :] - x[:, None, :, :]
    bonded = ((((dd - torch.round(dd)) * lengths).square()).sum(-1) < BOND**2) & ~torch.eye(
        n, dtype=torch.bool
    )  # fmt: skip
    cn = (bonded & before[:, :, None]).float().sum(1)
    weight = (4.0 - cn).clamp_(min=0.0)[:, None, :].expand_as(u)
    return _hist(u, before[:, None, :].expand_as(u), weight)


class Head(torch.nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2 * CHANNELS + 3, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1),
        )  # fmt: skip
        self.scale = torch.nn.Parameter(torch.ones(3))

    def forward(self, lstm_logits, feats, t):
        """Logits (..., G) for coordinates t (...) from the LSTM's and the features."""
        axis = torch.nn.functional.one_hot(t % 3, 3).float()[..., None, :]
        x = torch.cat([torch.log1p(feats.float()), axis.expand(*feats.shape[:-1], 3)], -1)
        return lstm_logits.float() * self.scale[t % 3][..., None] + self.net(x).squeeze(-1)


def data(model, nset, ids, augment, frames, seed):
    frac = prepare_networks(nset, ids, augment, seed, frames).seqs.frac
    bins = torch.from_numpy(bin_index(frac, model.config.n_bins))
    with torch.no_grad():
        lstm = torch.cat([model(bins[i : i + 256, :-1]) for i in range(0, len(bins), 256)])
    frac = torch.from_numpy(np.ascontiguousarray(frac)).float()
    return frac, bins, lstm.half(), features(frac, np.diag(nset.cell), model.config.n_bins)


def validate(model, head, val, lengths):
    """Validation NLL (nats per coordinate, as repap train reports it) and the probability
    mass within 2 bins of the true bin per axis, with and without the head."""
    _, bins, lstm, feats = val
    t = torch.arange(1, bins.shape[1])
    g = model.config.n_bins
    log_width = torch.from_numpy(np.log(lengths[t.numpy() % 3] / g)).float()
    true = bins[:, 1:]
    out = {}
    with torch.no_grad():
        for name, logits in (("lstm", lstm.float()), ("lstm + head", head(lstm, feats, t))):
            logp = torch.log_softmax(logits, -1)
            nll = (-logp.gather(-1, true[..., None]).squeeze(-1) + log_width).mean()
            d = (torch.arange(g) - true[..., None]).abs()
            near = (logp.exp() * (torch.minimum(d, g - d) <= 2)).sum(-1)
            mass = [float(near[:, t % 3 == a].mean()) for a in range(3)]
            out[name] = {"val_nll": float(nll), "mass_near_true_xyz": mass}
    return out


def generate(model, head, n, seed, min_dist, temperature, lengths):
    """Structures of the LSTM with the head's logits added at every step."""
    step, g = model.stepper("cpu"), model.config.n_bins

    def next_logits(rows, bins, steps, h, c, coords):
        t = steps + 1
        return head(step(bins, steps, h, c), step_features(coords[rows], t, lengths, g), t)

    state = step.zero_state(n, torch.device("cpu"))
    options, _ = SamplingOptions(seed, min_dist, temperature, 20, 20).check(model, "cpu")
    return cpu_loop(model.meta, model.n_atoms, g, SOFTMAX, state, next_logits, 0, n, options)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    augment, frames, epochs, n = (int(a) for a in [*sys.argv[2:], "1", "5", "4", "1000"][:4])
    temperature = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    nset, model = repap.reference_set(), repap.pretrained("networks-64")
    lengths = np.diag(nset.cell)
    seen = model.meta["data"]
    val = data(model, nset, np.array(seen["networks_val"]), 0, 10, 0)
    head = Head()
    log = {"augment": augment, "frames": frames, "epochs": epochs}
    if (out / "head.pt").is_file():
        saved = torch.load(out / "head.pt")
        head.load_state_dict(saved["state_dict"])
        log["train_seconds"] = saved["train_seconds"]
    else:
        start = time.perf_counter()
        fit = data(model, nset, np.array(seen["networks_fit"]), augment, frames, 1)
        opt = torch.optim.Adam(head.parameters(), lr=3e-3)
        t = torch.arange(1, fit[1].shape[1])
        for epoch in range(epochs):
            for idx in torch.randperm(len(fit[1])).split(32):
                target = project(fit[0][idx].numpy(), model.config.n_bins, model.meta["sigma_frac"])
                logits = head(fit[2][idx], fit[3][idx], t)
                loss = -(torch.from_numpy(target)[:, 1:] * torch.log_softmax(logits, -1)).sum(-1)
                opt.zero_grad()
                loss.mean().backward()
                opt.step()
            print(epoch, validate(model, head, val, lengths), flush=True)
        log["train_seconds"] = time.perf_counter() - start  # its features and 4 epochs
        torch.save({"state_dict": head.state_dict(), "train_seconds": log["train_seconds"]},
                   out / "head.pt")  # fmt: skip
    head.eval()
    log["validation"] = validate(model, head, val, lengths)
    start = time.perf_counter()
    ens = generate(model, head, n, 0, 2.0, temperature, lengths)
    ens.info["seconds_per_structure"] = (time.perf_counter() - start) / n
    report, _ = evaluate_networks(ens, nset, nset.subset("train"), baseline_size=n)
    log["judge"] = {**report, "generation_summary": ens.summary(), "temperature": temperature}
    name = "local-head.json" if temperature == 1.0 else f"local-head-T{temperature:g}.json"
    (out / name).write_text(json.dumps(log, indent=1, default=float) + "\n")
    print(json.dumps(log["validation"], indent=1), markdown(report), sep="\n")
