"""Chunked, resumable output shared by ``repap generate`` and ``repap relax``: finished chunks
live in ``OUT.parts/`` beside a record of the run's arguments, so a rerun with the same
arguments skips what is done and one with other arguments is refused."""

from __future__ import annotations

import fcntl
import hashlib
import json
import sys
from pathlib import Path
from typing import IO, Any

from repap.errors import InputError

FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".npz": "npz", ".db": "db"}


def output_format(out: Path) -> str:
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        raise InputError(
            f"{out}: unknown output format {out.suffix!r} (use .xyz/.extxyz, .npz or .db)"
        ) from None


def check_output(out: Path) -> str:
    """The format of a new output file; refuses one that exists or has no folder to go in."""
    fmt = output_format(out)
    if out.exists():
        raise InputError(f"{out}: exists; remove it or choose another --out")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: folder {out.parent} does not exist")
    return fmt


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def claim_parts(parts: Path, settings: dict[str, Any], announce: bool = False) -> IO[str]:
    """Create the parts folder, or check that the one there belongs to the same run, and lock
    it. Returns the lock (an open file): hold it until the output is written. A second run on
    the same output while the first holds it is refused at once, instead of the two writing
    and deleting each other's chunks. ``announce``: say on stderr when a run resumes."""
    parts.mkdir(exist_ok=True)
    lock = open(parts / "lock", "a")  # held by the caller until it is done
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InputError(
            f"{parts}: in use by another run on the same output; wait for it to finish or "
            "choose another --out"
        ) from None
    record = parts / "run.json"
    if record.exists() or any(parts.glob("chunk-*")):
        try:
            before = json.loads(record.read_text())
        except (OSError, ValueError):
            before = None
        if before != settings:
            lock.close()
            changed = sorted(k for k in settings if not before or before.get(k) != settings[k])
            raise InputError(
                f"{parts}: left by a run with other arguments ({', '.join(changed)}); "
                "rerun with those or remove the folder"
            )
        if announce:
            done = len({p.name.split(".")[0] for p in parts.glob("chunk-*.npz")})
            print(f"{parts}: resuming, {done} finished chunk(s) kept", file=sys.stderr)
        return lock
    record.write_text(json.dumps(settings))
    return lock


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
