"""What several commands share: the overwrite rule, the melt-quench protocol options."""

from __future__ import annotations

import argparse
import os

from repap.errors import InputError


def refuse_existing(*paths: str | os.PathLike, flag: str = "--out") -> None:
    """One rule for every command that writes a file: an existing one is kept, and the command
    refuses before any work, unless --overwrite."""
    for path in paths:
        if os.path.lexists(path):
            raise InputError(f"{path}: exists; pass --overwrite to replace it, or another {flag}")


def add_overwrite(p: argparse.ArgumentParser, what: str = "OUT") -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace an existing {what}")


def add_cluster_options(p: argparse.ArgumentParser, unit: str,
                        default: str = "one per core; 1: in this process") -> None:  # fmt: skip
    """Where the work units run (repap.cluster): local worker processes, or a Dask cluster."""
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help=f"run each {unit} as a task on this Dask cluster: a scheduler "
                   "address (tcp://host:8786) or scheduler file (.json); "
                   "docs/cluster.md")  # fmt: skip
    p.add_argument("--workers", type=int, default=None,
                   help=f"local worker processes, one {unit} each at a time (default: "
                   f"{default})")  # fmt: skip


PROTOCOL_HELP = {  # MeltQuench field -> help (units), for simulate and dataset
    "atoms": "atoms",
    "density": "g/cm^3, cubic cell",
    "frames": "frames stored",
    "stride": "MD steps between frames",
    "melt_temperature": "K",
    "melt_time": "ps",
    "quench_time": "ps, linear ramp to --temperature",
    "temperature": "K, sampling temperature",
    "equilibrate_time": "ps at --temperature before sampling",
    "timestep": "ps",
    "min_distance": "A between atoms of the random start",
    "seed": "random seed (of the first run)",
}


def add_protocol_options(p: argparse.ArgumentParser, **defaults: float) -> None:
    """The melt-quench options, defaults from MeltQuench but those given here."""
    from repap.sim.md import MeltQuench

    d = MeltQuench(**defaults)
    for name, text in PROTOCOL_HELP.items():
        default = getattr(d, name)
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                       help=f"{text} (default: {default:g})")  # fmt: skip
    p.add_argument("--potential", choices=["vink", "sw"], default=d.potential,
                   help="Stillinger-Weber parameters: Vink's a-Si fit or the original "
                   f"(default: {d.potential})")  # fmt: skip


def protocol_of(args: argparse.Namespace) -> dict:
    return {name: getattr(args, name) for name in (*PROTOCOL_HELP, "potential") if name != "seed"}


def check_same_run(path: os.PathLike, wanted: dict) -> None:
    from repap.data.trajectory import read

    have = read(path, index=0).info.get("simulate", {})
    differ = [f"{k} {have.get(k)!r} (asked {v!r})" for k, v in wanted.items() if have.get(k) != v]
    if differ:
        raise InputError(
            f"{path}: exists from a run with other arguments ({', '.join(differ)}); "
            "pass --overwrite to replace it, or another --out"
        )
