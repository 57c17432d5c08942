"""Chunked, resumable output shared by ``repap generate`` and ``repap relax``: finished chunks
live in ``OUT.parts/`` beside a record of the run's arguments, so a rerun with the same
arguments skips what is done and one with other arguments is refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".npz": "npz", ".db": "db"}


def output_format(out: Path) -> str:
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"{out}: unknown output format {out.suffix!r} (use .xyz/.extxyz, .npz or .db)"
        ) from None


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def claim_parts(parts: Path, settings: dict[str, Any]) -> None:
    """Create the parts folder, or check that the one there belongs to the same run."""
    record = parts / "run.json"
    if parts.exists():
        try:
            before = json.loads(record.read_text())
        except (OSError, ValueError):
            before = None
        if before != settings:
            changed = sorted(k for k in settings if not before or before.get(k) != settings[k])
            raise ValueError(
                f"{parts}: left by a run with other arguments ({', '.join(changed)}); "
                "rerun with those or remove the folder"
            )
        return
    parts.mkdir()
    record.write_text(json.dumps(settings))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
