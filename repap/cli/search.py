"""repap search: new networks by searching from random structures (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_cluster_options, add_overwrite


def run(args: argparse.Namespace) -> int:
    from repap.generation.search import search_file

    s = search_file(
        args.out, args.n, atoms=args.atoms, chunk=args.chunk, seed=args.seed,
        progress=not args.quiet, overwrite=args.overwrite, workers=args.workers,
        scheduler=args.scheduler, moves_per_atom=args.moves_per_atom, t_start=args.t_start,
        t_end=args.t_end, defect_bias=args.defect_bias, refill=args.refill, hole=args.hole,
        fill=args.fill, start=args.start, min_dist=args.min_dist,
    )  # fmt: skip
    print(
        f"wrote {s['out']}: {s['networks']} networks, {s['moves']} moves ({s['accepted']} "
        f"accepted), {s['seconds_per_network']:.2f} s per network"
    )
    c = s["closeness"]
    bar = c.get("heldout_atoms_median")
    print(
        f"closeness to the training networks: a median {c['atoms_median']:.2f} of atoms on the "
        f"nearest, {c['near_copy_share']:.0%} near-copies (>= 0.9)"
        + (f"; held-out melt-quench networks: {bar:.2f}" if bar is not None else "")
        + ". Judge quality with repap evaluate against the set's held-out networks"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="new networks by a search from random structures (bond switches, annealing)",
        description="Make N networks in the cell of the built-in set, none started from a "
        "training network: each chain starts from a random structure (or, with --start "
        "model, the learnt whole-structure model's sample), relaxed, then takes "
        "MOVES_PER_ATOM x atoms steps; a step switches one bond in the Wooten-Winer-Weaire "
        "manner (or, with probability --refill, draws a hole's atoms again), relaxes (LAMMPS, "
        "Vink's SW) and keeps the result by Metropolis acceptance at a temperature falling "
        "from --t-start to --t-end (eV, total energy). Writes the relaxed networks, with "
        "energies, to OUT (.xyz/.extxyz, .npz or .db); chunks are kept in OUT.parts until the "
        "end, so a rerun with the same arguments resumes.",
    )
    p.add_argument("--out", required=True, help="output file (.npz, .xyz/.extxyz or .db)")
    p.add_argument("-n", type=int, default=100, help="networks to make (default: 100)")
    p.add_argument("--atoms", type=int, choices=[64, 216], default=64,
                   help="the built-in set whose cell is used (default: 64)")  # fmt: skip
    p.add_argument("--moves-per-atom", type=float, default=6.0,
                   help="search steps per atom (default: 6)")  # fmt: skip
    p.add_argument("--t-start", type=float, default=0.3,
                   help="Metropolis temperature at the start, eV (default: 0.3)")  # fmt: skip
    p.add_argument("--t-end", type=float, default=0.01,
                   help="Metropolis temperature at the end, eV (default: 0.01)")  # fmt: skip
    p.add_argument("--defect-bias", type=float, default=0.0,
                   help="chance that a switched bond is drawn among those with a defect atom "
                   "(default: 0, any bond: measured better, docs/results.md)")  # fmt: skip
    p.add_argument("--refill", type=float, default=0.0,
                   help="chance that a move refills a hole instead (default: 0)")  # fmt: skip
    p.add_argument("--hole", type=int, default=8, help="atoms per refilled hole (default: 8)")
    p.add_argument("--fill", choices=["uniform", "site"], default="uniform",
                   help="how a refilled hole's atoms are drawn (default: uniform; site: the "
                   "learnt site model)")  # fmt: skip
    p.add_argument("--start", choices=["random", "model"], default="random",
                   help="random structures (default) or the learnt model's samples")  # fmt: skip
    p.add_argument("--min-dist", type=float, default=2.0,
                   help="no two atoms of a start or a refill closer, A (default: 2)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="random seed (chunk c uses seed + c)")
    p.add_argument("--chunk", type=int, default=32, help="chains per chunk (default: 32)")
    add_cluster_options(p, "chunk")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "OUT")
    p.set_defaults(func=run)
