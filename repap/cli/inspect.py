"""repap inspect: summarise and convert trajectory files (arguments and run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from repap.cli._common import add_overwrite, refuse_existing


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from repap.data.shipped import SETS, open_set
    from repap.data.trajectory import as_slice, read

    if args.write and not args.overwrite:
        refuse_existing(args.write, flag="--write")
    species_names = args.species.split(",") if args.species else None
    if not Path(args.file).exists() and args.file in SETS:  # a shipped set by name
        traj = open_set(args.file)
        if args.index != ":":
            traj = traj[np.arange(len(traj))[as_slice(args.index, args.file)]]
    else:
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
    if args.write:  # whole or not at all: a full disk leaves no truncated file (repap.jobs)
        from repap.jobs import output_job

        with output_job(args.write, args.overwrite, flag="--write") as job:
            traj.write(job.tmp)
            job.publish()
        print(f"wrote {args.write}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="summarise a trajectory file (and convert it)")
    p.add_argument("file", help="any file ASE reads, repap's .npz, or a shipped set's name "
                   "(repap info lists them)")  # fmt: skip
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
    add_overwrite(p, "--write file")
    p.set_defaults(func=run)
