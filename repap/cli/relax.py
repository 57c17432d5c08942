"""repap relax: relax structures (LAMMPS) (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_cluster_options, add_overwrite
from repap.errors import InputError


def run(args: argparse.Namespace) -> int:
    from repap.sim.relaxation import relax_file

    if args.pair_style or args.pair_coeff:
        if not (args.pair_style and args.pair_coeff):
            raise InputError("--pair-style and --pair-coeff: give both, or neither")
        if args.potential is not None:
            raise InputError("--potential: a built-in potential, or --pair-style and "
                             "--pair-coeff, not both")  # fmt: skip
        potential: object = (args.pair_style, args.pair_coeff)
    else:
        potential = args.potential or "vink"
    s = relax_file(
        args.structures, args.out, chunk=args.chunk, progress=not args.quiet,
        overwrite=args.overwrite, workers=args.workers, scheduler=args.scheduler,
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "relax",
        help="minimise structures to their inherent structures (LAMMPS)",
        description="Relax every structure of a file with LAMMPS's conjugate gradient, one LAMMPS "
        "instance per chunk (chunks run as tasks: local processes or a Dask cluster), into "
        "OUT (.npz, .extxyz or .db) with energies before and after, steps "
        "and a status per structure (converged, max_steps, stalled, failed). Chunks are kept in "
        "OUT.parts until the end: a rerun with the same arguments resumes. Exit status 1 if any "
        "structure failed.",
    )
    p.add_argument("structures", help="structures to relax (any format repap.read knows)")
    p.add_argument("--out", required=True, help="output file (.npz, .xyz/.extxyz or .db)")
    p.add_argument("--potential", choices=["vink", "sw"], default=None,
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
    add_cluster_options(p, "chunk")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "OUT")
    p.set_defaults(func=run)
