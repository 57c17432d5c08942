"""The CUDA paths against the CPU ones (skipped without a CUDA device; `make gpu-check` runs
them on a GPU machine): training, generation with the shipped models, and the command line."""

from pathlib import Path

import numpy as np
import pytest
import torch

import repap
from repap.cli import main
from repap.model import ModelConfig
from repap.training import TrainConfig

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
    gpu = model.sample(300, device="cuda", **kw)
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


def test_cuda_graph_replay_equals_eager_steps(monkeypatch):
    """The generation step captured as a CUDA graph and replayed does what the same step run
    op by op does (redraws, restarts and compaction included: a clash-heavy tiny model)."""
    from repap import sampling

    cell = np.eye(3) * 6.0
    rng = np.random.default_rng(3)
    traj = repap.Trajectory(rng.random((60, 8, 3)) @ cell, cell, np.full(8, 14), np.ones(3, bool))
    config = TrainConfig(model=ModelConfig(n_bins=24, hidden=16), epochs=1, batch_size=16)
    model = repap.train(traj, config, progress=False, device="cpu")
    graph = model.sample(400, seed=2, min_dist=2.0, device="cuda")
    monkeypatch.setattr(sampling, "CUDA_GRAPHS", False)
    eager = model.sample(400, seed=2, min_dist=2.0, device="cuda")
    assert graph.summary()["atoms_redrawn_fraction"] > 0.05  # the rules were exercised
    np.testing.assert_array_equal(graph.index, eager.index)
    np.testing.assert_array_equal(graph.positions, eager.positions)
    np.testing.assert_array_equal(graph.redrawn, eager.redrawn)
    np.testing.assert_array_equal(graph.failed, eager.failed)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_cuda_step_equals_the_forward_pass(output):
    """The CUDA step (cuBLAS products and the fused cell kernel) gives, coordinate by
    coordinate, the logits of the CPU's teacher-forced forward pass, for random weights and
    biases; with a mask, the rows left out keep their state and the others step as usual."""
    from repap.model import RePAP

    torch.manual_seed(4)
    config = ModelConfig(n_bins=12, hidden=16, layers=3, dropout=0.0, output=output)
    net = RePAP(config, n_atoms=4).eval()
    cuda = torch.device("cuda")
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.6, 0.6)
        bins = torch.randint(0, 12, (5, net.n_steps))
        full = net(bins)
        step = net.stepper(cuda)
        h, c = step.zero_state(5, cuda)
        out = [step(bins[:, t].to(cuda), torch.full((5,), t, device=cuda), h, c)
               for t in range(net.n_steps)]  # fmt: skip
        torch.testing.assert_close(torch.stack(out, 1).cpu(), full, rtol=1e-4, atol=1e-4)
        go = torch.tensor([True, False, True, False, True], device=cuda)
        h_all, c_all = h.clone(), c.clone()
        step(bins[:, 0].to(cuda), torch.zeros(5, dtype=torch.int64, device=cuda), h_all, c_all)
        h_go, c_go = h.clone(), c.clone()
        step(bins[:, 0].to(cuda), torch.zeros(5, dtype=torch.int64, device=cuda), h_go, c_go, go)
    torch.testing.assert_close(h_go[:, ~go], h[:, ~go], rtol=0, atol=0)
    torch.testing.assert_close(c_go[:, ~go], c[:, ~go], rtol=0, atol=0)
    torch.testing.assert_close(h_go[:, go], h_all[:, go], rtol=0, atol=0)
