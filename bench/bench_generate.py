"""Generation on CPU (2 threads), in one run: 2,000 structures of the shipped recommended
model at the demo's temperature (0.5) with clash rejection at 2.0 A.

- repap: ``model.sample`` (stateful LSTM steps + the C++ sampler kernel, one call per step);
- authors' approach re-implemented: one structure at a time, the whole prefix re-run through
  ``nn.LSTM`` for every new coordinate, no rejection (as in their code); timed on a few
  structures and scaled to 2,000;
- pure torch: the same batched stateful stepping in torch ops, ``torch.multinomial`` draws,
  minimum-image distances in torch, rejection by redrawing the clashing coordinate;
- bare LSTM stepping of the same batch, no sampling at all: the compute floor.

Every peer runs with the allocator setting ``repap generate`` makes
(``keep_freed_memory``).

``REPAP_BENCH_MODEL=paper`` (or a checkpoint path) and ``REPAP_BENCH_TEMPERATURE=1.0``
benchmark another model or temperature. Run: ``make bench`` or
``pytest bench/bench_generate.py``.
"""

import os

import numpy as np
import pytest
import torch

import repap
from repap.data.shipped import MODELS
from repap.runtime import keep_freed_memory

THREADS = 2
N = 2000
AUTHORS_N = 3
MIN_DIST = 2.0
TEMPERATURE = float(os.environ.get("REPAP_BENCH_TEMPERATURE", 0.5))
torch.set_num_threads(THREADS)
repap.set_num_threads(THREADS)
keep_freed_memory()  # as `repap generate` does: give every peer the same allocator


@pytest.fixture(scope="module")
def model():
    name = os.environ.get("REPAP_BENCH_MODEL", "recommended")
    return repap.pretrained(name) if name in MODELS else repap.load_model(name)


def distribution(model, logits):
    return (model.log_probs(logits) / TEMPERATURE).softmax(-1)


def authors(model, n, seed=0):
    """Their generation loop: for coordinate k, run the LSTM on the whole prefix 0..k-1."""
    rng = np.random.default_rng(seed)
    g = model.config.n_bins
    counts = np.asarray(model.meta["first_coordinate"]["counts"], float)
    out = []
    with torch.no_grad():
        for _ in range(n):
            bins = [rng.choice(g, p=counts / counts.sum())]
            for _k in range(1, 3 * model.n_atoms):
                logits = model(torch.tensor([bins]))[0, -1]
                p = distribution(model, logits).double().numpy()
                bins.append(rng.choice(g, p=p / p.sum()))
            out.append(bins)
    return out


def pure_torch(model, n, seed=0):
    """Batched stateful stepping in torch ops with torch.multinomial, and rejection by
    redrawing the third coordinate of a clashing atom (up to 200 times)."""
    gen = torch.Generator().manual_seed(seed)
    g, n_atoms = model.config.n_bins, model.n_atoms
    cell = torch.tensor(model.meta["cell"], dtype=torch.float32)
    lstm = model.lstm
    w_ih = [getattr(lstm, f"weight_ih_l{i}") for i in range(lstm.num_layers)]
    w_hh = [getattr(lstm, f"weight_hh_l{i}") for i in range(lstm.num_layers)]
    bias = [getattr(lstm, f"bias_ih_l{i}") + getattr(lstm, f"bias_hh_l{i}") for i in range(2)]
    counts = torch.tensor(model.meta["first_coordinate"]["counts"], dtype=torch.float32)
    h = [torch.zeros(n, lstm.hidden_size) for _ in range(lstm.num_layers)]
    c = [torch.zeros(n, lstm.hidden_size) for _ in range(lstm.num_layers)]
    frac = torch.zeros(n, n_atoms, 3)
    p = counts.expand(n, g)
    unresolved = 0
    with torch.no_grad():
        for k in range(3 * n_atoms):
            atom, axis = divmod(k, 3)
            bins = torch.multinomial(p, 1, generator=gen).squeeze(1)
            frac[:, atom, axis] = (bins + torch.rand(n, generator=gen)) / g
            if axis == 2 and atom > 0:
                for _ in range(200):
                    d = frac[:, atom : atom + 1] - frac[:, :atom]
                    d = (d - torch.round(d)) @ cell
                    clash = (d.norm(dim=-1) < MIN_DIST).any(1)
                    if not clash.any():
                        break
                    redraw = torch.multinomial(p[clash], 1, generator=gen).squeeze(1)
                    bins[clash] = redraw
                    frac[clash, atom, 2] = (redraw + torch.rand(len(redraw), generator=gen)) / g
                unresolved += int(clash.sum())
            if k == 3 * n_atoms - 1:
                break
            x = torch.zeros(n, g + model.n_steps)
            x[torch.arange(n), bins] = 1.0
            x[:, g + k] = 1.0
            for layer in range(lstm.num_layers):
                gates = x @ w_ih[layer].t() + h[layer] @ w_hh[layer].t() + bias[layer]
                i, f, gg, o = gates.chunk(4, 1)
                c[layer] = torch.sigmoid(f) * c[layer] + torch.sigmoid(i) * torch.tanh(gg)
                h[layer] = torch.sigmoid(o) * torch.tanh(c[layer])
                x = h[layer]
            p = distribution(model, model.head(torch.relu(x)))
    return frac, unresolved


def bare_stepping(model, n):
    """The LSTM steps of one batch with fixed inputs: no drawing, no checks."""
    stepper = model.stepper("cpu")
    h, c = stepper.zero_state(n, torch.device("cpu"))
    bins = torch.zeros(n, dtype=torch.int64)
    with torch.no_grad():
        for k in range(3 * model.n_atoms - 1):
            stepper(bins, torch.full((n,), k), h, c)
    return h


def record(benchmark, n):
    benchmark.extra_info["structures_per_s"] = round(n / benchmark.stats.stats.mean, 1)


@pytest.mark.benchmark(group="generate")
def test_repap(benchmark, model):
    model.sample(50, seed=1)  # warm up
    ens = benchmark.pedantic(
        lambda: model.sample(N, seed=0, min_dist=MIN_DIST, temperature=TEMPERATURE, batch_size=N),
        rounds=3,
    )
    record(benchmark, N)
    summary = ens.summary()
    benchmark.extra_info["atoms_redrawn_fraction"] = round(summary["atoms_redrawn_fraction"], 4)
    benchmark.extra_info["failed"] = summary["failed"]


@pytest.mark.benchmark(group="generate")
def test_bare_lstm_stepping(benchmark, model):
    benchmark.pedantic(lambda: bare_stepping(model, N), rounds=3)
    record(benchmark, N)


@pytest.mark.benchmark(group="generate")
def test_pure_torch(benchmark, model):
    _, unresolved = benchmark.pedantic(lambda: pure_torch(model, N), rounds=3)
    record(benchmark, N)
    benchmark.extra_info["atoms_left_clashing"] = unresolved


@pytest.mark.benchmark(group="generate")
def test_authors_prefix_rerun(benchmark, model):
    benchmark.pedantic(lambda: authors(model, AUTHORS_N), rounds=1)
    benchmark.extra_info["structures_per_s"] = round(AUTHORS_N / benchmark.stats.stats.mean, 3)
    benchmark.extra_info["note"] = f"timed on {AUTHORS_N} structures"
