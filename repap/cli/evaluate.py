"""repap evaluate: judge an ensemble (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_overwrite
from repap.errors import InputError


def run(args: argparse.Namespace) -> int:
    from repap.data.shipped import BY_ATOMS, structures
    from repap.evaluation.snapshots import check_comparable, evaluate, markdown

    if not 1 <= args.nbins <= 100_000:  # beyond, the RDF histograms alone take gigabytes
        raise InputError(f"--nbins: expected 1 to 100000, got {args.nbins}")
    for name in ("rmax", "cutoff", "min_dist"):
        if not getattr(args, name) > 0:
            raise InputError(
                f"--{name.replace('_', '-')}: expected a positive number, got {getattr(args, name)}"
            )
    ensemble = structures(args.ensemble, "ensemble")
    ref_name, train_name = args.reference, args.training
    if ref_name is None:  # the shipped set of the ensemble's size: its held-out part, training
        if ensemble.n_atoms not in BY_ATOMS:
            raise InputError(f"--reference: no shipped set of {ensemble.n_atoms} atoms (they "
                             f"have {', '.join(map(str, BY_ATOMS))}); pass one")  # fmt: skip
        ref_name, default_training = BY_ATOMS[ensemble.n_atoms]
        train_name = default_training if train_name is None else train_name
    ref = structures(ref_name, "--reference")
    check_comparable(ensemble, ref, f"--reference {ref_name}")
    training = None
    if train_name not in (None, "none"):
        training = structures(train_name, "--training")
        check_comparable(ensemble, training, f"--training {train_name}")
    print(f"{args.ensemble}: {len(ensemble)} structures of {ensemble.n_atoms} atoms; reference "
          f"{ref_name}, training {train_name or 'none'}")  # fmt: skip
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
        overwrite=args.overwrite,
        names={"ensemble": args.ensemble, "reference": ref_name, "training": train_name},
    )
    print(markdown(report))
    plots = "rdf.png, coordination.png, angles.png"
    if "networks" in report:
        plots += ", networks.png" + (", closeness.png" if _has_closeness(report) else "")
    print(f"wrote {args.out}/report.json, report.md, {plots}")
    return 0


def _has_closeness(report: dict) -> bool:
    return any("closeness_atoms_median" in r for r in report["networks"]["networks"].values())


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--reference", default=None,
                   help="reference structures of the same cell, atoms and species: a file or a "
                   "shipped set's name; of a network set, its held-out networks are used "
                   "(default: the shipped set of the ensemble's atom count: a-si-30:heldout, "
                   "a-si-64 or a-si-216)")  # fmt: skip
    p.add_argument("--training", default=None,
                   help="training structures, a file or a shipped set's name: their networks "
                   "for novelty and closeness; 'none' for no novelty (default: the shipped "
                   "set's training part when --reference is the default, else none)")  # fmt: skip
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
    add_overwrite(p, "OUT (a folder)")
    p.set_defaults(func=run)
