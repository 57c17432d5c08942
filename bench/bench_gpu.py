"""The CUDA paths against their peers on the same GPU, in one run (skipped without one).

- projection, 40,000 x 90 coordinates x G (G = 50, 200): ``repap.project`` on the device
  against the best plain torch (every step in place), ``torch.compile`` of the functional form,
  the memory-write floor (``out.fill_``) and the device's copy bandwidth (a large
  device-to-device copy, bytes read + written), which sets the target: 70 % of it for the
  bytes the projection writes;
- generation, structures/s for the shipped 30-atom models (and the 64-atom ones where they
  exist) with clash rejection at 2 A: ``model.sample`` against bare LSTM stepping of the same
  batch (repap's stepper, and ``nn.LSTM`` stepped one coordinate at a time through cuDNN) and a
  pure-torch sampler (``torch.multinomial``, rejection by redrawing the clashing coordinate);
- generation as atoms grow: the 64- and 216-atom models trained across networks, structures/s
  and peak memory;
- training, sequences/s for the paper and recommended presets: repap's training step (targets
  from the projection kernel on the device) against plain ``nn.LSTM`` with targets precomputed
  on the device, and that step's cuDNN LSTM alone (forward and backward, no head or loss): the
  bound on any training step built on cuDNN's LSTM.

Every timed call ends with ``torch.cuda.synchronize()``; ``extra_info`` holds the derived
rates. Run: ``make gpu-check`` (or ``pytest bench/bench_gpu.py`` on a CUDA machine).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import repap
from repap.model.recurrent import RePAP

sys.path.insert(0, str(Path(__file__).parent))
from bench_projection import best_torch, compiled_torch, functional_torch

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and repap.cuda_available()),
    reason="needs a CUDA device and a CUDA build of repap",
)
DEV = torch.device("cuda")
FRAMES = int(os.environ.get("REPAP_BENCH_FRAMES", 40_000))
COORDS = 90
SIGMA = 0.2 / 8.4366
REPS = 20  # projection calls per timed round: one sync per 20 launches
GEN_N = int(os.environ.get("REPAP_BENCH_GEN_N", 65_536))
MIN_DIST = 2.0
TEMPERATURE = 0.5


def sync_after(fn, reps: int = 1):
    def run():
        out = None
        for _ in range(reps):
            out = fn()
        torch.cuda.synchronize()
        return out

    return run


# --------------------------------------------------------------------------- projection
@pytest.fixture(scope="module")
def frac():
    gen = torch.Generator(device=DEV).manual_seed(0)
    return torch.rand(FRAMES, COORDS // 3, 3, device=DEV, generator=gen)


def test_copy_bandwidth(benchmark):
    """The device's memory bandwidth as a large copy sees it (bytes read + written)."""
    n = 1 << 29  # 2 GiB of float32
    src = torch.rand(n, device=DEV)
    dst = torch.empty_like(src)
    benchmark.group = "device"
    benchmark.pedantic(sync_after(lambda: dst.copy_(src), 5), rounds=5, warmup_rounds=1)
    per_call = benchmark.stats.stats.min / 5
    benchmark.extra_info["GB_per_s"] = round(2 * n * 4 / per_call / 1e9, 1)


@pytest.mark.parametrize("n_bins", [50, 200])
@pytest.mark.parametrize("peer", ["repap", "fill floor", "best torch", "torch.compile"])
def test_projection(benchmark, frac, n_bins, peer):
    benchmark.group = f"project F={FRAMES} coords={COORDS} G={n_bins} (per {REPS} calls)"
    out = torch.empty(FRAMES, COORDS, n_bins, device=DEV)
    if peer == "repap":
        fn = lambda: repap.project(frac, n_bins, SIGMA, out=out)  # noqa: E731
    elif peer == "fill floor":
        fn = lambda: out.fill_(0.5)  # noqa: E731
    elif peer == "best torch":
        fn = lambda: best_torch(frac, n_bins, SIGMA, out)  # noqa: E731
    else:
        fn = lambda: compiled_torch(frac, n_bins, SIGMA)  # noqa: E731
    benchmark.pedantic(sync_after(fn, REPS), rounds=5, warmup_rounds=2)
    per_call = benchmark.stats.stats.min / REPS
    written = out.numel() * 4
    benchmark.extra_info["ms_per_call"] = round(per_call * 1e3, 4)
    benchmark.extra_info["GB_per_s_written"] = round(written / per_call / 1e9, 1)
    if peer == "repap":  # the result is right, not merely fast
        cpu = repap.project(frac[:64].cpu(), n_bins, SIGMA)
        assert torch.allclose(out[:64].cpu(), cpu.reshape(64, COORDS, n_bins), atol=1e-6)


# --------------------------------------------------------------------------- generation
def _models():
    names = ["paper", "recommended"]
    extra = os.environ.get("REPAP_BENCH_GPU_MODELS")  # more checkpoints, comma-separated
    return names + (extra.split(",") if extra else [])


def _load(name):
    if name in ("paper", "recommended", "networks-64", "networks-216"):
        return repap.pretrained(name)
    return repap.load_model(name)


def bare_stepper(model: RePAP, n: int, precision: str = "float32"):
    """repap's stepper over the whole sequence with fixed inputs: no drawing, no checks."""
    stepper = model.stepper(DEV, precision)

    def run():
        h, c = stepper.zero_state(n, DEV)
        bins = torch.zeros(n, dtype=torch.int64, device=DEV)
        steps = torch.zeros(n, dtype=torch.int64, device=DEV)
        for _k in range(3 * model.n_atoms - 1):
            logits = stepper(bins, steps, h, c)
            steps += 1
        torch.cuda.synchronize()
        return logits

    return run


def bare_cudnn(model: RePAP, n: int):
    """nn.LSTM (cuDNN) stepped one coordinate at a time with its (h, c), plus the head."""
    lstm = torch.nn.LSTM(model.lstm.input_size, model.lstm.hidden_size, model.lstm.num_layers).to(
        DEV
    )
    lstm.load_state_dict(model.lstm.state_dict())
    head = torch.nn.Linear(model.lstm.hidden_size, model.config.n_bins).to(DEV)
    head.load_state_dict(model.head.state_dict())
    g = model.config.n_bins

    def run():
        state = None
        x = torch.zeros(1, n, lstm.input_size, device=DEV)
        for k in range(3 * model.n_atoms - 1):
            x.zero_()
            x[0, :, 0] = 1.0
            x[0, :, g + k] = 1.0
            out, state = lstm(x, state)
            logits = head(torch.relu(out[0]))
        torch.cuda.synchronize()
        return logits

    return run


def pure_torch(model: RePAP, n: int, seed: int = 0):
    """Batched stateful stepping in torch ops on the device, torch.multinomial draws, and
    rejection by redrawing the third coordinate of a clashing atom (up to 200 times)."""
    g, n_atoms = model.config.n_bins, model.n_atoms
    cell = torch.tensor(model.meta["cell"], dtype=torch.float32, device=DEV)
    stepper = model.stepper(DEV)
    counts = torch.tensor(model.meta["first_coordinate"]["counts"], dtype=torch.float32)

    def run():
        gen = torch.Generator(device=DEV).manual_seed(seed)
        h, c = stepper.zero_state(n, DEV)
        frac = torch.zeros(n, n_atoms, 3, device=DEV)
        p = counts.to(DEV).expand(n, g)
        for k in range(3 * n_atoms):
            atom, axis = divmod(k, 3)
            bins = torch.multinomial(p, 1, generator=gen).squeeze(1)
            frac[:, atom, axis] = (bins + torch.rand(n, device=DEV, generator=gen)) / g
            if axis == 2 and atom > 0:
                for _ in range(200):
                    d = frac[:, atom : atom + 1] - frac[:, :atom]
                    d = (d - torch.round(d)) @ cell
                    clash = (d.norm(dim=-1) < MIN_DIST).any(1)
                    if not bool(clash.any()):
                        break
                    redraw = torch.multinomial(p[clash], 1, generator=gen).squeeze(1)
                    bins[clash] = redraw
                    u = torch.rand(len(redraw), device=DEV, generator=gen)
                    frac[clash, atom, 2] = (redraw + u) / g
            if k == 3 * n_atoms - 1:
                break
            logits = stepper(bins, torch.full((n,), k, device=DEV), h, c)
            p = (model.log_probs(logits) / TEMPERATURE).softmax(-1)
        torch.cuda.synchronize()
        return frac

    return run


GEN_PEERS = ["repap", "repap FP32", "repap TF32", "bare stepper BF16", "bare stepper TF32",
             "bare stepper", "bare cuDNN", "pure torch"]  # fmt: skip
SCALE_PEERS = ["repap", "bare stepper BF16", "bare stepper TF32"]


def _generate_case(benchmark, name, peer, n):
    model = _load(name)
    benchmark.group = f"generate {name} ({model.n_atoms} atoms), {n} structures"
    # "TF32": the float32 path with its matmuls in TensorFloat-32 (torch's process-wide switch,
    # set here by the benchmark, never by repap); "BF16": repap's bfloat16 products, the
    # default on GPUs that have them; "FP32": float32 products
    torch.backends.cuda.matmul.allow_tf32 = peer.endswith("TF32")
    precision = "bfloat16" if peer in ("repap", "bare stepper BF16") else "float32"
    if peer.startswith("repap"):

        def fn():
            ens = model.sample(n, seed=0, min_dist=MIN_DIST, temperature=TEMPERATURE,
                               batch_size=n, device="cuda", precision=precision)  # fmt: skip
            torch.cuda.synchronize()
            return ens

    elif peer.startswith("bare stepper"):
        fn = bare_stepper(model, n, precision)
    elif peer == "bare cuDNN":
        fn = bare_cudnn(model, n)
    else:
        fn = pure_torch(_load(name).to(DEV), n)  # its log_probs run on the device
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    with torch.no_grad():
        result = benchmark.pedantic(fn, rounds=3, warmup_rounds=1)
    benchmark.extra_info["structures_per_s"] = round(n / benchmark.stats.stats.min)
    benchmark.extra_info["peak_MiB"] = round((torch.cuda.max_memory_allocated() - base) / 2**20)
    torch.backends.cuda.matmul.allow_tf32 = False
    if peer.startswith("repap"):
        summary = result.summary()
        benchmark.extra_info["atoms_redrawn_fraction"] = round(summary["atoms_redrawn_fraction"], 4)
        benchmark.extra_info["failed"] = summary["failed"]
        assert len(result) + summary["failed"] == n


@pytest.mark.parametrize("name", _models())
@pytest.mark.parametrize("peer", GEN_PEERS)
def test_generate(benchmark, name, peer):
    _generate_case(benchmark, name, peer, GEN_N)


@pytest.mark.parametrize("name", ["networks-64", "networks-216"])
@pytest.mark.parametrize("peer", SCALE_PEERS)
def test_generate_scale(benchmark, name, peer):
    """Structures/s and peak memory as atoms grow (30 -> 64 -> 216), the trained-across-
    networks models; fewer structures at 216 atoms (648 steps each)."""
    _generate_case(benchmark, name, peer, GEN_N if name == "networks-64" else GEN_N // 4)


# --------------------------------------------------------------------------- training
class PlainModel(torch.nn.Module):
    def __init__(self, n_in: int, hidden: int, n_bins: int, dropout: float):
        super().__init__()
        self.lstm = torch.nn.LSTM(n_in, hidden, 2, batch_first=True, dropout=dropout)
        self.head = torch.nn.Linear(hidden, n_bins)

    def forward(self, x):
        return self.head(torch.relu(self.lstm(x)[0]))


@pytest.fixture(scope="module")
def train_frac():
    traj = repap.reference()
    return repap.prepare(traj).frac, float(traj.cell[0, 0])


@pytest.mark.parametrize("batch", [128, 2048])
@pytest.mark.parametrize("preset", ["paper", "recommended"])
@pytest.mark.parametrize("peer", ["repap", "plain nn.LSTM", "cuDNN LSTM alone"])
def test_train_step(benchmark, train_frac, preset, batch, peer):
    frac_np, length = train_frac
    config = repap.TrainConfig.preset(preset)
    g, sigma = config.model.n_bins, config.model.sigma / length
    benchmark.group = f"train-step {preset} (batch {batch})"
    frac = torch.from_numpy(frac_np[:batch]).to(DEV)  # data resident on the device
    bins = repap.bin_index(frac, g)
    low = config.precision == "bfloat16"
    torch.manual_seed(0)
    if peer == "repap":
        model = RePAP(config.model, n_atoms=frac.shape[1]).to(DEV).train()
        model.matmul_dtype = getattr(torch, config.precision)

        def loss_fn():
            target = repap.project(frac, g, sigma)[:, 1:]
            return model.loss(model(bins[:, :-1]), target).mean()

    else:  # plain nn.LSTM, or its LSTM alone (no head, no loss: the bound of either)
        n_steps = bins.shape[1] - 1
        model = PlainModel(g + n_steps, config.model.hidden, g, config.model.dropout).to(DEV)
        target = functional_torch(frac, g, sigma)[:, 1:]  # precomputed for the data set
        steps = torch.eye(n_steps, device=DEV).expand(batch, n_steps, n_steps)
        x = torch.cat([torch.nn.functional.one_hot(bins[:, :-1], g).float(), steps], -1)

        def loss_fn():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=low):
                if peer == "cuDNN LSTM alone":
                    return model.lstm(x)[0].float().mean()
                logits = model(x).float()
            if config.model.output == "sigmoid":
                return (torch.sigmoid(logits) - target).square().mean()
            return -(target * torch.log_softmax(logits, -1)).sum(-1).mean()

    params = list(model.parameters())
    opt = (torch.optim.Adam if config.optimizer == "adam" else torch.optim.RMSprop)(params, 1e-3)

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    benchmark.pedantic(sync_after(step, 10), rounds=5, warmup_rounds=1)
    benchmark.extra_info["sequences_per_s"] = round(10 * batch / benchmark.stats.stats.min)
    assert np.isfinite(step().item())
