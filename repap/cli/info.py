"""repap info: what this build contains (arguments and run)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from repap._C import build_info

    for key, value in build_info().items():
        print(f"{key:22s} {value}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="what this build contains and which devices it sees")
    p.set_defaults(func=run)
