"""repap generate: generate structures (arguments and run)."""

from __future__ import annotations

import argparse

from repap.cli._common import add_cluster_options, add_overwrite
from repap.errors import InputError
from repap.runtime import keep_freed_memory


def run(args: argparse.Namespace) -> int:
    from repap.data.shipped import model_file
    from repap.generation.chunked import generate

    keep_freed_memory()

    text = args.min_dist.strip().lower()
    try:
        min_dist = None if text in ("none", "off") or float(text) == 0 else float(text)
    except ValueError:
        message = f"--min-dist: expected a distance in A or 'none', got {args.min_dist!r}"
        raise InputError(message) from None
    summary = generate(
        model_file(args.model),
        args.n,
        args.out,
        seed=args.seed,
        min_dist=min_dist,
        temperature=args.temperature,
        batch_size=args.batch_size,
        device=args.device,
        max_retries=args.max_retries,
        max_restarts=args.max_restarts,
        progress=not args.quiet,
        overwrite=args.overwrite,
        precision=args.precision,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    if not summary:  # a torchrun rank other than 0
        return 0
    rate = summary["structures_per_s"]
    print(
        f"wrote {summary['out']}: {summary['structures']} structures, "
        f"{summary['failed']} failed"
        + (f" (indices {summary['failed_indices']})" if summary["failed"] else "")
        + f"; atoms redrawn {100 * summary['atoms_redrawn_fraction']:.2f} %, "
        f"restarts {summary['restarts']}"
        + (f"; {rate:,.0f} structures/s" if rate else "; nothing left to generate (resumed)")
    )
    return 1 if summary["failed"] else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate structures from a trained model",
        description="Generate N structures (indices 0 .. N-1) with clash rejection into OUT: "
        ".xyz/.extxyz (per-structure statistics in the info fields), .npz (repap's array "
        "format) or .db (ASE database). Chunks are kept in OUT.parts until the end, so an "
        "interrupted run started again with the same arguments resumes. Under torchrun "
        "(torchrun --nproc-per-node K -m repap generate ...) the ranks share the chunks. "
        "Exit status 1 if any structure failed.",
    )
    p.add_argument("model", help="checkpoint written by repap train, or a shipped model's "
                   "name (recommended, networks-64, ...; repap info lists them)")  # fmt: skip
    p.add_argument("-n", type=int, required=True, help="number of structures")
    p.add_argument("--out", required=True, help="output file (.xyz, .extxyz, .npz or .db)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument(
        "--min-dist",
        default="2.0",
        help="Angstrom; no pair closer in the output; 'none' turns rejection off (default: 2.0)",
    )
    p.add_argument("--temperature", type=float, default=0.5,
                   help="below 1 keeps samples on the learnt networks; 1 is the model's own "
                   "distribution (default: 0.5, the recommended setting)")  # fmt: skip
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="the LSTM's matrix products: bfloat16 (tensor cores, CUDA only) draws "
                   "from the same distribution as float32 but not the same structures "
                   "(default: auto, bfloat16 on GPUs that have it, float32 elsewhere)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=None, help="structures per chunk "
                   "(default: 1024 on CPU, 65536 on GPU)")  # fmt: skip
    p.add_argument("--max-retries", type=int, default=10, help="redraws per atom (default: 10)")
    p.add_argument(
        "--max-restarts", type=int, default=10, help="restarts per structure (default: 10)"
    )
    add_cluster_options(p, "chunk", default="1: in this process; torch uses every core")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_overwrite(p, "OUT")
    p.set_defaults(func=run)
