"""The ``repap`` command line: one function per subcommand, heavy imports inside each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _info(args: argparse.Namespace) -> int:
    import repap

    for key, value in repap.build_info().items():
        print(f"{key:22s} {value}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from repap.demo import run_projection_demo

    run_projection_demo(args.out, frames=args.frames, n_bins=args.bins)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repap", description="Ensembles of atomic structures with RePAP."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="what this build contains and which devices it sees")
    p.set_defaults(func=_info)

    p = sub.add_parser("demo", help="run the end-to-end example on built-in data")
    p.add_argument("--out", default="repap-demo", help="output folder (default: repap-demo)")
    p.add_argument("--frames", type=int, default=2000, help="frames to project (default: 2000)")
    p.add_argument("--bins", type=int, default=50, help="grid bins per axis (default: 50)")
    p.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # a user's mistake: one line, no traceback
        print(f"repap {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"repap {args.command}: interrupted", file=sys.stderr)
        return 130
