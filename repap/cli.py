"""The ``repap`` command line: one function per subcommand, heavy imports inside each."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from repap.errors import InputError
from repap.runtime import keep_freed_memory


def _info(args: argparse.Namespace) -> int:
    import repap

    for key, value in repap.build_info().items():
        print(f"{key:22s} {value}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from repap.demo import run_demo

    keep_freed_memory()

    run_demo(args.out, quick=args.quick, progress=not args.quiet)
    return 0


def _refuse_existing(*paths: str | os.PathLike, flag: str = "--out") -> None:
    """One rule for every command that writes a file: an existing one is kept, and the command
    refuses before any work, unless --overwrite."""
    for path in paths:
        if os.path.lexists(path):
            raise InputError(f"{path}: exists; pass --overwrite to replace it, or another {flag}")


def _add_overwrite(p: argparse.ArgumentParser, what: str = "OUT") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace an existing {what}")


def _simulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repap.md import simulate

    protocol = _protocol(args)
    if args.runs < 1:
        raise InputError(f"--runs: expected at least 1, got {args.runs}")
    out = Path(args.out)
    paths = [out if args.runs == 1 else out.with_name(f"{out.stem}-run{run}{out.suffix}")
             for run in range(args.runs)]  # fmt: skip
    if args.runs == 1 and not args.overwrite:
        _refuse_existing(out)
    done = set()
    for run, path in enumerate(paths):
        # several runs: one file each, seed + run; a finished file of the same protocol is kept
        # (resume), one of another protocol stops everything before any work
        if args.runs > 1 and path.exists() and not args.overwrite:
            _check_same_run(path, {**protocol, "seed": args.seed + run})
            done.add(run)
    for run, path in enumerate(paths):
        if run in done:
            print(f"{path}: exists from the same protocol and seed, run {run} skipped")
            continue
        traj = simulate(
            path,
            seed=args.seed + run,
            precision=args.precision,
            progress=not args.quiet,
            **protocol,
        )
        e = traj.energy / traj.n_atoms
        print(
            f"{path}: {len(traj)} frames of {traj.n_atoms} atoms, cell {traj.cell[0, 0]:.4f} A, "
            f"energy {e.mean():.4f} +- {e.std():.4f} eV/atom"
        )
    return 0


def _check_same_run(path: os.PathLike, wanted: dict) -> None:
    from repap.trajectory import read

    have = read(path, index=0).info.get("simulate", {})
    differ = [f"{k} {have.get(k)!r} (asked {v!r})" for k, v in wanted.items() if have.get(k) != v]
    if differ:
        raise InputError(
            f"{path}: exists from a run with other arguments ({', '.join(differ)}); "
            "pass --overwrite to replace it, or another --out"
        )


_PROTOCOL_HELP = {  # MeltQuench field -> help (units), for simulate and dataset
    "atoms": "atoms",
    "density": "g/cm^3, cubic cell",
    "frames": "frames stored",
    "stride": "MD steps between frames",
    "melt_temperature": "K",
    "melt_time": "ps",
    "quench_time": "ps, linear ramp to --temperature",
    "temperature": "K, sampling temperature",
    "equilibrate_time": "ps at --temperature before sampling",
    "timestep": "ps",
    "min_distance": "A between atoms of the random start",
    "seed": "random seed (of the first run)",
}


def _add_protocol_options(p: argparse.ArgumentParser) -> None:
    from repap.md import MeltQuench

    d = MeltQuench()
    for name, text in _PROTOCOL_HELP.items():
        default = getattr(d, name)
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                       help=f"{text} (default: {default:g})")  # fmt: skip
    p.add_argument("--potential", choices=["vink", "sw"], default=d.potential,
                   help="Stillinger-Weber parameters: Vink's a-Si fit or the original "
                   f"(default: {d.potential})")  # fmt: skip


def _protocol(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in (*_PROTOCOL_HELP, "potential") if name != "seed"}


def _dataset(args: argparse.Namespace) -> int:
    import json

    from repap.dataset import assemble, build_runs

    if args.out and not args.overwrite:
        _refuse_existing(args.out)
    build_runs(args.folder, args.runs, seed=args.seed, workers=args.workers,
               relax_every=args.relax_every, progress=not args.quiet,
               **_protocol(args))  # fmt: skip
    if args.out:
        nets, report = assemble(args.folder, args.out, heldout_every=args.heldout_every)
        print(json.dumps(report, indent=1))
        print(f"wrote {args.out}: {nets.n_networks} networks ({int(nets.heldout.sum())} held out),"
              f" {len(nets)} frames")  # fmt: skip
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import numpy as np

    from repap.trajectory import read

    if args.write and not args.overwrite:
        _refuse_existing(args.write, flag="--write")
    species_names = args.species.split(",") if args.species else None
    traj = read(args.file, index=args.index, format=args.format, species=species_names)
    species = dict(zip(*np.unique(traj.numbers, return_counts=True), strict=True))
    print(
        f"{args.file}: {len(traj)} frames, {traj.n_atoms} atoms, "
        f"species {{{', '.join(f'Z={z}: {c}' for z, c in species.items())}}}, "
        f"pbc {traj.pbc.tolist()}"
    )
    cell = "per frame" if traj.cell.ndim == 3 else np.array2string(traj.cell, precision=4)
    print(f"cell: {cell}")
    if getattr(traj, "n_networks", 0):  # a multi-network set (repap dataset)
        print(f"networks: {traj.n_networks} ({int(traj.heldout.sum())} held out), "
              f"inherent-structure energy {traj.inherent_energy.mean():.4f} +- "
              f"{traj.inherent_energy.std():.4f} eV/atom")  # fmt: skip
    if traj.energy is not None:
        e = traj.energy / traj.n_atoms
        print(f"energy: {np.nanmean(e):.4f} +- {np.nanstd(e):.4f} eV/atom")
    if args.write:
        traj.write(args.write)
        print(f"wrote {args.write}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from repap.evaluation import evaluate, markdown
    from repap.references import reference
    from repap.trajectory import read

    if not 1 <= args.nbins <= 100_000:  # beyond, the RDF histograms alone take gigabytes
        raise InputError(f"--nbins: expected 1 to 100000, got {args.nbins}")
    for name in ("rmax", "cutoff", "min_dist"):
        if not getattr(args, name) > 0:
            raise InputError(
                f"--{name.replace('_', '-')}: expected a positive number, got {getattr(args, name)}"
            )
    ensemble = read(args.ensemble)
    ref = read(args.reference) if args.reference else reference(heldout=True)
    training = read(args.training) if args.training else None
    report = evaluate(
        ensemble,
        ref,
        training=training,
        out=args.out,
        rmax=args.rmax,
        nbins=args.nbins,
        cutoff=args.cutoff,
        min_dist=args.min_dist,
        energy=not args.no_energy,
        seed=args.seed,
        networks=not args.snapshots_only,
        judge=args.judge,
        progress=not args.quiet,
    )
    print(markdown(report))
    print(f"wrote {args.out}/report.json, report.md, rdf.png, coordination.png, angles.png")
    return 0


_TRAIN_OPTIONS = {  # CLI option -> TrainConfig / ModelConfig field
    "epochs": "epochs",
    "batch_size": "batch_size",
    "optimizer": "optimizer",
    "lr": "lr",
    "schedule": "schedule",
    "val": "val",
    "patience": "patience",
    "seed": "seed",
    "frames": "frames",
    "precision": "precision",
    "augment": "augment",
    "bins": "n_bins",
    "sigma": "sigma",
    "hidden": "hidden",
    "layers": "layers",
    "dropout": "dropout",
    "output": "output",
    "input": "input",
}


def _train(args: argparse.Namespace) -> int:
    from repap.config import TrainConfig
    from repap.training import checkpoint_paths, train

    keep_freed_memory()

    overrides = {
        field: getattr(args, option)
        for option, field in _TRAIN_OPTIONS.items()
        if getattr(args, option) is not None
    }
    config = TrainConfig.preset(args.preset, **overrides)
    if not args.resume and not args.overwrite:
        _refuse_existing(*checkpoint_paths(args.out)[:2])
    model = train(
        args.trajectory,
        config,
        out=args.out,
        resume=args.resume,
        device=args.device,
        progress=not args.quiet,
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


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    from repap.config import INPUTS, OPTIMIZERS, OUTPUTS, PRECISIONS, PRESETS, SCHEDULES

    p = sub.add_parser(
        "train",
        help="train a RePAP model on a trajectory",
        description="Train the LSTM on the frames of a trajectory (any format repap.read "
        "knows). Options left out take the preset's value. Under torchrun "
        "(torchrun --nproc-per-node K -m repap train ...) it trains with "
        "DistributedDataParallel and rank 0 writes the files.",
    )
    p.add_argument("trajectory", help="training trajectory, e.g. an MD run")
    p.add_argument("--out", default="model.pt", help="best checkpoint (default: %(default)s)")
    p.add_argument("--preset", choices=PRESETS, default="paper", help="(default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT's .last file")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    g = p.add_argument_group("training (default: the preset's)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--optimizer", choices=OPTIMIZERS)
    g.add_argument("--lr", type=float)
    g.add_argument("--schedule", choices=SCHEDULES)
    g.add_argument(
        "--val",
        type=float,
        help="fraction of frames (the last) for validation; "
        "of a network set: of its training networks, kept whole",
    )
    g.add_argument("--patience", type=int, help="early stopping, epochs (0: off)")
    g.add_argument("--seed", type=int)
    g.add_argument(
        "--frames", type=int, help="train on the first FRAMES frames only (of each network)"
    )
    g.add_argument(
        "--precision", choices=PRECISIONS, help="LSTM matmul operands (bfloat16: ~2x faster)"
    )
    g.add_argument(
        "--augment", type=int, metavar="K",
        help="network sets: K extra orderings of each network (a random lattice symmetry and "
        "origin shift before ordering; default 0)",
    )  # fmt: skip
    g = p.add_argument_group("model (default: the preset's)")
    g.add_argument("--bins", type=int, help="grid bins per axis, G")
    g.add_argument("--sigma", type=float, help="target Gaussian width, Angstrom")
    g.add_argument("--hidden", type=int)
    g.add_argument("--layers", type=int)
    g.add_argument("--dropout", type=float)
    g.add_argument("--output", choices=OUTPUTS, help="sigmoid + MSE or softmax + cross-entropy")
    g.add_argument("--input", choices=INPUTS, help="fused lookup or dense one-hot nn.LSTM")
    _add_overwrite(p, "OUT (and its .last file)")
    p.set_defaults(func=_train)


def _generate(args: argparse.Namespace) -> int:
    from repap.generate import generate

    keep_freed_memory()

    text = args.min_dist.strip().lower()
    try:
        min_dist = None if text in ("none", "off") or float(text) == 0 else float(text)
    except ValueError:
        message = f"--min-dist: expected a distance in A or 'none', got {args.min_dist!r}"
        raise InputError(message) from None
    summary = generate(
        args.model,
        args.n,
        args.out,
        seed=args.seed,
        min_dist=min_dist,
        temperature=args.temperature,
        batch_size=args.batch_size,
        device=args.device,
        max_retries=args.max_retries,
        max_restarts=args.max_restarts,
        progress=not args.quiet,
    )
    if not summary:  # a torchrun rank other than 0
        return 0
    rate = summary["structures_per_s"]
    print(
        f"wrote {summary['out']}: {summary['structures']} structures, "
        f"{summary['failed']} failed"
        + (f" (indices {summary['failed_indices']})" if summary["failed"] else "")
        + f"; atoms redrawn {100 * summary['atoms_redrawn_fraction']:.2f} %, "
        f"restarts {summary['restarts']}"
        + (f"; {rate:,.0f} structures/s" if rate else "; nothing left to generate (resumed)")
    )
    return 1 if summary["failed"] else 0


def _relax(args: argparse.Namespace) -> int:
    from repap.relaxation import relax_file

    if args.pair_style or args.pair_coeff:
        if not (args.pair_style and args.pair_coeff):
            raise InputError("--pair-style and --pair-coeff: give both, or neither")
        potential: object = (args.pair_style, args.pair_coeff)
    else:
        potential = args.potential
    s = relax_file(
        args.structures, args.out, chunk=args.chunk, progress=not args.quiet,
        potential=potential, fmax=args.fmax, etol=args.etol, max_steps=args.max_steps,
        cell=args.cell,
    )  # fmt: skip
    before, after = s["energy_before_mean"], s["energy_after_mean"]
    energies = "" if after is None else f"; energy {before:.4f} -> {after:.4f} eV/atom (mean)"
    print(
        f"wrote {s['out']}: {s['structures']} structures, {s['converged']} converged, "
        f"{s['max_steps']} at the step limit, {s['stalled']} stalled, {s['failed']} failed"
        f"{energies}; {s['steps_mean']:.0f} steps on average"
    )
    return 1 if s["failed"] else 0


def _add_relax_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "relax",
        help="minimise structures to their inherent structures (LAMMPS)",
        description="Relax every structure of a file with LAMMPS's conjugate gradient, all in one "
        "LAMMPS instance, into OUT (.npz, .extxyz or .db) with energies before and after, steps "
        "and a status per structure (converged, max_steps, stalled, failed). Chunks are kept in "
        "OUT.parts until the end: a rerun with the same arguments resumes. Exit status 1 if any "
        "structure failed.",
    )
    p.add_argument("structures", help="structures to relax (any format repap.read knows)")
    p.add_argument("--out", required=True, help="output file (.npz, .xyz/.extxyz or .db)")
    p.add_argument("--potential", choices=["vink", "sw"], default="vink",
                   help="built-in Stillinger-Weber for Si (default: vink)")  # fmt: skip
    p.add_argument("--pair-style", help="any LAMMPS pair_style instead, e.g. tersoff")
    p.add_argument("--pair-coeff", action="append",
                   help="its pair_coeff line(s), e.g. '* * SiC.tersoff Si C' (repeatable); "
                   "types are the elements in increasing atomic number")  # fmt: skip
    p.add_argument("--fmax", type=float, default=1e-3,
                   help="converged below this largest force, eV/A (default: 1e-3)")  # fmt: skip
    p.add_argument("--etol", type=float, default=0.0,
                   help="LAMMPS's relative energy tolerance, 0: off (default: 0)")  # fmt: skip
    p.add_argument("--max-steps", type=int, default=10_000, help="per structure (default: 10000)")
    p.add_argument("--cell", action="store_true", help="relax the cell too (zero pressure)")
    p.add_argument("--chunk", type=int, default=100, help="structures per chunk (default: 100)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_relax)


def _add_generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate structures from a trained model",
        description="Generate N structures (indices 0 .. N-1) with clash rejection into OUT: "
        ".xyz/.extxyz (per-structure statistics in the info fields), .npz (repap's array "
        "format) or .db (ASE database). Chunks are kept in OUT.parts until the end, so an "
        "interrupted run started again with the same arguments resumes. Under torchrun "
        "(torchrun --nproc-per-node K -m repap generate ...) the ranks share the chunks. "
        "Exit status 1 if any structure failed.",
    )
    p.add_argument("model", help="checkpoint written by repap train")
    p.add_argument("-n", type=int, required=True, help="number of structures")
    p.add_argument("--out", required=True, help="output file (.xyz, .extxyz, .npz or .db)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument(
        "--min-dist",
        default="2.0",
        help="Angstrom; no pair closer in the output; 'none' turns rejection off (default: 2.0)",
    )
    p.add_argument("--temperature", type=float, default=1.0, help="(default: 1.0)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: auto)")
    p.add_argument("--batch-size", type=int, default=None, help="structures per chunk "
                   "(default: 1024 on CPU, 65536 on GPU)")  # fmt: skip
    p.add_argument("--max-retries", type=int, default=10, help="redraws per atom (default: 10)")
    p.add_argument(
        "--max-restarts", type=int, default=10, help="restarts per structure (default: 10)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repap", description="Ensembles of atomic structures with RePAP."
    )
    from repap import __version__

    parser.add_argument("--version", action="version", version=f"repap {__version__}")
    parser.add_argument(
        "-T", "--traceback", action="store_true", help="on an error, show the whole traceback"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="what this build contains and which devices it sees")
    p.set_defaults(func=_info)

    p = sub.add_parser(
        "demo",
        help="the end-to-end example on the built-in a-Si data: train, generate, evaluate",
        description="Train a small model briefly on the shipped a-Si reference, generate 2,000 "
        "structures with the shipped pretrained model and clash rejection, evaluate them "
        "against held-out frames and two random baselines, and write the report, plots and "
        "structures to OUT.",
    )
    p.add_argument("--out", default="repap-demo", help="output folder (default: repap-demo)")
    p.add_argument("--quick", action="store_true", help="a small, fast version (for tests)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "simulate",
        help="make a-Si reference data: LAMMPS melt-quench with Stillinger-Weber",
        description="Melt-quench amorphous Si with LAMMPS (NVT, Nose-Hoover) and store frames "
        "with their potential energies. Any format repap.read knows (.npz is the compact one).",
    )
    p.add_argument("--out", default="a-si.npz", help="output file (default: a-si.npz)")
    _add_protocol_options(p)
    p.add_argument(
        "--runs",
        type=int,
        default=1,
        help="independent melt-quenches (seeds seed, seed+1, ...), one file each "
        "named OUT-runK; existing files are kept, so a rerun resumes (default: 1)",
    )
    p.add_argument(
        "--precision",
        type=float,
        default=None,
        metavar="A",
        help="store .npz positions rounded to A Angstrom, several times smaller "
        "(default: exact float64)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_overwrite(p, "OUT (with --runs: every run's file, instead of resuming)")
    p.set_defaults(func=_simulate)

    p = sub.add_parser(
        "dataset",
        help="a reference set of many distinct networks: melt-quench runs, relaxed, split",
        description="Melt-quench RUNS cells (seeds SEED, SEED+1, ...; WORKERS processes), sample "
        "frames at --temperature, relax every --relax-every-th frame to its inherent structure, "
        "one file per run in FOLDER (a rerun resumes). With --out, group the runs' inherent "
        "structures into networks, keep one run per network, hold out the networks whose seed is "
        "a multiple of --heldout-every and "
        "write the set (.npz, read by repap.read as a NetworkSet) with a report.",
    )
    p.add_argument("folder", help="folder of the runs (created; a rerun resumes)")
    p.add_argument("--runs", type=int, required=True, help="melt-quench runs wanted in FOLDER")
    _add_protocol_options(p)
    p.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    p.add_argument("--relax-every", type=int, default=100,
                   help="relax every K-th frame of a run (default: 100)")  # fmt: skip
    p.add_argument("--out", help="also assemble the set into this .npz")
    p.add_argument("--heldout-every", type=int, default=5,
                   help="hold out networks whose seed is a multiple of this; stable as runs "
                   "are added (default: 5)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_overwrite(p, "--out file (the runs in FOLDER always resume)")
    p.set_defaults(func=_dataset)

    p = sub.add_parser("inspect", help="summarise a trajectory file (and convert it)")
    p.add_argument("file", help="any file ASE reads, or repap's .npz")
    p.add_argument("--index", default=":", help="frames, as in ase.io.read (default: all)")
    p.add_argument("--format", default=None, help="file format when the suffix does not say")
    p.add_argument(
        "--species",
        default=None,
        help="elements of LAMMPS atom types 1, 2, ... of a LAMMPS dump, e.g. Si or Si,O "
        "(convert with --write once; other commands read the converted file)",
    )
    p.add_argument(
        "--write",
        metavar="OUT",
        default=None,
        help="also write the frames to OUT (format from its suffix)",
    )
    _add_overwrite(p, "--write file")
    p.set_defaults(func=_inspect)

    p = sub.add_parser(
        "evaluate",
        help="compare an ensemble with a reference and random baselines (report + plots)",
        description="First as networks: every structure relaxed (LAMMPS, Vink SW) and grouped; "
        "novelty (networks not in --training), uniqueness, inherent-structure energy, "
        "coordination, four-fold fraction, bond-angle spread, rings and S(Q), beside the "
        "held-out networks of --reference and random structures relaxed (--judge adds CHGNet "
        "energies). Then as 300 K snapshots: RDF (Err_RDF of the RePAP poster), coordination, "
        "bond angles, close pairs, SW energy, beside the reference and two random baselines.",
    )
    p.add_argument("ensemble", help="structures to judge (any format repap.read knows)")
    p.add_argument(
        "--reference",
        default=None,
        help="reference trajectory (default: the shipped held-out a-Si run)",
    )
    p.add_argument(
        "--training",
        default=None,
        help="training trajectory: its networks for novelty (and min RMSD to a training frame)",
    )
    p.add_argument("--out", default="repap-evaluate", help="output folder (default: %(default)s)")
    p.add_argument("--rmax", type=float, default=4.2, help="RDF range, A (default: 4.2)")
    p.add_argument("--nbins", type=int, default=100, help="RDF bins (default: 100)")
    p.add_argument(
        "--cutoff",
        type=float,
        default=2.85,
        help="bond cutoff for coordination and angles, A (default: 2.85)",
    )
    p.add_argument(
        "--min-dist",
        type=float,
        default=2.0,
        help="close-pair threshold and the baseline's minimum distance, A (default: 2)",
    )
    p.add_argument("--no-energy", action="store_true", help="skip the LAMMPS energies")
    p.add_argument("--seed", type=int, default=0, help="seed of the baselines (default: 0)")
    p.add_argument(
        "--snapshots-only",
        action="store_true",
        help="skip the network level (relaxation, novelty, uniqueness, rings, S(Q))",
    )
    p.add_argument(
        "--judge",
        action="store_true",
        help="CHGNet energies above diamond Si of the relaxed structures "
        "(pip install 'repap[judge]')",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)

    _add_train_parser(sub)
    _add_generate_parser(sub)
    _add_relax_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # -T anywhere on the line (before or after the command's own options)
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = any(a in ("-T", "--traceback") for a in argv)
    args = parser.parse_args([a for a in argv if a not in ("-T", "--traceback")])

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"repap {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():  # restores the default display when main returns
            warnings.showwarning = show
            return args.func(args)
    except (InputError, OSError) as err:  # a user's mistake: one line, no traceback
        if show_traceback:
            raise
        print(f"repap {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # e.g. LAMMPS gave up: still one line, but a failure, not usage
        if show_traceback:
            raise
        print(f"repap {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"repap {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # anything else is repap's bug, not the user's mistake
        if show_traceback:
            raise
        print(
            f"repap {args.command}: internal error ({type(err).__name__}: {err}); this is a bug "
            "in repap: rerun with -T to see the traceback, and report it",
            file=sys.stderr,
        )
        return 1
