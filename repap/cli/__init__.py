"""The ``repap`` command line, in ASE's pattern: one module per command in this package, each
with ``add_parser(sub)`` (its arguments) and ``run(args)``, heavy imports inside ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from repap.errors import InputError

COMMANDS = ("info", "demo", "simulate", "dataset", "inspect", "evaluate", "train", "generate",
            "relax", "rebuild", "search")  # fmt: skip


# what a rerun does after Ctrl-C, for the commands that keep their finished work
_AGAIN = "; run the same command again to resume: finished {} are kept"
RESUMES = {
    "generate": _AGAIN.format("chunks"),
    "relax": _AGAIN.format("chunks"),
    "rebuild": _AGAIN.format("chunks"),
    "search": _AGAIN.format("chunks"),
    "dataset": _AGAIN.format("runs"),
    "train": "; add --resume to the same command to go on from the last finished epoch",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repap", description="Ensembles of atomic structures with RePAP."
    )
    from repap._version import __version__

    parser.add_argument("--version", action="version", version=f"repap {__version__}")
    parser.add_argument(
        "-T", "--traceback", action="store_true", help="on an error, show the whole traceback"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"repap.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # -T anywhere on the line (before or after the command's own options)
    argv = list(sys.argv[1:] if argv is None else argv)
    show_traceback = any(a in ("-T", "--traceback") for a in argv)
    args = parser.parse_args([a for a in argv if a not in ("-T", "--traceback")])

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"repap {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():  # restores the default display when main returns
            warnings.showwarning = show
            return args.func(args)
    except BrokenPipeError:  # output piped into head or less, closed early: not an error
        sys.stderr.close()
        return 0
    except (InputError, OSError) as err:  # a user's mistake: one line, no traceback
        if show_traceback:
            raise
        print(f"repap {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # e.g. LAMMPS gave up: still one line, but a failure, not usage
        if show_traceback:
            raise
        print(f"repap {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"repap {args.command}: interrupted{RESUMES.get(args.command, '')}", file=sys.stderr)
        return 130
    except Exception as err:  # anything else is repap's bug, not the user's mistake
        if show_traceback:
            raise
        print(
            f"repap {args.command}: internal error ({type(err).__name__}: {err}); this is a bug "
            "in repap: rerun with -T to see the traceback, and report it",
            file=sys.stderr,
        )
        return 1
