"""``repap generate``: many structures to a file, in chunks, resumable, sharded under torchrun.

Structures are generated in chunks of ``batch_size`` consecutive indices. Each finished
chunk is written atomically to ``OUT.parts/chunk-NNNNNN.npz``; a run started again with the
same arguments skips the chunks already there, so nothing written is lost and no structure is
made twice. Under ``torchrun --nproc-per-node K`` rank r takes chunks r, r + K, ... (one GPU
each where there are GPUs); as every structure's random numbers are keyed by its index, the
union is the single-process ensemble. At the end rank 0 streams the chunks, in index order,
into OUT (extxyz with per-structure statistics in the info fields, repap's .npz, or an ASE
SQLite database ``.db``) and removes the parts. Memory holds one chunk at a time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repap._checks import check_positive_int
from repap.cluster import check_scheduler, check_workers, tasks
from repap.data.trajectory import add_npz_arrays, npz_system
from repap.errors import InputError
from repap.jobs import (
    Job,
    check_memory,
    check_output,
    check_space,
    claim_parts,
    file_digest,
    intact_chunk,
    output_job,
    parts_dir,
)
from repap.model.checkpoint import load_model
from repap.model.sampling import (
    Ensemble,
    SamplingOptions,
    default_batch_size,
    sample_checked,
    source_frame,
)
from repap.runtime import agree, distributed, resolve_device


def _save_chunk(path: Path, ens: Ensemble, seconds: float) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(
            fh, positions=ens.positions, index=ens.index, redrawn=ens.redrawn,
            restarts=ens.restarts, failed=ens.failed, failed_redrawn=ens.failed_redrawn,
            failed_restarts=ens.failed_restarts, seconds=np.array(seconds),
        )  # fmt: skip
    os.replace(tmp, path)


def _finished_chunks(parts: Path, mine=lambda c: True) -> set[int]:
    """Indices of the chunks a previous run left in ``parts`` for which ``mine`` holds
    (a torchrun rank's own), finished, intact files only (a damaged one is removed, to be
    made again)."""
    if not parts.is_dir():
        return set()
    names = (e.name for e in os.scandir(parts))
    found = {int(nm[6:-4]) for nm in names if nm.startswith("chunk-") and nm.endswith(".npz")}
    keys = ("positions", "index", "redrawn", "restarts", "failed", "seconds")
    return {c for c in found if mine(c) and intact_chunk(parts / f"chunk-{c:06d}.npz", keys)}


# bytes per atom: a chunk (float32 xyz, as sampled) and the final file (npz float64, text ~55)
_CHUNK_BYTES, _OUT_BYTES = 12, {"npz": 24, "extxyz": 55, "db": 40}


def _check_space(out: Path, fmt: str, n: int, atoms: int) -> None:
    """Refuse at once an ensemble the disk cannot hold (chunks and OUT coexist at the end)."""
    need = n * atoms * (_CHUNK_BYTES + _OUT_BYTES.get(fmt, 55))
    check_space(out.parent, need, f"n: {n:,} structures of {atoms} atoms in {out.name}.parts "
                f"and {out.name}")  # fmt: skip


def _load_chunk(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def generate(
    model: str | os.PathLike,
    n: int,
    out: str | os.PathLike,
    seed: int = 0,
    min_dist: float | None = 2.0,
    temperature: float = 1.0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    max_retries: int = 10,
    max_restarts: int = 10,
    progress: bool = True,
    precision: str | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Generate structures 0 .. n-1 from the checkpoint ``model`` into ``out``; returns the
    summary (structures/s of this run, fraction of atoms redrawn, restarts, failures).
    ``precision``: of the LSTM's products (see :func:`repap.model.sampling.sample`). An
    existing ``out``, or finished chunks of other arguments, are refused unless
    ``overwrite`` (:mod:`repap.jobs`). Each chunk is a task (:mod:`repap.cluster`): in this
    process by default, on ``workers`` local processes, or on the Dask cluster of
    ``scheduler``, whose workers generate on their own device (CUDA where they have one)."""
    out = Path(out)
    fmt = check_output(out, overwrite)
    check_positive_int(n, "n")
    check_workers(workers)
    check_scheduler(scheduler)
    rank, world, local = distributed()
    if world > 1 and (scheduler is not None or (workers or 1) > 1):
        raise InputError("scheduler, workers: not under torchrun (its ranks share the work)")
    given = device  # as asked: a cluster's worker resolves it for itself
    device = resolve_device(device, local)
    if batch_size is None:
        batch_size = default_batch_size(device)
    check_positive_int(batch_size, "batch_size")
    net = load_model(model, device)
    # every argument checked once, before OUT.parts exists: a corrected rerun is never refused
    raw = SamplingOptions(seed, min_dist, temperature, max_retries, max_restarts, precision)
    options, device = raw.check(net, device)
    precision = options.precision
    _check_space(out, fmt, n, len(net.meta["numbers"]))
    # a chunk in memory: coordinates, the LSTM's states and one step's distributions, twice
    cfg, atoms = net.config, len(net.meta["numbers"])
    per = 12 * atoms + 32 * cfg.hidden * cfg.layers + 8 * cfg.n_bins
    check_memory(2 * min(batch_size, n) * per, f"batch_size: chunks of {min(batch_size, n):,}",
                 device)  # fmt: skip
    settings = {
        "model_sha256": file_digest(Path(model)),
        "n": n, "seed": seed, "min_dist": min_dist, "temperature": temperature,
        "batch_size": batch_size, "max_retries": max_retries, "max_restarts": max_restarts,
    }  # fmt: skip
    if precision != "float32":  # float32 runs resume folders written before the option existed
        settings["precision"] = precision
    parts = parts_dir(out)
    with contextlib.ExitStack() as held:  # rank 0 locks OUT until it is written
        error = job = None
        if rank == 0:
            try:
                job = held.enter_context(output_job(out, overwrite))
                claim_parts(parts, settings, announce=True, overwrite=overwrite)
            except (ValueError, OSError) as err:
                error = err
        agree(world, error)  # a refusal on rank 0 stops every rank (no barrier left waiting)

        n_chunks = -(-n // batch_size)
        mine = range(rank, n_chunks, world)  # this rank's chunks, never listed: n may be huge
        done = _finished_chunks(parts, lambda c: c < n_chunks and c % world == rank)
        bar = None
        if progress and rank == 0:
            from tqdm.auto import tqdm

            desc = "generating" if world == 1 else f"generating (rank 0 of {world})"
            last = n - (n_chunks - 1) * batch_size  # the last chunk may be short
            total = len(mine) * batch_size - (
                (batch_size - last) if mine[-1] == n_chunks - 1 else 0
            )
            initial = sum(min(batch_size, n - c * batch_size) for c in done)
            bar = tqdm(total=total, initial=initial, unit="structure", desc=desc)
        todo = [c for c in mine if c not in done]
        # each chunk a task (repap.cluster): here by default, or on a Dask cluster's workers,
        # which load the model from its bytes; this process writes the chunks
        with tasks("chunk", len(todo), scheduler, 1 if workers is None else workers,
                   needs=("torch",)) as work:  # fmt: skip
            if work.here:
                model_ref, how = net, (options, device)
            else:  # the options as resolved here; each worker checks them for its device
                model_ref = work.share(Path(model).read_bytes())
                how = (replace(raw, precision=options.precision), given)
            for c in todo:
                lo = c * batch_size
                work.submit(c, _sample_chunk, model_ref, *how, lo, min(batch_size, n - lo))
            for c, (ens, seconds) in work.results():
                _save_chunk(parts / f"chunk-{c:06d}.npz", ens, seconds)
                if bar is not None:
                    bar.update(len(ens.index) + len(ens.failed))
        if bar is not None:
            bar.close()
        _barrier(world)
        if rank != 0:
            return {}
        summary = _assemble(net, job, fmt, parts, n_chunks, {**settings, "model": str(model)}, todo)
        shutil.rmtree(parts)
        return summary


_LOADED: dict[tuple[bytes, str], tuple] = {}  # in a worker: the last model, options, device
_LOADING = threading.Lock()  # a worker may run several tasks at once (dask worker --nthreads)


def _sample_chunk(model: Any, options: SamplingOptions, device: Any, start: int,
                  count: int) -> tuple[Ensemble, float]:  # fmt: skip
    """One work unit of :func:`generate`: structures start .. start + count - 1, and the
    seconds taken. ``model``: the model, or (on a cluster's worker) its checkpoint's bytes,
    loaded once per worker and device; the options are the client's, precision resolved, so
    that every chunk is made as the file records (a worker that cannot is refused)."""
    if isinstance(model, bytes):
        import hashlib
        import tempfile

        key = (hashlib.sha256(model).digest(), str(device))
        with _LOADING:
            if key not in _LOADED:
                with tempfile.NamedTemporaryFile(suffix=".pt") as fh:
                    fh.write(model)
                    fh.flush()
                    net = load_model(fh.name, "cpu")
                checked, dev = options.check(net, device)  # the device as this worker sees it
                _LOADED.clear()
                _LOADED[key] = (net.to(dev), checked, dev)
            model, options, device = _LOADED[key]
    t0 = time.perf_counter()
    ens = sample_checked(model, count, options, device, start=start, batch_size=count)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return ens, time.perf_counter() - t0


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def _assemble(
    net, job: Job, fmt: str, parts: Path, n_chunks: int, settings: dict, fresh: list[int]
) -> dict[str, Any]:
    """Stream the chunks in index order into the job's output (written to a temporary name,
    then renamed), and summarise."""
    out = job.out
    paths = [parts / f"chunk-{c:06d}.npz" for c in range(n_chunks)]
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise RuntimeError(f"{parts}: chunks missing after generation: {', '.join(missing[:3])}")
    cell, _, numbers, pbc = source_frame(net.meta)
    info = {"generator": "repap",
            **{k: settings[k] for k in ("model", "seed", "min_dist", "temperature")}}  # fmt: skip
    if "precision" in settings:  # bfloat16; float32 files stay as they were
        info["precision"] = settings["precision"]
    seconds = made = 0.0  # the generation record, so that evaluate can put cost beside quality
    for path in paths:
        with np.load(path) as data:
            seconds += float(data["seconds"])
            made += len(data["index"]) + len(data["failed"])
    info["seconds_per_structure"] = seconds / made if made else None
    tmp = job.tmp
    totals = {"structures": 0, "failed": [], "redrawn": 0, "restarts": 0, "seconds": 0.0, "made": 0}

    fresh_set = set(fresh)

    def chunks():
        for c, path in enumerate(paths):
            data = _load_chunk(path)
            totals["structures"] += len(data["index"])
            totals["failed"] += data["failed"].tolist()
            # the failed structures' work counts too (chunks of older runs lack it)
            totals["redrawn"] += int(data["redrawn"].sum() + np.sum(data.get("failed_redrawn", 0)))
            totals["restarts"] += int(
                data["restarts"].sum() + np.sum(data.get("failed_restarts", 0))
            )
            if c in fresh_set:
                totals["seconds"] += float(data["seconds"])
                totals["made"] += len(data["index"]) + len(data["failed"])
            yield Ensemble(data["positions"], cell, numbers, pbc, None, info,
                           index=data["index"], redrawn=data["redrawn"],
                           restarts=data["restarts"], failed=data["failed"])  # fmt: skip

    if fmt == "npz":
        total = 0
        for p in paths:  # the header needs the count first; reads one small array per chunk
            with np.load(p) as data:
                total += len(data["index"])
        _write_npz_stream(tmp, chunks(), total, len(numbers), cell, numbers, pbc, info)
    elif fmt == "db":
        _write_db(tmp, chunks())
    else:
        write_extxyz(tmp, chunks())
    job.publish(tmp)
    n_atoms = len(numbers)
    return {
        "structures": totals["structures"],
        "failed": len(totals["failed"]),
        "failed_indices": totals["failed"][:20],
        "atoms_redrawn_fraction": totals["redrawn"]
        / max(1, (totals["structures"] + len(totals["failed"])) * n_atoms),
        "restarts": totals["restarts"],
        "structures_per_s": totals["made"] / totals["seconds"] if totals["seconds"] else None,
        "out": str(out),
    }


# how an ensemble was made, in every extxyz/db frame (not its timing: the same arguments give
# the same file)
MADE = ("generator", "model", "seed", "min_dist", "temperature", "precision")


def _frames(ens: Ensemble):
    """Frames with their statistics, and how the ensemble was made (the same in every frame:
    ``repap.read`` gives it back as the trajectory's info)."""
    made = {k: v for k, v in ens.info.items() if k in MADE and isinstance(v, str | int | float)}
    for atoms, index, redrawn, restarts in zip(
        ens, ens.index, ens.redrawn, ens.restarts, strict=True
    ):
        atoms.info.update(made, structure=int(index), redrawn=int(redrawn), restarts=int(restarts))
        yield atoms


def write_extxyz(path: str | os.PathLike, ensembles) -> None:
    """Ensembles as one extxyz file, per-structure statistics in each frame's info."""
    import ase.io

    with open(path, "w") as fh:
        for ens in ensembles:
            ase.io.write(fh, list(_frames(ens)), format="extxyz")


def _write_db(path: Path, chunks) -> None:
    import ase.db

    db = ase.db.connect(str(path), type="db", append=False)
    for ens in chunks:
        with db:  # one transaction per chunk
            for atoms in _frames(ens):
                db.write(atoms, **atoms.info)


def _write_npz_stream(path, chunks, total, n_atoms, cell, numbers, pbc, info) -> None:
    """repap's trajectory .npz (readable by repap.read) plus the statistics, with the
    positions streamed chunk by chunk (ZIP64 for large ensembles)."""
    small: dict[str, list[np.ndarray]] = {"index": [], "redrawn": [], "restarts": [], "failed": []}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        with zf.open("positions.npy", "w", force_zip64=True) as fh:
            header = {"descr": "<f8", "fortran_order": False, "shape": (total, n_atoms, 3)}
            np.lib.format.write_array_header_1_0(fh, header)
            for ens in chunks:
                fh.write(np.ascontiguousarray(ens.positions, dtype="<f8").tobytes())
                for key in small:
                    small[key].append(getattr(ens, key))
        stats = {k: np.concatenate(v).astype(np.int64) for k, v in small.items()}
        add_npz_arrays(zf, {**npz_system(cell, numbers, pbc, info), **stats})
