"""repap info: what this build contains (arguments and run)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from repap._C import build_info
    from repap.data.shipped import catalogue
    from repap.runtime import numba_target

    for key, value in build_info().items():
        print(f"{key:22s} {value}")
    target, generic = numba_target()
    print(f"{'numba_target':22s} {target}")
    if generic:
        print("  Numba's LLVM does not know this CPU and compiles for a generic x86-64, without "
              "AVX2: the RDF and fingerprints run ~2.4x slower; export "
              "NUMBA_CPU_NAME=x86-64-v3")  # fmt: skip
    print("\nshipped, usable by name wherever a command takes a model or structures:")
    for kind, name, text in catalogue():
        print(f"  {kind:6s} {name:18s} {text}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="what this build contains, which devices it sees, and the shipped models and sets",
        description="Print the build (version, compiler, CPU and CUDA kernels, the devices "
        "torch sees) and the models and data sets shipped with repap, with the names the "
        "other commands accept in place of a file (repap generate recommended, repap evaluate "
        "... --reference a-si-64:heldout).",
    )
    p.set_defaults(func=run)
