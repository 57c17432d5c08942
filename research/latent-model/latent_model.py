"""The latent-variable RePAP the original project plan intended (issue: generate new networks):
a bidirectional LSTM encoder reads a whole structure's sequence and gives a Gaussian latent z
per structure; the RePAP LSTM decodes from it (z appended to every step's input). Trained as a
variational autoencoder (cross-entropy against the Gaussian targets + KL to N(0, I), the KL
weight raised from 0 to 1 over the first epoch, ``FREE_BITS`` nats per latent dimension kept
free so the decoder cannot ignore z) on the fitted networks of the shipped ``networks-64``
model (``--augment`` orderings), validated on its validation networks; the decoder starts from
that model's weights (z's input columns zero). Generation draws z ~ N(0, I) per structure and
runs the CPU sampling loop (clash rejection at 2 A). Run:

    .venv/bin/python research/latent-model/latent_model.py OUT [LATENT AUGMENT FRAMES EPOCHS N]

OUT/latent.pt (resumable: a trained model is loaded), OUT/latent.json: validation NLL bound
(-ELBO on the true bins, nats per coordinate as repap train reports NLL), KL per structure,
and the network-level report of N structures at T = 1 against the set's held-out networks."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import repap
from repap.data.sequences import prepare_networks
from repap.evaluation.network_report import evaluate_networks, markdown
from repap.model.projection import bin_index, project
from repap.model.sampling import SOFTMAX, SamplingOptions, cpu_loop

FREE_BITS = 0.05  # nats per latent dimension not penalised (against posterior collapse)


class LatentRePAP(nn.Module):
    def __init__(self, base: repap.RePAP, latent: int, enc_hidden: int = 128):
        super().__init__()
        g, steps, cfg = base.config.n_bins, base.n_steps, base.config
        self.g, self.n_steps, self.latent = g, steps, latent
        self.encoder = nn.LSTM(g + 3, enc_hidden, batch_first=True, bidirectional=True)
        self.to_latent = nn.Linear(2 * enc_hidden, 2 * latent)
        self.decoder = nn.LSTM(g + steps + latent, cfg.hidden, cfg.layers, batch_first=True,
                               dropout=cfg.dropout if cfg.layers > 1 else 0.0)  # fmt: skip
        self.head = nn.Linear(cfg.hidden, g)
        with torch.no_grad():  # warm start from the plain model; z enters with zero weights
            for name, p in base.lstm.named_parameters():
                q = getattr(self.decoder, name)
                if name == "weight_ih_l0":
                    q.zero_()[:, : g + steps] = p
                else:
                    q.copy_(p)
            self.head.load_state_dict(base.head.state_dict())

    def encode(self, bins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log variance) (B, Z) of whole sequences bins (B, 3N)."""
        axis = torch.arange(bins.shape[1]) % 3
        x = torch.cat([nn.functional.one_hot(bins, self.g),
                       nn.functional.one_hot(axis, 3).expand(len(bins), -1, -1)], -1)  # fmt: skip
        _, (h, _) = self.encoder(x.float())
        mu, logvar = self.to_latent(torch.cat([h[0], h[1]], -1)).chunk(2, -1)
        return mu, logvar

    def inputs(self, bins: torch.Tensor, steps: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Decoder input (..., G + 3N-1 + Z): one-hot bin ++ one-hot step ++ z (..., Z)."""
        one = nn.functional.one_hot
        return torch.cat([one(bins, self.g).float(), one(steps, self.n_steps).float(), z], -1)

    def decode(self, bins: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, G) of coordinates 1 .. T from bins (B, T) of 0 .. T-1 and z (B, Z)."""
        steps = torch.arange(bins.shape[1]).expand_as(bins)
        out, _ = self.decoder(self.inputs(bins, steps, z[:, None, :].expand(-1, bins.shape[1], -1)))
        return self.head(torch.relu(out))

    def losses(self, bins, target):
        """Per structure: cross-entropy against the Gaussian targets summed over coordinates
        (B,), with z drawn from the encoder; KL per dimension (B, Z)."""
        mu, logvar = self.encode(bins)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        logp = torch.log_softmax(self.decode(bins[:, :-1], z), -1)
        recon = -(target[:, 1:] * logp).sum((-1, -2))
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)
        return recon, kl


def data(model, nset, ids, augment, frames, seed):
    frac = prepare_networks(nset, ids, augment, seed, frames).seqs.frac
    return torch.from_numpy(np.ascontiguousarray(frac)).float()


def targets(model, frac):
    x = frac.numpy()
    bins = torch.from_numpy(bin_index(x, model.config.n_bins))
    return bins, torch.from_numpy(project(x, model.config.n_bins, model.meta["sigma_frac"]))


def validate(base, latent, frac, lengths):
    """On the validation networks: the NLL bound (-ELBO: -log p of the true bins given z
    drawn from the encoder, + KL) in nats per coordinate with the log bin width added, as
    repap train reports NLL, and the mean KL per structure."""
    bins, _ = targets(base, frac)
    n = bins.shape[1] - 1
    log_width = float(np.log(lengths[np.arange(1, n + 1) % 3] / base.config.n_bins).mean())
    latent.eval()
    recon, kl = [], []
    with torch.no_grad():
        for b in bins.split(64):
            mu, logvar = latent.encode(b)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            logp = torch.log_softmax(latent.decode(b[:, :-1], z), -1)
            recon.append(-logp.gather(-1, b[:, 1:, None]).sum((-1, -2)))
            kl.append(0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(-1))
    recon, kl = torch.cat(recon), torch.cat(kl)
    return {"val_nll_bound": float(((recon + kl) / n).mean() + log_width),
            "kl_per_structure": float(kl.mean())}  # fmt: skip


def generate(base, latent, n, seed, min_dist, temperature):
    z = torch.randn(n, latent.latent, generator=torch.Generator().manual_seed(seed))
    cfg = base.config
    state = tuple(torch.zeros(cfg.layers, n, cfg.hidden) for _ in range(2))

    def next_logits(rows, bins, steps, h, c, coords):
        out, (h2, c2) = latent.decoder(latent.inputs(bins, steps, z[rows])[:, None], (h, c))
        h.copy_(h2)
        c.copy_(c2)
        return latent.head(torch.relu(out[:, 0]))

    latent.eval()
    options, _ = SamplingOptions(seed, min_dist, temperature, 10, 10).check(base, "cpu")
    return cpu_loop(base.meta, base.n_atoms, cfg.n_bins, SOFTMAX, state, next_logits, 0, n,
                    options)  # fmt: skip


if __name__ == "__main__":
    out = Path(sys.argv[1])
    size, augment, frames, epochs, n = (
        int(a) for a in [*sys.argv[2:], "16", "3", "10", "6", "1000"][:5]
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    nset, base = repap.reference_set(), repap.pretrained("networks-64")
    lengths = np.diag(nset.cell)
    seen = base.meta["data"]
    val = data(base, nset, np.array(seen["networks_val"]), 0, frames, 0)
    latent = LatentRePAP(base, size)
    log = {"latent": size, "augment": augment, "frames": frames, "epochs": epochs,
           "free_bits": FREE_BITS, "history": []}  # fmt: skip
    start = time.perf_counter()
    if (out / "latent.pt").is_file():
        latent.load_state_dict(torch.load(out / "latent.pt"))
        log = json.loads((out / "latent.json").read_text())
    else:
        fit = data(base, nset, np.array(seen["networks_fit"]), augment, frames, 1)
        opt = torch.optim.Adam(latent.parameters(), lr=1e-3)
        batches = (len(fit) + 63) // 64
        for epoch in range(epochs):
            latent.train()
            for i, idx in enumerate(torch.randperm(len(fit)).split(64)):
                bins, target = targets(base, fit[idx])
                recon, kl = latent.losses(bins, target)
                beta = min(1.0, (epoch * batches + i + 1) / batches)
                kl_term = kl.mean(0).clamp_min(FREE_BITS).sum()
                loss = (recon.mean() + beta * kl_term) / (bins.shape[1] - 1)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(latent.parameters(), 1.0)
                opt.step()
            row = {"epoch": epoch, **validate(base, latent, val, lengths),
                   "seconds": time.perf_counter() - start}  # fmt: skip
            log["history"].append(row)
            print(row, flush=True)
        torch.save(latent.state_dict(), out / "latent.pt")
        log["train_seconds"] = time.perf_counter() - start
        (out / "latent.json").write_text(json.dumps(log, indent=1) + "\n")
    t = time.perf_counter()
    ens = generate(base, latent, n, 0, 2.0, 1.0)
    ens.info["seconds_per_structure"] = (time.perf_counter() - t) / n
    report, _ = evaluate_networks(ens, nset, nset.subset("train"), baseline_size=200)
    log["judge"] = {**report, "generation_summary": ens.summary()}
    (out / "latent.json").write_text(json.dumps(log, indent=1, default=float) + "\n")
    print(markdown(report))
