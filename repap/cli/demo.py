"""repap demo: the end-to-end demo (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_overwrite
from repap.runtime import keep_freed_memory


def run(args: argparse.Namespace) -> int:
    from repap.workflows.demo import run_demo

    keep_freed_memory()

    run_demo(args.out, quick=args.quick, progress=not args.quiet, overwrite=args.overwrite)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    add_overwrite(p, "OUT (a folder of an earlier demo)")
    p.set_defaults(func=run)
