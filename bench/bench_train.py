"""Training throughput on CPU (2 threads), in one run: repap's training step against a plain
PyTorch implementation of the paper.

Every peer does one optimiser step (RMSprop, lr 1e-3) of the paper model (LSTM 2 x 256,
dropout 0.5, ReLU, linear 256 -> 50, sigmoid, MSE against the Gaussian of the next
coordinate) on the same batch of 128 sequences of the shipped a-Si reference (30 atoms: 89
steps). Peers:

- plain PyTorch: ``nn.LSTM`` on dense one-hot inputs (G + 3N - 1 = 139 wide), targets
  precomputed with torch (the whole data set's targets held in memory, indexed per batch);
- plain PyTorch under ``torch.autocast(bfloat16)``, the stock way to use bfloat16;
- repap, float32: ``RePAP`` as ``repap.train`` runs it (torch's fused LSTM kernel one layer
  at a time with repap's sample-keyed dropout), targets from the projection kernel per batch;
- repap, bfloat16 (``precision="bfloat16"``).

Every peer runs with the allocator setting ``repap train`` makes (``keep_freed_memory``), so
the comparison is of the step itself; ``REPAP_BENCH_DEFAULT_ALLOCATOR=1`` runs them all with
glibc's default instead (what a plain PyTorch script gets). ``extra_info`` holds sequences/s
and the time of one epoch over 40,000 sequences (312.5 batches). Run: ``make bench`` or
``pytest bench/bench_train.py``.
"""

import math
import os

import numpy as np
import pytest
import torch

import repap
from repap.model.lstm import cpu_bfloat16_native
from repap.model.recurrent import ModelConfig, RePAP
from repap.runtime import keep_freed_memory

THREADS = 2
BATCH = 128
G = 50
SIGMA = 0.2  # Angstrom
EPOCH = 40_000
torch.set_num_threads(THREADS)
repap.set_num_threads(THREADS)
if os.environ.get("REPAP_BENCH_DEFAULT_ALLOCATOR") != "1":
    keep_freed_memory()
NATIVE_BF16 = pytest.mark.skipif(
    not cpu_bfloat16_native(),
    reason="no native bfloat16 on this CPU (AVX2 only): repap.train runs float32 here",
)


@pytest.fixture(scope="module")
def data():
    traj = repap.reference()[:2048]
    seqs = repap.prepare(traj)
    frac = seqs.frac[:BATCH]
    sigma = SIGMA / traj.cell[0, 0]
    return {"frac": frac, "sigma": sigma, "bins": torch.from_numpy(repap.bin_index(frac, G))}


def torch_targets(frac: np.ndarray, sigma: float) -> torch.Tensor:
    """Plain torch Gaussian targets (F, 3N, G), periodic distance, rows normalised."""
    x = torch.from_numpy(frac).reshape(len(frac), -1, 1).float()
    centres = (torch.arange(G) + 0.5) / G
    d = x - centres
    d = d - torch.round(d)
    w = torch.exp(-(d**2) / (2 * sigma**2))
    return w / w.sum(-1, keepdim=True)


class PlainPaperModel(torch.nn.Module):
    def __init__(self, n_steps: int):
        super().__init__()
        self.lstm = torch.nn.LSTM(G + n_steps, 256, 2, batch_first=True, dropout=0.5)
        self.head = torch.nn.Linear(256, G)

    def forward(self, x):
        out, _ = self.lstm(x)
        return torch.sigmoid(self.head(torch.relu(out)))


def plain_step_fn(data, autocast: bool):
    torch.manual_seed(0)
    bins = data["bins"]
    n_steps = bins.shape[1] - 1
    model = PlainPaperModel(n_steps)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    targets = torch_targets(data["frac"], data["sigma"])  # precomputed for the data set
    x = torch.cat(
        [
            torch.nn.functional.one_hot(bins[:, :-1], G).float(),
            torch.eye(n_steps).expand(len(bins), n_steps, n_steps),
        ],
        -1,
    )

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            p = model(x)
        loss = (p.float() - targets[:, 1:]).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def repap_step_fn(data, precision: torch.dtype):
    torch.manual_seed(0)
    bins = data["bins"]
    config = ModelConfig(n_bins=G, sigma=SIGMA)
    model = RePAP(config, n_atoms=bins.shape[1] // 3).train()
    model.matmul_dtype = precision
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    frac, sigma = data["frac"], data["sigma"]

    def step():
        target = torch.from_numpy(repap.project(frac, G, sigma))[:, 1:]
        loss = model.loss(model(bins[:, :-1], dropout_seed=1), target).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def run(benchmark, step):
    step()  # warm up outside the timing
    loss = benchmark.pedantic(step, rounds=6, iterations=1, warmup_rounds=1)
    assert math.isfinite(loss.item())
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["sequences_per_s"] = round(BATCH / mean, 1)
    benchmark.extra_info["epoch_40k_s"] = round(EPOCH / BATCH * mean, 1)


@pytest.mark.benchmark(group="train-step")
def test_plain_torch(benchmark, data):
    run(benchmark, plain_step_fn(data, autocast=False))


@NATIVE_BF16
@pytest.mark.benchmark(group="train-step")
def test_plain_torch_autocast_bf16(benchmark, data):
    run(benchmark, plain_step_fn(data, autocast=True))


@pytest.mark.benchmark(group="train-step")
def test_repap_float32(benchmark, data):
    run(benchmark, repap_step_fn(data, torch.float32))


@NATIVE_BF16
@pytest.mark.benchmark(group="train-step")
def test_repap_bfloat16(benchmark, data):
    run(benchmark, repap_step_fn(data, torch.bfloat16))
