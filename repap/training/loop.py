"""Training: ``repap.train(traj, config, out=...)`` and ``repap train TRAJ --out model.pt``.

Each batch's targets come from the fused projection kernel (``repap.project``) at the moment
they are needed, so memory holds the coordinates, never all F x 3N x G targets. Under
``torchrun`` the model is wrapped in DistributedDataParallel (gloo on CPU, NCCL on GPUs): every
global batch is split between the ranks, the loss is scaled so that the averaged gradient is
the single-process one, dropout masks are keyed by the sample's position in the epoch (not by
the rank), and rank 0 alone writes files. So K processes train the same model as one, up to
floating-point summation order.

Files written for ``out="model.pt"``: ``model.pt`` (best validation loss, what
:func:`repap.load_model` reads), ``model.last.pt`` (last epoch plus optimizer state, for
``resume``) and ``model.loss.png`` (the loss curves).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from repap.data.sequences import Sequences, prepare, prepare_networks, split
from repap.data.trajectory import Trajectory, read
from repap.errors import InputError
from repap.jobs import check_memory, output_job
from repap.model import checkpoint
from repap.model.config import TrainConfig
from repap.model.lstm import cpu_matmul_dtype
from repap.model.projection import bin_index, project
from repap.model.projection_ops import project_validated
from repap.model.recurrent import RePAP
from repap.runtime import agree, distributed, resolve_device


def checkpoint_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(best, last, loss plot) for the output path of a training run."""
    out = Path(out)
    return out, out.with_name(f"{out.stem}.last{out.suffix}"), out.with_name(f"{out.stem}.loss.png")


@dataclass
class _Data:
    """Training data in sequence order: coordinates, bins, and what the checkpoint records."""

    seqs: Sequences
    train: np.ndarray  # frame indices
    val: np.ndarray
    bins: torch.Tensor  # (F, 3N) int64
    sigma_frac: list[float]
    meta: dict[str, Any]
    on_device: tuple[torch.Tensor, torch.Tensor] | None = None  # (bins, frac) on CUDA


def _split_networks(nset: Trajectory, config: TrainConfig, source: str):
    """Sequences of a network set: the set's training networks only (its held-out networks
    are never seen), a fraction ``val`` of them kept whole for validation, the rest (with
    ``augment`` extra orderings each) for fitting. Returns (sequences, rows fitted, what the
    checkpoint records)."""
    pool = np.flatnonzero(~nset.heldout)
    n_val = round(config.val * len(pool))
    if len(pool) < 2 or n_val < 1 or n_val >= len(pool):
        raise InputError(
            f"{source}: {len(pool)} training networks, val={config.val}: need at least one "
            "network to fit and one to validate on"
        )
    val_ids = np.sort(np.random.default_rng(config.seed).permutation(pool)[:n_val])
    fit_ids = np.setdiff1d(pool, val_ids)
    # each fitted frame's copies: float64 coordinates, int64 bins, and the concatenation's copy
    per_net = np.bincount(nset.network, minlength=nset.n_networks)[fit_ids]
    frames = np.minimum(per_net, config.frames or per_net.max()).sum()
    check_memory(3 * 8 * 3 * nset.n_atoms * frames * (config.augment + 1),
                 f"augment: {config.augment} extra orderings of {frames:,} frames")  # fmt: skip
    fit = prepare_networks(nset, fit_ids, config.augment, config.seed, config.frames)
    val = prepare_networks(nset, val_ids, 0, config.seed, config.frames)
    if not np.array_equal(fit.seqs.numbers, val.seqs.numbers):
        raise InputError(f"{source}: networks order their elements differently")
    frac = np.concatenate([fit.seqs.frac, val.seqs.frac])
    seqs = Sequences(frac, fit.seqs.order, fit.seqs.cell, fit.seqs.numbers, fit.seqs.pbc)
    info = {
        "networks_fit": [int(k) for k in fit_ids],
        "networks_val": [int(k) for k in val_ids],
        "networks_heldout_unseen": int(nset.heldout.sum()),
        "augment": config.augment,
    }
    return seqs, len(fit.seqs), info


def _prepare_data(traj: Trajectory, config: TrainConfig, source: str) -> _Data:
    info: dict[str, Any] = {}
    if hasattr(traj, "network"):  # a repap.sim.reference_sets.NetworkSet: split by network
        seqs, n_train, info = _split_networks(traj, config, source)
        cell = np.asarray(traj.cell, dtype=np.float64)
    else:
        if config.augment:
            raise InputError(f"augment: needs a set of networks (repap dataset), not {source}")
        if config.frames is not None:
            traj = traj[: config.frames]
        if len(traj) < 2:
            raise InputError(f"{source}: need at least 2 frames to train, got {len(traj)}")
        seqs = prepare(traj)
        train_part, val_part, _ = split(seqs, val=config.val, test=0.0)
        if len(val_part) == 0:
            raise InputError(
                f"{source}: val={config.val} leaves no validation frame of {len(seqs)}"
            )
        n_train = len(train_part)
        cell = traj.frame_cells().mean(axis=0)
    lengths = np.linalg.norm(cell, axis=1)
    g = config.model.n_bins
    sigma_frac = [float(config.model.sigma / length) for length in lengths]
    bins = torch.from_numpy(bin_index(seqs.frac, g))
    first = np.bincount(bins[:n_train, 0].numpy(), minlength=g)
    digest = hashlib.sha256(np.ascontiguousarray(seqs.frac, dtype=np.float64).tobytes())
    digest.update(np.asarray(seqs.order, dtype=np.int64).tobytes())
    from repap._version import __version__

    meta = {
        "grid": {"n_bins": g, "rule": "bin k covers [k/G, (k+1)/G) of each lattice vector"},
        "sigma_angstrom": config.model.sigma,
        "sigma_frac": sigma_frac,
        "cell": cell.tolist(),
        "pbc": [bool(p) for p in traj.pbc],
        "numbers": [int(z) for z in seqs.numbers],  # in sequence order
        "order": [int(i) for i in seqs.order],  # sequence position k holds source atom order[k]
        "first_coordinate": {"counts": first.tolist()},
        "data": {
            "source": source,
            "sha256": digest.hexdigest(),
            "frames": len(seqs),
            "train_frames": n_train,
            "val_frames": len(seqs) - n_train,
            **info,
        },
        "versions": {"repap": __version__, "torch": torch.__version__},
    }
    return _Data(seqs, np.arange(n_train), np.arange(n_train, len(seqs)), bins, sigma_frac, meta)


def _batch(data: _Data, idx: np.ndarray, g: int, device: torch.device):
    """Bins (B, 3N) and Gaussian targets (B, 3N-1, G) of coordinates 1 .. 3N-1 (projection
    kernel) of frames ``idx``. On CUDA the data set stays on the device (copied once) and no
    step waits for the host."""
    if device.type == "cuda":
        if data.on_device is None or data.on_device[0].device != device:
            frac = torch.from_numpy(np.ascontiguousarray(data.seqs.frac, dtype=np.float32))
            data.on_device = (data.bins.to(device), frac.to(device))
        bins, frac = data.on_device
        rows = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(device, non_blocking=True)
        # validated once by bin_index in _prepare_data: no sync per batch
        return bins[rows], project_validated(frac[rows], g, data.sigma_frac)[:, 1:]
    frac = data.seqs.frac[idx]
    return data.bins[idx], torch.from_numpy(project(frac, g, data.sigma_frac))[:, 1:]


def _shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [lo, hi) of a batch of n that this rank takes (as equal as possible)."""
    return n * rank // world, n * (rank + 1) // world


def _epoch_seed(seed: int, epoch: int) -> int:
    return int.from_bytes(
        hashlib.sha256(f"repap-train:{seed}:{epoch}".encode()).digest()[:8], "little"
    )


def _evaluate(
    model: RePAP, data: _Data, device: torch.device, rank: int, world: int
) -> dict[str, float]:
    """Validation: the training loss, the negative log-likelihood of the true coordinate
    under the model's categorical distribution as a density (nats per coordinate, comparable
    across grids), and how often the argmax is the true bin."""
    model.eval()
    idx = data.val[slice(*_shard(len(data.val), rank, world))]
    g = model.config.n_bins
    lengths = np.linalg.norm(np.asarray(data.meta["cell"]), axis=1)
    axis = np.arange(1, 3 * model.n_atoms) % 3
    log_width = torch.from_numpy(np.log(lengths[axis] / g)).to(device)  # (3N-1,)
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    with torch.no_grad():
        for start in range(0, len(idx), 512):
            chunk = idx[start : start + 512]
            bins, target = _batch(data, chunk, g, device)
            logits = model(bins[:, :-1])
            logp = model.log_probs(logits)
            true = bins[:, 1:]
            nll = -logp.gather(-1, true.unsqueeze(-1)).squeeze(-1) + log_width
            sums[0] += model.loss(logits, target).sum()
            sums[1] += nll.mean(-1).sum()
            sums[2] += (logits.argmax(-1) == true).float().mean(-1).sum()
            sums[3] += len(chunk)
    if world > 1:
        dist.all_reduce(sums)
    n = sums[3].item()
    return {
        "val_loss": sums[0].item() / n,
        "val_nll": sums[1].item() / n,
        "val_acc": sums[2].item() / n,
    }


LOSS_NAMES = {  # config.model.output -> what the training objective is
    "sigmoid": "loss: MSE of sigmoid vs target",
    "softmax": "loss: cross-entropy (nats/coord.)",
}


def plot_history(
    history: list[dict[str, float]], path: str | os.PathLike, title: str = "", output: str = ""
) -> None:
    """Loss curves (training and validation objective; validation NLL) as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend stays as it is
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for ax in (ax1, ax2):  # whole epochs only
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="training")
    ax1.plot(epochs, [h["val_loss"] for h in history], "s-", label="validation")
    # linear axis, plain tick labels: the curves span far less than a decade
    ax1.set(xlabel="epoch", ylabel=LOSS_NAMES.get(output, "training loss"),
            title=title or "training objective")  # fmt: skip
    ax1.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax1.legend()
    ax2.plot(epochs, [h["val_nll"] for h in history], "s-", color="C1")
    ax2.set(xlabel="epoch", ylabel="nats per coordinate", title="validation NLL (density)")
    fig.savefig(path, dpi=120)


def train(
    traj: Trajectory | str | os.PathLike,
    config: TrainConfig | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> RePAP:
    """Train a RePAP model on a trajectory (or a trajectory file) and return the model with the
    best validation loss, in eval mode.

    ``out`` writes the best and last checkpoints and the loss plot (see the module doc);
    ``resume=True`` continues the run recorded in the last checkpoint (same data and config;
    ``epochs`` and ``patience`` may be raised). ``device=None`` picks CUDA when present.
    The run holds ``out`` (:mod:`repap.jobs`): a second run on it is refused, and existing
    checkpoints are refused unless ``resume`` or ``overwrite``.
    """
    config = config or TrainConfig()
    shipped = traj.info.get("shipped", "trajectory") if isinstance(traj, Trajectory) else None
    source = shipped or str(traj)
    if not isinstance(traj, Trajectory):
        traj = read(traj)
    if resume and out is None:
        raise InputError("resume: needs out, the checkpoint path of the run to continue")
    rank, world, local = distributed()
    device = resolve_device(device, local)
    paths = checkpoint_paths(out) if out is not None else None
    if paths is not None:  # fail now, not after the first epoch
        try:
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=paths[0].parent, prefix=".repap-probe-"):
                pass
        except OSError as err:
            raise InputError(f"{paths[0]}: cannot write there ({err.strerror})") from None

    with contextlib.ExitStack() as held:  # rank 0 holds OUT for the whole run
        error = None
        if paths is not None and rank == 0:
            try:
                held.enter_context(output_job(paths[0], overwrite=True, check=False))
                existing = [str(p) for p in paths[:2] if p.exists()]
                if existing and not (resume or overwrite):
                    raise InputError(f"{existing[0]}: exists; pass --overwrite to replace it, "
                                     "--resume to go on, or another --out")  # fmt: skip
            except (ValueError, OSError) as err:
                error = err
        agree(world, error)
        # a batch: targets (B, 3N, G) and the LSTM's activations through time, forward and back
        m, steps = config.model, 3 * traj.n_atoms
        per = steps * (4 * m.n_bins * 3 + 4 * 4 * m.hidden * m.layers * 3)
        check_memory(config.batch_size * per, f"batch_size: {config.batch_size:,} sequences",
                     device)  # fmt: skip
        data = _prepare_data(traj, config, source)
        with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's generator untouched
            torch.manual_seed(config.seed)
            model = RePAP(config.model, traj.n_atoms, data.meta).to(device)
        model.matmul_dtype = getattr(torch, config.precision)
        if device.type == "cpu":  # bfloat16 only where the CPU has it natively (one warning)
            model.matmul_dtype = cpu_matmul_dtype(model.matmul_dtype)
        precision = str(model.matmul_dtype).removeprefix("torch.")
        params = list(model.parameters())
        if config.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=config.lr)
        else:
            opt = torch.optim.RMSprop(params, lr=config.lr)
        b = config.batch_size
        n_batches = -(-len(data.train) // b)  # the same batches for any number of ranks
        total = max(1, config.epochs * n_batches)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
            if config.schedule == "cosine"
            else (lambda s: 1.0),
        )
        history: list[dict[str, float]] = []
        best = {"val_loss": math.inf, "epoch": 0}
        best_state = None
        first_epoch = 1
        if resume:
            first_epoch, history, best = _restore(paths[1], model, opt, sched, config, data)
            best_state = checkpoint.read(paths[0])["state_dict"] if paths[0].is_file() else None

        ddp = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )

        g = config.model.n_bins
        stale = history[-1]["epoch"] - best["epoch"] if history else 0
        for epoch in range(first_epoch, config.epochs + 1):
            if config.patience and stale >= config.patience:
                break
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(
                len(data.train),
                generator=torch.Generator().manual_seed(_epoch_seed(config.seed, epoch)),
            )
            order = data.train[order.numpy()]
            seed = _epoch_seed(config.seed, epoch)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            seen = 0
            bar = _progress(n_batches, f"epoch {epoch}/{config.epochs}", progress and rank == 0)
            for k in range(n_batches):
                batch = order[k * b : (k + 1) * b]
                lo, hi = _shard(len(batch), rank, world)
                idx = batch[lo:hi]
                bins, target = _batch(data, idx, g, device)
                logits = ddp(bins[:, :-1], dropout_seed=seed, row_offset=k * b + lo)
                per_sample = model.loss(logits, target)
                loss = per_sample.sum() * (world / len(batch))  # DDP averages: mean over the batch
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += per_sample.detach().sum().double()  # on the device: no sync
                seen += len(batch)
                if bar is not None:
                    bar.update()
                    if k % 10 == 0:
                        bar.set_postfix(loss=f"{per_sample.detach().mean().item():.4g}")
            if world > 1:
                dist.all_reduce(loss_sum)
            record = {"epoch": epoch, "train_loss": loss_sum.item() / max(seen, 1)}
            record.update(_evaluate(model, data, device, rank, world))
            record.update(
                lr=opt.param_groups[0]["lr"], seconds=time.perf_counter() - t0, precision=precision
            )
            history.append(record)
            if record["val_loss"] < best["val_loss"]:
                best = {"val_loss": record["val_loss"], "epoch": epoch}
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                stale = 0
                improved = True
            else:
                stale += 1
                improved = False
            if bar is not None:
                bar.set_postfix(
                    loss=f"{record['train_loss']:.4g}",
                    val=f"{record['val_loss']:.4g}",
                    nll=f"{record['val_nll']:.3f}",
                )
                bar.close()
            model.meta.update(train=config.to_dict(), history=history, best=best)
            error = None
            if rank == 0 and paths is not None:
                try:
                    if improved:
                        checkpoint.save(paths[0], model)
                    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
                    checkpoint.save(paths[1], model, state)
                    plot_history(history, paths[2],
                                 f"{Path(paths[0]).name}: {config.model.output} G={g}",
                                 config.model.output)  # fmt: skip
                except OSError as err:  # e.g. a full disk: every rank stops, none waits
                    error = err
            agree(world, error)
        if best_state is not None:
            model.load_state_dict(best_state)
        model.matmul_dtype = torch.float32
        model.meta.update(train=config.to_dict(), history=history, best=best)
        if world > 1:
            dist.barrier()
        return model.eval()


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=True)


def _restore(
    path: Path,
    model: RePAP,
    opt: torch.optim.Optimizer,
    sched: Any,
    config: TrainConfig,
    data: _Data,
) -> tuple[int, list[dict[str, float]], dict[str, Any]]:
    """Load the last checkpoint of a run into model/optimizer/scheduler; check that it is the
    same run (data and config); return (next epoch, history, best)."""
    payload = checkpoint.read(path)
    meta = payload["meta"]
    if meta.get("data", {}).get("sha256") != data.meta["data"]["sha256"]:
        raise InputError(f"{path}: trained on other data than this trajectory, cannot resume")
    recorded = dict(meta.get("train", {}))
    current = config.to_dict()
    for key in ("epochs", "patience"):
        recorded.pop(key, None)
        current.pop(key, None)
    if recorded != current:
        changed = sorted(k for k in current if recorded.get(k) != current[k])
        raise InputError(
            f"{path}: trained with another config ({', '.join(changed)} differ), cannot resume"
        )
    if "optimizer" not in payload:
        raise InputError(f"{path}: holds no optimizer state, cannot resume")
    model.load_state_dict(checkpoint.build(payload, path).state_dict())
    opt.load_state_dict(payload["optimizer"])
    sched.load_state_dict(payload["scheduler"])
    history = list(meta.get("history", []))
    best = dict(meta.get("best", {"val_loss": math.inf, "epoch": 0}))
    return (history[-1]["epoch"] + 1 if history else 1), history, best
