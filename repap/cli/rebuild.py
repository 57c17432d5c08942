"""repap rebuild: new networks by rebuilding a region of the training networks (arguments
and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_cluster_options, add_overwrite


def run(args: argparse.Namespace) -> int:
    from repap.generation.rebuild import rebuild_file

    s = rebuild_file(
        args.out, args.n, atoms=args.atoms, chunk=args.chunk, progress=not args.quiet,
        overwrite=args.overwrite, workers=args.workers, scheduler=args.scheduler,
        hole=args.hole, regions=args.regions, max_energy=args.max_energy,
        min_dist=args.min_dist, seed=args.seed, temperature=args.temperature,
        md_time=args.md_time, fill=args.fill,
    )  # fmt: skip
    frames = f", as frames at {args.temperature:g} K" if args.temperature is not None else ""
    print(
        f"wrote {s['out']}: {s['kept']} new networks of {s['tried']} tries (energy at most "
        f"{s['max_energy_eV_per_atom']:.4f} eV/atom){frames}, {s['seconds_per_network']:.3f} "
        "s per network"
    )
    near = s.get("closeness_to_source")
    if near:
        print(
            f"not independent networks: each keeps a median {near['atoms_median']:.2f} of its "
            f"source's atoms, {near['near_copy_share']:.0%} are near-copies (>= 0.9; "
            "independent melt-quenches: see repap evaluate's closeness rows)"
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rebuild",
        help="new networks by rebuilding one region of the training networks",
        description="Make N new networks from the built-in set's training networks: each try "
        "takes HOLE atoms out around a defect of one network, puts them back (at random, or "
        "by the learnt site model with --fill site; none closer than --min-dist), relaxes "
        "(LAMMPS, SW) and keeps the result when it is no training network and its energy is "
        "at most --max-energy (default: the training networks' mean + one standard "
        "deviation). Writes the relaxed structures, with energies (or, with --temperature, one "
        "frame of each at that temperature), to OUT (.xyz/.extxyz, .npz or .db); chunks are "
        "kept in OUT.parts until the end, so a rerun with the same arguments resumes. Judge "
        "them with repap evaluate against the set's held-out networks.",
    )
    p.add_argument("--out", required=True, help="output file (.npz, .xyz/.extxyz or .db)")
    p.add_argument("-n", type=int, default=1000, help="new networks to keep (default: 1000)")
    p.add_argument("--atoms", type=int, choices=[64, 216], default=64,
                   help="the built-in network set (default: 64)")  # fmt: skip
    p.add_argument("--hole", type=int, default=8, help="atoms rebuilt per try (default: 8)")
    p.add_argument(
        "--regions",
        type=int,
        default=1,
        help="holes per try, each of HOLE atoms around its own defect (default: 1)",
    )
    p.add_argument(
        "--fill",
        choices=["uniform", "site"],
        default="uniform",
        help="how a hole's atoms are put back: uniform at random (default) or "
        "by the learnt site model (cubic cells; fewer tries; docs/results.md)",
    )
    p.add_argument("--max-energy", type=float, default=None,
                   help="keep networks at or below this energy, eV/atom (default: the training "
                   "networks' mean + one standard deviation)")  # fmt: skip
    p.add_argument("--min-dist", type=float, default=2.0,
                   help="no atom put back closer than this to another, A (default: 2)")  # fmt: skip
    p.add_argument("--temperature", type=float, default=None,
                   help="write one frame of each new network at this temperature (K) after "
                   "--md-time ps of MD (SW, NVT), as a melt-quench's frames, instead of the "
                   "inherent structures; the MD counts in the cost")  # fmt: skip
    p.add_argument("--md-time", type=float, default=None,
                   help="ps of MD for --temperature (default: 0.5)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (chunk c uses seed + c)")
    p.add_argument("--chunk", type=int, default=100, help="networks per chunk (default: 100)")
    add_cluster_options(p, "chunk")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "OUT")
    p.set_defaults(func=run)
