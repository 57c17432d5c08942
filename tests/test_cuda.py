"""The CUDA paths against the CPU ones (skipped without a CUDA device; `make gpu-check` runs
them on a GPU machine): training, generation with the shipped models, and the command line."""

from pathlib import Path

import numpy as np
import pytest
import torch

import repap
from repap.cli import main
from repap.model.recurrent import ModelConfig
from repap.training.loop import TrainConfig

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not (torch.cuda.is_available() and repap.cuda_available()),
        reason="needs a CUDA device and a CUDA build of repap",
    ),
]


def test_forward_on_cuda_equals_cpu():
    """cuDNN's LSTM (the CUDA path) computes the function the CPU path computes."""
    model = repap.pretrained("recommended")
    bins = torch.randint(0, model.config.n_bins, (16, model.n_steps))
    gpu_model = repap.pretrained("recommended", device="cuda")
    with torch.no_grad():
        cpu = model(bins)
        # cuDNN rounds to TF32 by default (torch's setting): compare in full float32 ...
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            gpu = gpu_model(bins.cuda())
        tf32 = gpu_model(bins.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=2e-4)
    # ... and with TF32 the logits move by its rounding (10-bit mantissa), no more
    torch.testing.assert_close(tf32.cpu(), cpu, rtol=0, atol=0.05)


def test_training_on_cuda_learns_and_matches_cpu_targets():
    """A short run on the device lowers the validation loss like the same run on the CPU."""
    traj = repap.reference()[:400]
    config = TrainConfig(model=ModelConfig(hidden=32), epochs=3, batch_size=32, patience=0)
    runs = {}
    for device in ("cpu", "cuda"):
        model = repap.train(traj, config, device=device, progress=False)
        runs[device] = [e["val_loss"] for e in model.meta["history"]]
        assert next(model.parameters()).device.type == device
    assert runs["cuda"][-1] < runs["cuda"][0]
    # same data, targets and initial weights: the curves differ only by dropout masks and
    # rounding (cuDNN vs oneDNN), not by a different function
    np.testing.assert_allclose(runs["cuda"], runs["cpu"], rtol=0.1)


@pytest.mark.parametrize("name", ["paper", "recommended"])
def test_generation_on_cuda_equals_cpu(name):
    """Same seed, same structures: the sampler keys its random numbers by (seed, structure,
    coordinate, attempt) on both devices. A draw can move across a bin edge where cuBLAS and
    the CPU round a logit differently (about once in a million draws), so nearly every
    structure, not all, must be the same."""
    model = repap.pretrained(name)
    kw = {"seed": 7, "min_dist": 2.0, "temperature": 0.5}
    cpu = model.sample(300, device="cpu", **kw)
    gpu = model.sample(300, device="cuda", precision="float32", **kw)
    assert len(gpu) + gpu.summary()["failed"] == 300
    common, ci, gi = np.intersect1d(cpu.index, gpu.index, return_indices=True)
    same = np.all(np.abs(cpu.positions[ci] - gpu.positions[gi]) < 1e-4, axis=(1, 2))
    assert same.mean() >= 0.98, f"{same.mean():.3f} of {len(common)} structures equal"
    for atoms in gpu[:50]:  # no clash: an independent distance computation (ASE)
        d = atoms.get_all_distances(mic=True)
        np.fill_diagonal(d, np.inf)
        assert d.min() >= 2.0


def test_generate_command_on_cuda(tmp_path):
    out = tmp_path / "gen.npz"
    shipped = Path(repap.__file__).parent / "data" / "models" / "a-si-30-paper.pt"
    assert main(["generate", str(shipped), "-n", "500", "--device", "cuda", "--quiet",
                 "--out", str(out)]) == 0  # fmt: skip
    assert len(repap.read(out)) == 500


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_cuda_graph_replay_equals_eager_steps(monkeypatch, precision):
    """The generation step captured as a CUDA graph and replayed, its rules in the fused
    kernels, does what the same step with the rules as torch ops does, and what that step run
    op by op does (redraws, restarts, failures and compaction: a clash-heavy tiny model); in
    float32 both also give the CPU loop's structures, whose redraw rule is plain torch
    indexing (an independent check of the rewind kernel)."""
    from repap.model import sampling

    monkeypatch.setattr(sampling, "COMPACT_MIN_ROWS", 0)  # compact this small batch too
    cell = np.eye(3) * 6.0
    rng = np.random.default_rng(3)
    traj = repap.Trajectory(rng.random((60, 8, 3)) @ cell, cell, np.full(8, 14), np.ones(3, bool))
    config = TrainConfig(model=ModelConfig(n_bins=24, hidden=16), epochs=1, batch_size=16)
    model = repap.train(traj, config, progress=False, device="cpu")
    # max_retries 0: every clash restarts its structure, and some structures fail
    kw = {"seed": 2, "min_dist": 2.0, "device": "cuda", "precision": precision,
          "max_retries": 0, "max_restarts": 6}  # fmt: skip
    graph = model.sample(400, **kw)
    monkeypatch.setattr(sampling, "FUSED_RULES", False)  # the rules as torch ops
    ops = model.sample(400, **kw)
    monkeypatch.setattr(sampling, "CUDA_GRAPHS", False)
    eager = model.sample(400, **kw)
    summary = graph.summary()
    assert summary["atoms_redrawn_fraction"] > 0.05 and summary["restarts"] > 0  # exercised
    for other in (ops, eager):  # fused kernels and graphs change nothing, to the bit
        np.testing.assert_array_equal(graph.index, other.index)
        np.testing.assert_array_equal(graph.positions, other.positions)
        np.testing.assert_array_equal(graph.redrawn, other.redrawn)
        np.testing.assert_array_equal(graph.restarts, other.restarts)
        np.testing.assert_array_equal(graph.failed, other.failed)
    if precision == "float32":
        cpu = model.sample(400, **{**kw, "device": "cpu"})
        common, ci, gi = np.intersect1d(cpu.index, graph.index, return_indices=True)
        same = np.all(np.abs(cpu.positions[ci] - graph.positions[gi]) < 1e-4, axis=(1, 2))
        assert same.mean() >= 0.98 and len(common) >= 0.9 * len(cpu), (same.mean(), len(common))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_cuda_step_equals_the_forward_pass(output, precision):
    """The CUDA step (cuBLAS products and the fused cell kernel) gives, coordinate by
    coordinate, the logits of the CPU's teacher-forced forward pass, for random weights and
    biases; with a mask, the rows left out keep their state and the others step as usual.
    bfloat16 operands (8-bit mantissa, 2^-9 relative rounding) move these logits, of order 1,
    by up to a few 1e-2 over 11 steps; a wrong bias, gate or layer moves them by order 1."""
    from repap.model.recurrent import RePAP

    torch.manual_seed(4)
    config = ModelConfig(n_bins=12, hidden=16, layers=3, dropout=0.0, output=output)
    net = RePAP(config, n_atoms=4).eval()
    cuda = torch.device("cuda")
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.6, 0.6)
        bins = torch.randint(0, 12, (5, net.n_steps))
        full = net(bins)
        step = net.stepper(cuda, precision)
        h, c = step.zero_state(5, cuda)
        out = [step(bins[:, t].to(cuda), torch.full((5,), t, device=cuda), h, c)
               for t in range(net.n_steps)]  # fmt: skip
        tol = 1e-4 if precision == "float32" else 5e-2
        torch.testing.assert_close(torch.stack(out, 1).cpu(), full, rtol=tol, atol=tol)
        go = torch.tensor([True, False, True, False, True], device=cuda)
        h_all, c_all = h.clone(), c.clone()
        step(bins[:, 0].to(cuda), torch.zeros(5, dtype=torch.int64, device=cuda), h_all, c_all)
        h_go, c_go = h.clone(), c.clone()
        step(bins[:, 0].to(cuda), torch.zeros(5, dtype=torch.int64, device=cuda), h_go, c_go, go)
    torch.testing.assert_close(h_go[:, ~go], h[:, ~go], rtol=0, atol=0)
    torch.testing.assert_close(c_go[:, ~go], c[:, ~go], rtol=0, atol=0)
    torch.testing.assert_close(h_go[:, go], h_all[:, go], rtol=0, atol=0)


def test_auto_precision_is_bfloat16_on_tensor_core_gpus():
    from repap.runtime import resolve_precision

    dev = torch.device("cuda")
    want = "bfloat16" if torch.cuda.get_device_capability(dev) >= (8, 0) else "float32"
    assert resolve_precision(None, dev) == resolve_precision("auto", dev) == want
    ens = repap.pretrained("paper").sample(10, device="cuda")
    assert ens.info.get("precision", "float32") == want


def test_bfloat16_generation_draws_the_float32_distribution():
    """65,536 structures of the recommended model at T = 0.5 with 2 A rejection, bfloat16
    products against float32 ones (independent structures: other indices): per-coordinate
    bin histograms and per-structure pair-distance histograms agree (tests/two_sample.py,
    Bonferroni-corrected p > 1e-3); the same test fails a planted bias, float32 at T = 0.52
    (4 % hotter); no pair under 2 A in the bfloat16 ensemble."""
    from two_sample import compare, pair_histograms

    model = repap.pretrained("recommended")
    cell, g, n = np.asarray(model.meta["cell"]), model.config.n_bins, 65536
    kw = {"min_dist": 2.0, "device": "cuda", "seed": 11}
    low = model.sample(n, temperature=0.5, precision="bfloat16", **kw)
    full = model.sample(n, temperature=0.5, precision="float32", start=n, **kw)
    hot = model.sample(n, temperature=0.52, precision="float32", start=n, **kw)
    assert len(low) >= 0.999 * n and len(full) >= 0.999 * n
    same = compare(low.positions, full.positions, cell, g, rmax=4.2)
    planted = compare(full.positions, hot.positions, cell, g, rmax=4.2)
    print(f"bfloat16 vs float32: {same}; float32 T=0.5 vs T=0.52: {planted}")
    assert min(same.values()) > 1e-3, same
    assert min(planted.values()) < 1e-3, planted
    close = pair_histograms(low.positions, cell, 2.0 - 1e-5, 1)
    assert close.sum() == 0
