"""The RePAP model: input encoding, the fused CPU LSTM against torch.nn.LSTM, losses, and that
training learns."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import repap
import repap.model.lstm
import repap.model.recurrent
from repap.model.lstm import layered_lstm
from repap.model.recurrent import ModelConfig, RePAP
from repap.training.loop import TrainConfig


def still_atoms(rng, frames=64, n_atoms=4, noise=0.01, length=6.0):
    """Atoms sitting (almost) still at random sites of a cubic cell."""
    sites = rng.uniform(0, length, (n_atoms, 3))
    positions = sites + rng.normal(0, noise, (frames, n_atoms, 3))
    return repap.Trajectory(positions, np.eye(3) * length, np.full(n_atoms, 14), np.ones(3, bool))


def test_one_hot_input_has_bin_and_step(rng):
    model = RePAP(ModelConfig(n_bins=7, hidden=8), n_atoms=3)
    bins = torch.from_numpy(rng.integers(0, 7, (5, 8)))
    x = model.one_hot(bins)
    assert x.shape == (5, 8, 7 + 8)
    for b in range(5):
        for t in range(8):
            assert torch.nonzero(x[b, t]).flatten().tolist() == [bins[b, t].item(), 7 + t]
    assert model(bins).shape == (5, 8, 7)
    with pytest.raises(ValueError, match="T <= 8"):
        model(torch.zeros(1, 9, dtype=torch.long))


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_cpu_lstm_path_equals_torch_lstm(rng, layers):
    """The CPU path (oneDNN one layer at a time, repap's dropout between) against nn.LSTM."""
    torch.manual_seed(0)
    model = RePAP(ModelConfig(n_bins=11, hidden=16, layers=layers), n_atoms=5)
    model.eval()  # no dropout: nn.LSTM's would draw other masks
    bins = torch.from_numpy(rng.integers(0, 11, (6, 14)))
    weights = list(model.lstm.parameters())
    ref, _ = model.lstm(model.one_hot(bins))
    ref_grads = torch.autograd.grad(ref.square().sum(), weights)
    out = model.features(bins)
    grads = torch.autograd.grad(out.square().sum(), weights)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


def test_cell_step_with_extreme_gates_stays_finite():
    """The cell kernel of the CPU step with saturated gates (exp arguments far beyond +-87)
    against nn.LSTM."""
    torch.manual_seed(0)
    net = RePAP(ModelConfig(n_bins=4, hidden=8, layers=1), n_atoms=2).eval()
    with torch.no_grad():
        for p in net.lstm.parameters():
            p.mul_(1e4)
        bins = torch.tensor([[0, 3, 1, 2, 2]])
        ref, _ = net.lstm(net.one_hot(bins))
        step = net.stepper("cpu")
        h, c = step.zero_state(1, torch.device("cpu"))
        out = []
        for t in range(5):
            step(bins[:, t], torch.tensor([t]), h, c)
            out.append(h[0].clone())
    out = torch.stack(out, 1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)


def test_dropout_mask_is_keyed_by_sample_not_batch(rng):
    model = RePAP(ModelConfig(n_bins=9, hidden=64, dropout=0.5), n_atoms=4)
    model.train()
    bins = torch.from_numpy(rng.integers(0, 9, (8, 11)))
    whole = model(bins, dropout_seed=7)
    part = model(bins[3:], dropout_seed=7, row_offset=3)
    torch.testing.assert_close(part, whole[3:], rtol=0, atol=1e-6)
    assert not torch.allclose(model(bins, dropout_seed=8), whole)
    # inverted dropout: about half the units dropped, the rest scaled by 2
    from repap import _C

    mask = torch.empty(50, 40, 64)
    _C.dropout_mask_cpu(1, 0.5, 50, 40, 64, 0, mask.data_ptr())
    assert set(mask.unique().tolist()) == {0.0, 2.0}
    assert abs((mask == 0).float().mean().item() - 0.5) < 0.01
    model.eval()
    torch.testing.assert_close(model(bins), model(bins))  # no dropout in eval mode


def test_losses_against_definitions(rng):
    target = torch.softmax(torch.from_numpy(rng.normal(size=(3, 4, 6))).float(), -1)
    logits = torch.from_numpy(rng.normal(size=(3, 4, 6))).float()
    paper = RePAP(ModelConfig(n_bins=6, hidden=4), 2)
    expected = ((1 / (1 + np.exp(-logits.numpy())) - target.numpy()) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(paper.loss(logits, target).numpy(), expected, rtol=1e-5)
    soft = RePAP(ModelConfig(n_bins=6, hidden=4, output="softmax"), 2)
    logp = logits.numpy() - np.log(np.exp(logits.numpy()).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        soft.loss(logits, target).numpy(), -(target.numpy() * logp).sum(-1).mean(-1), rtol=1e-5
    )
    for model in (paper, soft):
        p = model.log_probs(logits).exp()
        torch.testing.assert_close(p.sum(-1), torch.ones(3, 4))


# sigmoid + MSE (the paper's objective) learns far more slowly than softmax + cross-entropy
@pytest.mark.parametrize(("output", "epochs"), [("sigmoid", 150), ("softmax", 30)])
def test_training_learns_where_still_atoms_sit(rng, output, epochs):
    """Trained briefly on atoms that do not move, the argmax of every step is the bin of the
    next coordinate (coordinate 0 is given)."""
    traj = still_atoms(rng, noise=0.0)
    config = TrainConfig(
        model=ModelConfig(n_bins=16, sigma=0.3, hidden=32, dropout=0.0, output=output),
        epochs=epochs, batch_size=4, optimizer="adam", lr=1e-2, val=0.25, patience=0,
    )  # fmt: skip
    model = repap.train(traj, config, progress=False)
    history = model.meta["history"]
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    seqs = repap.prepare(traj)
    bins = torch.from_numpy(repap.bin_index(seqs.frac, 16))
    with torch.no_grad():
        predicted = model(bins[:, :-1]).argmax(-1)
    assert (predicted == bins[:, 1:]).all()


def test_training_loss_decreases_in_a_few_steps(rng):
    traj = still_atoms(rng, frames=40, noise=0.2)
    config = TrainConfig(model=ModelConfig(hidden=32), epochs=3, batch_size=8, val=0.2, patience=0)
    model = repap.train(traj, config, progress=False)
    losses = [h["train_loss"] for h in model.meta["history"]]
    assert losses[2] < losses[0]
    assert model.meta["history"][-1]["val_loss"] < model.meta["history"][0]["val_loss"]


NATIVE_BF16 = pytest.mark.skipif(
    not repap.model.lstm.cpu_bfloat16_native(),
    reason="this CPU has no native bfloat16 (AVX512-BF16/AMX): oneDNN's bf16 LSTM cannot run; "
    "the float32 fallback is tested instead",
)


@pytest.fixture
def forced_fallback(monkeypatch):
    """Behave as on a CPU without native bfloat16, whatever this one has."""
    monkeypatch.setattr(repap.model.lstm, "cpu_bfloat16_native", lambda: False)
    monkeypatch.setattr(repap.model.lstm, "_fallback_warned", False)


def test_bfloat16_probe_matches_what_onednn_does(rng):
    """The probe's answer is what the real layered bf16 LSTM does on this CPU."""
    lstm = torch.nn.LSTM(20 + 17, 32, 2)
    x = torch.from_numpy(rng.normal(size=(4, 17, 37)).astype(np.float32))
    if repap.model.lstm.cpu_bfloat16_native():
        out = layered_lstm(lstm, x, matmul_dtype=torch.bfloat16)
        assert out.shape == (4, 17, 32) and torch.isfinite(out).all()
    else:
        with pytest.raises(RuntimeError, match="primitive descriptor"):
            layered_lstm(lstm, x, matmul_dtype=torch.bfloat16)


@NATIVE_BF16
def test_bfloat16_matmuls_stay_close_to_float32(rng, monkeypatch):
    """The bfloat16 LSTM itself (oneDNN's, where the CPU has native bfloat16), so the policy
    is bypassed."""
    monkeypatch.setattr(repap.model.recurrent, "cpu_matmul_dtype", lambda dtype: dtype)
    torch.manual_seed(1)
    model = RePAP(ModelConfig(n_bins=20, hidden=64, dropout=0.0), n_atoms=6)
    bins = torch.from_numpy(rng.integers(0, 20, (16, 17)))
    weights = list(model.parameters())
    ref = model(bins)
    ref_grads = torch.autograd.grad(ref.square().sum(), weights)
    model.matmul_dtype = torch.bfloat16
    out = model(bins)
    grads = torch.autograd.grad(out.square().sum(), weights)
    assert out.dtype == torch.float32
    assert not torch.equal(out, ref)  # bfloat16 did run
    # bfloat16 keeps 8 bits of mantissa: relative errors of a few 1e-3, not more
    assert (out - ref).norm() / ref.norm() < 1e-2
    for g, r in zip(grads, ref_grads, strict=True):
        assert (g - r).norm() / r.norm() < 2e-2


def test_bfloat16_without_native_support_runs_float32_with_one_warning(rng, forced_fallback):
    torch.manual_seed(2)
    model = RePAP(ModelConfig(n_bins=20, hidden=32), n_atoms=6).eval()
    bins = torch.from_numpy(rng.integers(0, 20, (8, 17)))
    ref = model(bins)
    model.matmul_dtype = torch.bfloat16
    with pytest.warns(RuntimeWarning, match="no native bfloat16") as record:
        out = model(bins)
        again = model(bins)
    assert len(record) == 1  # once per process, not once per batch
    assert torch.equal(out, ref) and torch.equal(again, ref)


def _learns_still_atoms(rng) -> RePAP:
    traj = still_atoms(rng, noise=0.0)
    config = TrainConfig(
        model=ModelConfig(n_bins=16, sigma=0.3, hidden=32, dropout=0.0, output="softmax"),
        epochs=30, batch_size=4, optimizer="adam", lr=1e-2, val=0.25, patience=0,
        precision="bfloat16",
    )  # fmt: skip
    model = repap.train(traj, config, progress=False)
    assert model.matmul_dtype == torch.float32  # the returned model evaluates in float32
    seqs = repap.prepare(traj)
    bins = torch.from_numpy(repap.bin_index(seqs.frac, 16))
    with torch.no_grad():
        assert (model(bins[:, :-1]).argmax(-1) == bins[:, 1:]).all()
    return model


@NATIVE_BF16
def test_bfloat16_training_learns_still_atoms(rng):
    model = _learns_still_atoms(rng)
    assert {h["precision"] for h in model.meta["history"]} == {"bfloat16"}


def test_bfloat16_training_falls_back_to_float32(rng, forced_fallback):
    with pytest.warns(RuntimeWarning, match="running the LSTM in float32"):
        model = _learns_still_atoms(rng)
    assert model.meta["train"]["precision"] == "bfloat16"  # what was asked, kept for --resume
    assert {h["precision"] for h in model.meta["history"]} == {"float32"}  # what ran


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(meta_version=2), "metadata: version 2, this repap reads version 1"),
        (lambda m: m.update(order=[0] * len(m["order"])), "metadata: order: not a permutation"),
        (lambda m: m["first_coordinate"].update(counts=[1, 2]),
         "metadata: first_coordinate.counts: expected shape (50,)"),
        (lambda m: m.pop("cell"), "metadata: cell: missing"),
        (lambda m: m.update(cell=[[1, 0, 0], [0, 1, 0], [0, 0, float("nan")]]),
         "metadata: cell: not finite"),
    ],
)  # fmt: skip
def test_checkpoint_metadata_is_checked_field_by_field(tmp_path, edit, message):
    """The generation contract in a checkpoint's JSON is checked on load: an edited or foreign
    file is refused with one line naming the field, never generated from."""
    import json

    from repap.model import checkpoint

    src = Path(repap.__file__).parent / "data" / "models" / "a-si-30-paper.pt"
    payload = torch.load(src, map_location="cpu", weights_only=True)
    meta = json.loads(payload["metadata"])
    edit(meta)
    payload["metadata"] = json.dumps(meta)
    bad = tmp_path / "edited.pt"
    torch.save(payload, bad)
    with pytest.raises(repap.InputError, match=f"^{bad}: " + re.escape(message)):
        checkpoint.load_model(bad)


def test_model_metadata_round_trip(tmp_path):
    """What a trained model saves is what the typed contract reads back."""
    from repap.model.metadata import ModelMeta

    model = repap.pretrained("paper")
    m = ModelMeta.from_dict(model.meta, model.n_atoms, model.config.n_bins)
    np.testing.assert_array_equal(m.order[m.inverse], np.arange(model.n_atoms))
    assert m.first_counts.sum() == model.meta["data"]["train_frames"]
    path = repap.model.checkpoint.save(tmp_path / "again.pt", model)
    assert repap.load_model(path).meta["meta_version"] == 1


def test_configs_of_older_checkpoints():
    """A config written before the second CPU path was removed still loads when it named the
    path that remains, and is refused in one line when it named the removed one."""
    old = {**ModelConfig().to_dict(), "input": "onehot"}
    assert ModelConfig.from_dict(old) == ModelConfig()
    with pytest.raises(repap.InputError, match="^model config: input='embedding': .* removed"):
        ModelConfig.from_dict({**old, "input": "embedding"})
