"""repap simulate: melt-quench reference data (LAMMPS) (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import (
    add_overwrite,
    add_protocol_options,
    check_same_run,
    protocol_of,
    refuse_existing,
)
from repap.errors import InputError


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repap.sim.md import simulate

    protocol = protocol_of(args)
    if args.runs < 1:
        raise InputError(f"--runs: expected at least 1, got {args.runs}")
    out = Path(args.out)
    paths = [out if args.runs == 1 else out.with_name(f"{out.stem}-run{run}{out.suffix}")
             for run in range(args.runs)]  # fmt: skip
    if args.runs == 1 and not args.overwrite:
        refuse_existing(out)
    done = set()
    for run, path in enumerate(paths):
        # several runs: one file each, seed + run; a finished file of the same protocol is kept
        # (resume), one of another protocol stops everything before any work
        if args.runs > 1 and path.exists() and not args.overwrite:
            check_same_run(path, {**protocol, "seed": args.seed + run})
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
            overwrite=args.overwrite,  # checked again under the output's lock
            **protocol,
        )
        e = traj.energy / traj.n_atoms
        print(
            f"{path}: {len(traj)} frames of {traj.n_atoms} atoms, cell {traj.cell[0, 0]:.4f} A, "
            f"energy {e.mean():.4f} +- {e.std():.4f} eV/atom"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="make a-Si reference data: LAMMPS melt-quench with Stillinger-Weber",
        description="Melt-quench amorphous Si with LAMMPS (NVT, Nose-Hoover) and store frames "
        "with their potential energies. Any format repap.read knows (.npz is the compact one).",
    )
    p.add_argument("--out", default="a-si.npz", help="output file (default: a-si.npz)")
    add_protocol_options(p)
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
    add_overwrite(p, "OUT (with --runs: every run's file, instead of resuming)")
    p.set_defaults(func=run)
