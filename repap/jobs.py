"""One job discipline for every command that writes (generate, relax, rebuild, search,
dataset, train, evaluate, inspect, simulate, demo), and for their library functions:

1. Arguments and outputs are checked before any work.
2. The output is locked first (:func:`output_job`: an ``flock`` on a hidden ``.OUT.lock``
   beside it) and held to the final rename; a second run on the same output is refused at
   once, in any process.
3. Existing outputs follow one rule: refused unless ``overwrite`` (``--overwrite``), checked
   after the lock is taken and again at the rename (:meth:`Job.publish`), so two writers
   never both finish.
4. Work is written under temporary names unique to the process (:meth:`Job.tmp`) and renamed
   into place whole, so an interrupted or failed run leaves no half-written output.
5. Chunked outputs keep their finished chunks in ``OUT.parts/`` beside a record of the run's
   arguments (:func:`claim_parts`): a rerun with the same arguments resumes, one with others
   is refused while finished chunks would be lost (``--overwrite`` discards them), and a
   damaged chunk is made again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
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


def check_output(out: Path, overwrite: bool = False, flag: str = "--out") -> str:
    """The format of an output file; refuses one that exists (unless ``overwrite``), has no
    folder to go in, or cannot be written there."""
    fmt = output_format(out)
    check_target(out, overwrite, flag)
    return fmt


def check_target(out: Path, overwrite: bool = False, flag: str = "--out") -> None:
    """Refuse, before any work, an output that exists (unless ``overwrite``), whose folder is
    missing, or that cannot be written."""
    if os.path.lexists(out) and not overwrite:
        raise InputError(f"{out}: exists; pass --overwrite to replace it, or another {flag}")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise InputError(f"{out}: folder {out.parent} is not writable")


class Job:
    """A locked output (see :func:`output_job`)."""

    def __init__(self, out: Path, overwrite: bool, flag: str, shown: Path | None = None) -> None:
        self.out, self.overwrite, self.flag = out, overwrite, flag
        self.shown = out if shown is None else shown  # the name as the user gave it

    @property
    def tmp(self) -> Path:
        """A temporary name beside the output, unique to this process, ending in the
        output's whole name (so its format, even .xyz.gz, reads the same)."""
        return self.out.with_name(f".{os.getpid()}.tmp-{self.out.name}")

    def publish(self, tmp: Path | None = None) -> Path:
        """Rename ``tmp`` (default :attr:`tmp`) to the output, checking once more that no
        other writer put one there (unless ``overwrite``)."""
        tmp = self.tmp if tmp is None else tmp
        if os.path.lexists(self.out):
            if not self.overwrite:
                discard(tmp)
                raise InputError(f"{self.shown}: appeared while this run worked; kept it (pass "
                                 f"--overwrite to replace it, or another {self.flag})")  # fmt: skip
            if self.out.is_dir() and not self.out.is_symlink():
                shutil.rmtree(self.out)
        os.replace(tmp, self.out)
        return self.out


@contextlib.contextmanager
def output_job(out: str | os.PathLike, overwrite: bool = False, flag: str = "--out",
               check: bool = True) -> Iterator[Job]:  # fmt: skip
    """Hold ``out`` for one run: take its lock (refused at once if another run, in this
    process or another, holds it), then check it (see :func:`check_target`; ``check=False``
    for an output the caller checks itself, e.g. a checkpoint being resumed). On leaving, the
    process's temporary files are removed and the lock released."""
    shown = Path(out)
    out = Path(os.path.abspath(out))  # "." and ".." have a name here
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{shown}: folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise InputError(f"{shown}: folder {out.parent} is not writable")
    lock = _lock(out.with_name(f".{out.name}.lock"), shown, flag)
    job = Job(out, overwrite, flag, shown)
    try:
        if check:
            check_target(shown, overwrite, flag)
        yield job
    finally:
        discard(job.tmp)
        _unlock(lock)


def _lock(path: Path, out: Path, flag: str) -> IO[str]:
    """An exclusive lock on ``path``, the file now at that name (a holder unlinks it when it
    ends, so one opened just before may be stale: then try again)."""
    for _ in range(100):
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise InputError(f"{out}: another run is writing it; wait for it to finish, or "
                             f"choose another {flag}") from None  # fmt: skip
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()  # the holder before removed it after we opened it
    raise InputError(f"{out}: its lock {path} keeps changing; is another run looping on it?")


def _unlock(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        if os.stat(handle.name).st_ino == os.fstat(handle.fileno()).st_ino:
            os.unlink(handle.name)  # while still held: a waiter that opened it sees it stale
    handle.close()


def discard(path: Path) -> None:
    """Remove a temporary file or folder, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


FINISHED = re.compile(r"chunk-\d{6}(\.md)?\.npz")  # not the temporary files beside them


def refuse_foreign_folder(out: Path, expected: set[str]) -> None:
    """Before ``--overwrite`` replaces the folder ``out`` whole: refuse one that holds
    anything but ``expected`` names (a folder of the user's own, not an earlier report)."""
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in expected)
        if other:
            raise InputError(f"{out}: holds {other[0]}"
                             f"{f' and {len(other) - 1} more' if len(other) > 1 else ''}, which "
                             "this command does not write; --overwrite replaces only its own "
                             "output, choose another --out")  # fmt: skip


def inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies in it."""
    path, folder = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return path == folder or folder in path.parents


def claim_parts(parts: Path, settings: dict[str, Any], announce: bool = False,
                overwrite: bool = False) -> None:  # fmt: skip
    """Create the parts folder of a locked output (:func:`output_job`), or check that the one
    there belongs to the same run. One with other arguments is taken over when it holds no
    finished chunk (a failed start: nothing to lose) or with ``overwrite`` (its chunks are
    discarded), else refused. ``announce``: say on stderr when a run resumes."""
    parts.mkdir(exist_ok=True)
    record = parts / "run.json"
    chunks = {p.name[:12] for p in parts.glob("chunk-*.npz") if FINISHED.fullmatch(p.name)}
    if record.exists() or chunks:
        try:
            before = json.loads(record.read_text())
        except (OSError, ValueError):
            before = None
        if before != settings and chunks and not overwrite:
            changed = sorted(k for k in settings if not before or before.get(k) != settings[k])
            raise InputError(
                f"{parts}: {len(chunks)} finished chunk(s) of a run with other arguments "
                f"({', '.join(changed)}); rerun with those to resume, or pass --overwrite to "
                "discard them"
            )
        if before != settings:  # nothing finished, or discarded on request: start afresh
            shutil.rmtree(parts)
            parts.mkdir()
        elif announce and chunks:
            print(f"{parts}: resuming, {len(chunks)} finished chunk(s) kept", file=sys.stderr)
            return
    record.write_text(json.dumps(settings))


def size_text(n_bytes: float) -> str:
    """Bytes in words: 8.2 KB, 3.1 GB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes:.0f} bytes"


def check_space(folder: Path, need: float, what: str) -> None:
    """Refuse at once work whose files the disk holding ``folder`` cannot hold; ``what``
    says which argument asks for it and what it makes."""
    free = shutil.disk_usage(folder).free
    if need > free:
        raise InputError(f"{what} need about {size_text(need)}; the disk holding {folder} has "
                         f"{size_text(free)} free")  # fmt: skip


def available_memory() -> float:
    """Bytes of memory available to a new allocation (Linux's MemAvailable; elsewhere the
    physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(need: float, what: str, device: Any = None) -> None:
    """Refuse at once work that would need more memory than is available: the host's, or a
    CUDA ``device``'s free memory."""
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch

        have, where = float(torch.cuda.mem_get_info(device)[0]), f"{device}"
    else:
        have, where = available_memory(), "this machine"
    if need > have:
        raise InputError(f"{what} need about {size_text(need)} of memory; {where} has "
                         f"{size_text(have)} available")  # fmt: skip


def intact_chunk(path: Path, keys: tuple[str, ...]) -> bool:
    """Whether a finished chunk reads whole (holding ``keys``); a damaged one is removed,
    with a warning, to be made again."""
    import warnings

    import numpy as np

    try:  # the file opened here: numpy leaves it open when the archive is bad
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            ok = all(k in data.files for k in keys) and all(data[k] is not None for k in keys)
    except Exception:  # any failure to read it means: make it again
        ok = False
    if not ok:
        warnings.warn(f"{path}: damaged, made again", stacklevel=2)
        path.unlink(missing_ok=True)
    return ok


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
