"""repap dataset: a reference set of many networks (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_cluster_options, add_overwrite, add_protocol_options, protocol_of
from repap.errors import InputError


def run(args: argparse.Namespace) -> int:
    import json

    from repap.sim.reference_sets import assemble, build_runs

    if args.out:  # all of --out checked before hours of runs
        from pathlib import Path

        from repap.jobs import check_target

        if Path(args.out).suffix != ".npz":
            raise InputError(f"{args.out}: a set is written as .npz (repap's format, which "
                             "keeps its networks); name it so")  # fmt: skip
        check_target(Path(args.out), args.overwrite)
    build_runs(args.folder, args.runs, seed=args.seed, workers=args.workers,
               scheduler=args.scheduler, relax_every=args.relax_every, progress=not args.quiet,
               **protocol_of(args))  # fmt: skip
    if args.out:
        nets, report = assemble(args.folder, args.out, heldout_every=args.heldout_every,
                                overwrite=args.overwrite)  # fmt: skip
        path = f"{args.out}.report.json"
        with open(path, "w") as f:
            json.dump(report, f, indent=1)
        print(f"wrote {args.out}: {nets.n_networks} networks ({int(nets.heldout.sum())} held "
              f"out) from {report['runs']} runs ({len(report['crystallized_seeds'])} "
              f"crystallised, left out), {len(nets)} frames; E_IS "
              f"{report['inherent_energy_mean']:.3f} +- {report['inherent_energy_std']:.3f} "
              f"eV/atom, {report['core_seconds_per_network']:.0f} core-s per network; "
              f"report: {path}")  # fmt: skip
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataset",
        help="a reference set of many distinct networks: melt-quench runs, relaxed, split",
        description="Melt-quench RUNS cells (seeds SEED, SEED+1, ...; one task each, on local "
        "processes or a Dask cluster), sample frames at --temperature, relax every "
        "--relax-every-th frame to its inherent structure, "
        "one file per run in FOLDER (a rerun resumes). With --out, group the runs' inherent "
        "structures into networks, keep one run per network, hold out the networks whose seed is "
        "a multiple of --heldout-every and "
        "write the set (.npz, read by repap.read as a NetworkSet) with a report.",
    )
    p.add_argument("folder", help="folder of the runs (created; a rerun resumes)")
    p.add_argument("--runs", type=int, required=True, help="melt-quench runs wanted in FOLDER")
    add_protocol_options(p, atoms=64, frames=200, stride=250)  # the shipped 64-atom set's
    add_cluster_options(p, "melt-quench run")
    p.add_argument("--relax-every", type=int, default=20,
                   help="relax every K-th frame of a run (default: 20)")  # fmt: skip
    p.add_argument("--out", help="also assemble the set into this .npz")
    p.add_argument("--heldout-every", type=int, default=5,
                   help="hold out networks whose seed is a multiple of this; stable as runs "
                   "are added (default: 5)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "--out file (the runs in FOLDER always resume)")
    p.set_defaults(func=run)
