"""Training runs, checkpoints (round trip, resume, refusing bad files), the train CLI and
torchrun."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import repap
from repap.cli import main
from repap.model import checkpoint
from repap.model.recurrent import ModelConfig
from repap.training.loop import TrainConfig, checkpoint_paths


def small_run(rng, frames=30, n_atoms=3):
    sites = rng.uniform(0, 5.0, (n_atoms, 3))
    positions = sites + rng.normal(0, 0.1, (frames, n_atoms, 3))
    cell = np.array([[5.0, 0, 0], [0.5, 5.0, 0], [0.3, 0.2, 5.0]])  # triclinic on purpose
    return repap.Trajectory(positions, cell, np.full(n_atoms, 14), np.ones(3, bool))


def small_config(**kw):
    base = dict(
        model=ModelConfig(n_bins=12, hidden=16, dropout=0.5), epochs=2, batch_size=8, patience=0
    )
    base.update(kw)
    return TrainConfig(**base)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol)


def test_checkpoint_round_trip_keeps_weights_and_metadata(rng, tmp_path):
    traj = small_run(rng)
    model = repap.train(traj, small_config(), out=tmp_path / "m.pt", progress=False)
    best, last, plot = checkpoint_paths(tmp_path / "m.pt")
    assert plot.stat().st_size > 1000 and last.is_file()
    loaded = repap.load_model(best)
    assert_same_weights(weights(loaded), weights(model))
    meta = loaded.meta
    seqs = repap.prepare(traj)
    assert meta["order"] == seqs.order.tolist()
    assert meta["numbers"] == [14, 14, 14]
    np.testing.assert_allclose(meta["cell"], traj.cell)
    assert meta["sigma_angstrom"] == 0.2
    np.testing.assert_allclose(meta["sigma_frac"], 0.2 / np.linalg.norm(traj.cell, axis=1))
    train_frames = meta["data"]["train_frames"]
    first = np.bincount(repap.bin_index(seqs.frac[:train_frames], 12)[:, 0], minlength=12)
    assert meta["first_coordinate"]["counts"] == first.tolist()
    assert meta["versions"]["torch"] == torch.__version__
    assert len(meta["history"]) == 2 and meta["train"]["epochs"] == 2
    bins = torch.from_numpy(repap.bin_index(seqs.frac, 12))[:, :-1]
    with torch.no_grad():
        torch.testing.assert_close(loaded(bins), model(bins))


def test_resume_continues_the_same_run(rng, tmp_path):
    traj = small_run(rng)
    straight = repap.train(traj, small_config(epochs=3), out=tmp_path / "a.pt", progress=False)
    repap.train(traj, small_config(epochs=1), out=tmp_path / "b.pt", progress=False)
    resumed = repap.train(
        traj, small_config(epochs=3), out=tmp_path / "b.pt", resume=True, progress=False
    )
    assert [h["epoch"] for h in resumed.meta["history"]] == [1, 2, 3]
    assert_same_weights(weights(resumed), weights(straight))
    last_a = checkpoint.read(tmp_path / "a.last.pt")["state_dict"]
    last_b = checkpoint.read(tmp_path / "b.last.pt")["state_dict"]
    assert_same_weights(last_a, last_b)
    with pytest.raises(ValueError, match="another config .*lr"):
        repap.train(traj, small_config(lr=0.1), out=tmp_path / "b.pt", resume=True)
    with pytest.raises(ValueError, match="other data"):
        repap.train(small_run(rng), small_config(), out=tmp_path / "b.pt", resume=True)


def test_early_stopping_stops_and_keeps_best(rng, tmp_path):
    traj = small_run(rng)
    model = repap.train(
        traj, small_config(epochs=30, lr=0.5, patience=2), out=tmp_path / "m.pt", progress=False
    )  # a huge learning rate: validation stops improving quickly
    history = model.meta["history"]
    best = model.meta["best"]
    assert len(history) < 30
    assert history[-1]["epoch"] - best["epoch"] == 2
    assert best["val_loss"] == min(h["val_loss"] for h in history)
    assert repap.load_model(tmp_path / "m.pt").meta["best"]["epoch"] == best["epoch"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    repap.train(small_run(rng), small_config(epochs=1), out=path, progress=False)
    return path


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_bad_checkpoints_are_refused(saved, tmp_path):
    data = saved.read_bytes()
    cases = {}
    cases["truncated"] = data[: len(data) // 2]
    cases["garbage"] = b"\x00not a checkpoint at all" * 10
    (tmp_path / "missing.pt").unlink(missing_ok=True)
    for name, content in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
    payload = torch.load(saved, weights_only=True)

    edited = dict(payload, state_dict=dict(payload["state_dict"]))
    edited["state_dict"]["head.bias"] = edited["state_dict"]["head.bias"] + 1
    torch.save(edited, tmp_path / "edited.pt")
    meta = json.loads(payload["metadata"])
    meta["config"]["hidden"] = 8
    meta["weights_sha256"] = checkpoint.weights_digest(payload["state_dict"])
    torch.save(dict(payload, metadata=json.dumps(meta)), tmp_path / "incompatible.pt")
    torch.save(dict(payload, version=99), tmp_path / "future.pt")
    torch.save({"a": torch.zeros(2)}, tmp_path / "foreign.pt")
    torch.save(dict(payload, extra=Evil()), tmp_path / "pickled.pt")
    expected = {
        "truncated": "not a readable checkpoint",
        "garbage": "not a readable checkpoint",
        "edited": "do not match their recorded SHA-256",
        "incompatible": "do not fit the recorded config",
        "future": "format version 99",
        "foreign": "not a repap model checkpoint",
        "pickled": "refused, it holds more than weights",
        "missing": "no such checkpoint file",
    }
    for name, message in expected.items():
        # a missing file is a FileNotFoundError (an OSError), as for every file repap reads
        error = FileNotFoundError if name == "missing" else ValueError
        with pytest.raises(error, match=message) as info:
            repap.load_model(tmp_path / f"{name}.pt")
        assert str(info.value).startswith(str(tmp_path / f"{name}.pt"))
        assert "\n" not in str(info.value)


def test_train_cli_writes_checkpoints_and_reports(rng, tmp_path, capsys):
    traj_path = tmp_path / "run.npz"
    small_run(rng).write(traj_path)
    out = tmp_path / "model.pt"
    args = ["train", str(traj_path), "--out", str(out), "--epochs", "1", "--bins", "10"]
    assert main([*args, "--hidden", "8", "--quiet", "--output", "softmax"]) == 0
    printed = capsys.readouterr().out
    assert "best epoch 1" in printed and str(out) in printed
    model = repap.load_model(out)
    assert model.config.n_bins == 10 and model.config.output == "softmax"
    assert model.config.hidden == 8


@pytest.mark.parametrize(
    ("extra", "stderr"),
    [
        (["--epochs", "0"], "epochs: expected a positive integer, got 0"),
        (["--bins", "1"], "n_bins: expected at least 2, got 1"),
        (["--val", "1.5"], "val: expected a fraction in (0, 1), got 1.5"),
        (["--frames", "1"], "frames: expected at least 2, got 1"),
        (["--out", "/proc/m.pt"], "/proc/m.pt: cannot write there (No such file or directory)"),
    ],
)
def test_train_cli_bad_input_is_one_line_exit_2(rng, tmp_path, extra, stderr):
    traj_path = tmp_path / "run.npz"
    small_run(rng).write(traj_path)
    run = subprocess.run(
        [sys.executable, "-m", "repap", "train", str(traj_path), "--out", str(tmp_path / "m.pt"),
         *extra],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip() == f"repap train: error: {stderr}"


def test_torchrun_two_processes_equals_one(rng, tmp_path):
    """2 ranks (gloo) train the same model as one process; only rank 0 writes."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    traj_path = tmp_path / "run.npz"
    small_run(rng, frames=40).write(traj_path)
    common = ["train", str(traj_path), "--epochs", "2", "--bins", "12", "--hidden", "16",
              "--batch-size", "7", "--quiet", "--precision", "float32"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")  # float32: bfloat16 rounds by batch split
    run = subprocess.run(
        [torchrun, "--nproc-per-node", "2", "-m", "repap", *common,
         "--out", str(tmp_path / "ddp" / "m.pt")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [
        "m.last.pt", "m.loss.png", "m.pt",
    ]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "one" / "m.pt")]) == 0
    ddp = repap.load_model(tmp_path / "ddp" / "m.pt")
    one = repap.load_model(tmp_path / "one" / "m.pt")
    assert_same_weights(weights(ddp), weights(one), atol=1e-6)
    np.testing.assert_allclose(
        [h["val_loss"] for h in ddp.meta["history"]],
        [h["val_loss"] for h in one.meta["history"]],
        rtol=1e-5,
    )


def test_train_leaves_the_global_generator_and_plot_backend_alone(rng, tmp_path):
    """Seeded weights without reseeding torch's global generator; the loss plot is drawn
    without pyplot, so the caller's matplotlib backend stays what it was."""
    script = f"""
import matplotlib, sys, numpy as np, torch, repap
from repap.model.config import TrainConfig, ModelConfig
matplotlib.use("svg")
torch.manual_seed(123)
state = torch.random.get_rng_state()
traj = repap.Trajectory(np.random.default_rng(0).random((20, 3, 3)) * 5, np.eye(3) * 5,
                        np.full(3, 14), np.ones(3, bool))
config = TrainConfig(model=ModelConfig(n_bins=12, hidden=8), epochs=1, batch_size=8)
a = repap.train(traj, config, out={str(tmp_path / "m.pt")!r}, progress=False)
assert torch.equal(torch.random.get_rng_state(), state), "global generator changed"
assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
assert "matplotlib.pyplot" not in sys.modules
b = repap.train(traj, config, progress=False)
assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
"""
    subprocess.run(  # outside the checkout: the installed package is imported
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    assert (tmp_path / "m.loss.png").stat().st_size > 1000


def test_validated_projection_equals_the_checked_op(rng):
    from repap.model.projection_ops import project_validated

    frac = torch.from_numpy(rng.random((5, 4, 3)))
    sigma = [0.02, 0.03, 0.04]
    expected = repap.project(frac, 20, sigma)
    torch.testing.assert_close(project_validated(frac, 20, sigma), expected, rtol=0, atol=0)
