"""repap train: train a model (arguments and run)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from repap.cli._common import add_overwrite, refuse_existing
from repap.runtime import keep_freed_memory

# Options mirror the fields of TrainConfig and ModelConfig (repap.model.config): name, type and
# choices come from the dataclasses; here only what a help line says and a shorter name.
_NAMES = {"n_bins": "bins"}
_HELP = {
    "val": "fraction of frames (the last) for validation; of a network set: of its training "
    "networks, kept whole",
    "patience": "early stopping, epochs (0: off)",
    "frames": "train on the first FRAMES frames only (of each network)",
    "precision": "LSTM matmul operands (bfloat16: ~2x faster)",
    "augment": "network sets: K extra orderings of each network (a random lattice symmetry and "
    "origin shift before ordering; default 0)",
    "n_bins": "grid bins per axis, G",
    "sigma": "target Gaussian width, Angstrom",
    "output": "sigmoid + MSE or softmax + cross-entropy",
}


def _config_fields() -> list[tuple[str, Any, str]]:
    """(field, its default, group) of every option the configs define."""
    from repap.model.config import ModelConfig, TrainConfig

    train = [(f.name, getattr(TrainConfig(), f.name), "training") for f in fields(TrainConfig)
             if f.name != "model"]  # fmt: skip
    model = [(f.name, getattr(ModelConfig(), f.name), "model") for f in fields(ModelConfig)]
    return train + model


def run(args: argparse.Namespace) -> int:
    from repap.data.shipped import structures
    from repap.model.config import TrainConfig
    from repap.training.loop import checkpoint_paths, train

    keep_freed_memory()

    overrides = {
        name: getattr(args, name)
        for name, _, _ in _config_fields()
        if getattr(args, name) is not None
    }
    config = TrainConfig.preset(args.preset, **overrides)
    if not args.resume and not args.overwrite:
        refuse_existing(*checkpoint_paths(args.out)[:2])
    data = args.trajectory  # a file (its path is recorded), else a shipped set's name
    if not Path(data).exists():
        data = structures(data, "trajectory")
    model = train(
        data,
        config,
        out=args.out,
        resume=args.resume,
        device=args.device,
        progress=not args.quiet,
        overwrite=args.overwrite,
    )
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_rank() != 0:
        return 0
    best = model.meta["best"]
    last = model.meta["history"][-1] if model.meta["history"] else None
    if last is not None:
        h = next(h for h in model.meta["history"] if h["epoch"] == best["epoch"])
        print(
            f"best epoch {best['epoch']}: val loss {h['val_loss']:.5g}, "
            f"NLL {h['val_nll']:.4f} nats/coordinate, argmax accuracy {h['val_acc']:.3f}"
        )
    best_path, last_path, plot = checkpoint_paths(args.out)
    print(f"wrote {best_path} (best), {last_path} (last, for --resume), {plot}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from repap.model.config import OPTIMIZERS, OUTPUTS, PRECISIONS, PRESETS, SCHEDULES

    p = sub.add_parser(
        "train",
        help="train a RePAP model on a trajectory",
        description="Train the LSTM on the frames of a trajectory (any format repap.read "
        "knows). Options left out take the preset's value. Under torchrun "
        "(torchrun --nproc-per-node K -m repap train ...) it trains with "
        "DistributedDataParallel and rank 0 writes the files.",
    )
    p.add_argument("trajectory", help="training trajectory, e.g. an MD run, or a shipped set's "
                   "name (a-si-30, a-si-64:train, ...; repap info lists them)")  # fmt: skip
    p.add_argument("--out", default="model.pt", help="best checkpoint (default: %(default)s)")
    p.add_argument("--preset", choices=PRESETS, default="recommended",
                   help="recommended: the best setup measured; paper: the poster's (it misses "
                   "the quality targets, docs/results.md) (default: %(default)s)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in OUT's .last file")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    choices = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "precision": PRECISIONS,
               "output": OUTPUTS}  # fmt: skip
    groups = {name: p.add_argument_group(f"{name} (default: the preset's)")
              for name in ("training", "model")}  # fmt: skip
    for name, default, group in _config_fields():
        option = "--" + _NAMES.get(name, name).replace("_", "-")
        kind = {"type": type(default) if default is not None else int}  # frames: int or None
        if name in choices:
            kind = {"choices": choices[name]}
        groups[group].add_argument(option, dest=name, help=_HELP.get(name), **kind)
    add_overwrite(p, "OUT (and its .last file)")
    p.set_defaults(func=run)
