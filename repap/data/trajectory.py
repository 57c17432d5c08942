"""Trajectories as arrays: positions (F, N, 3), cell, atomic numbers, pbc, optional energies.

ASE reads and writes every file format; repap keeps the frames as arrays and adds a compact
native format (``.npz``) that reloads fast. Reading streams frames into fixed-size blocks, so a
file of a million frames never exists as a million ``ase.Atoms`` objects at once: memory peaks
near twice the final arrays (the blocks plus their concatenation).
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repap.errors import InputError

if TYPE_CHECKING:
    from ase import Atoms

NPZ_FORMAT = "repap-trajectory-1"
_BLOCK = 4096  # frames per buffer block while streaming a file


@dataclass
class Trajectory:
    """Frames of one system: same atoms, same order, in every frame.

    positions: (F, N, 3) Cartesian, Angstrom. cell: (3, 3), rows are lattice vectors, or one per
    frame (F, 3, 3). numbers: (N,) atomic numbers. pbc: (3,) bool. energy: (F,) potential energy
    of each frame in eV, or None. info: JSON-able metadata (e.g. how the frames were made).
    """

    positions: np.ndarray
    cell: np.ndarray
    numbers: np.ndarray
    pbc: np.ndarray = field(default_factory=lambda: np.ones(3, bool))
    energy: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._coerce()
        validate(self, "trajectory")

    def _coerce(self) -> None:
        """Fields as arrays of the documented dtypes."""
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.cell = np.asarray(self.cell, dtype=np.float64)
        self.numbers = np.asarray(self.numbers, dtype=np.int64)
        self.pbc = np.broadcast_to(np.asarray(self.pbc, dtype=bool), (3,)).copy()
        if self.energy is not None:
            self.energy = np.asarray(self.energy, dtype=np.float64)

    # -- shape -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.positions.shape[0]

    def __repr__(self) -> str:  # one line, not the arrays
        z, count = np.unique(self.numbers, return_counts=True)
        species = " ".join(f"Z={a}:{c}" for a, c in zip(z.tolist(), count.tolist(), strict=True))
        lengths = np.linalg.norm(self.frame_cells()[0], axis=1) if len(self) else np.zeros(3)
        extra = "".join(f", {k} {v}" for k, v in self._repr_extra().items())
        return (f"{type(self).__name__}({len(self)} frames of {self.n_atoms} atoms ({species}), "
                f"cell {' x '.join(f'{x:.4g}' for x in lengths)} A{extra})")  # fmt: skip

    def _repr_extra(self) -> dict[str, Any]:
        return {}

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[1]

    def frame_cells(self) -> np.ndarray:
        """The cell of every frame, (F, 3, 3) (a broadcast view when the cell is fixed)."""
        if self.cell.ndim == 3:
            return self.cell
        return np.broadcast_to(self.cell, (len(self), 3, 3))

    def __getitem__(self, index: int | slice | np.ndarray) -> Atoms | Trajectory:
        """An int gives one ``ase.Atoms``; a slice or index array gives a Trajectory."""
        if isinstance(index, int | np.integer):
            return self._atoms(int(index))
        cell = self.cell[index] if self.cell.ndim == 3 else self.cell
        energy = None if self.energy is None else self.energy[index]
        return Trajectory(
            self.positions[index], cell, self.numbers, self.pbc, energy, dict(self.info)
        )

    def __iter__(self) -> Iterator[Atoms]:
        for i in range(len(self)):
            yield self._atoms(i)

    def fractional(self, wrap: bool = True) -> np.ndarray:
        """Fractional coordinates (F, N, 3); ``wrap`` folds periodic axes into [0, 1)."""
        if (np.abs(np.linalg.det(self.cell)) < 1e-9).any():
            raise InputError("cell: singular (volume 0); fractional coordinates need a cell")
        frac = self.positions @ np.linalg.inv(self.cell)  # (3, 3) or batched (F, 3, 3)
        if wrap and self.pbc.any():
            folded = frac[..., self.pbc] % 1.0
            folded[folded >= 1.0] = 0.0  # x % 1 rounds up to exactly 1.0 for tiny negative x
            frac[..., self.pbc] = folded
        return frac

    # -- ASE ---------------------------------------------------------------------------------
    @classmethod
    def from_atoms(cls, frames: Iterable[Atoms], source: str = "frames") -> Trajectory:
        """Stack ``ase.Atoms`` frames (any iterable; consumed once, block by block)."""
        return _collect(frames, source)

    def to_atoms(self) -> list[Atoms]:
        """One ``ase.Atoms`` per frame; energies ride on a SinglePointCalculator."""
        return list(self)

    def _atoms(self, i: int) -> Atoms:
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        if not -len(self) <= i < len(self):
            raise IndexError(f"frame {i} out of range for {len(self)} frames")
        cell = self.cell[i] if self.cell.ndim == 3 else self.cell
        atoms = Atoms(numbers=self.numbers, positions=self.positions[i], cell=cell, pbc=self.pbc)
        if self.energy is not None and np.isfinite(self.energy[i]):
            atoms.calc = SinglePointCalculator(atoms, energy=float(self.energy[i]))
        return atoms

    # -- files -------------------------------------------------------------------------------
    def write(
        self, path: str | os.PathLike, format: str | None = None, precision: float | None = None
    ) -> None:
        """Write to ``path``: ``.npz`` is repap's native format, anything else goes to ASE.

        The ``.npz`` keeps float64 positions bit for bit; with ``precision`` (Angstrom) it
        stores each atom's mean position plus integer displacements instead, rounded to
        ``precision``: several times smaller for thermal motion around fixed sites.
        """
        path = Path(path)
        if (format or path.suffix.lstrip(".")) == "npz":
            _write_npz(self, path, precision)
            return
        if precision is not None:
            raise InputError(f"precision: only the .npz format takes it, not {path.name}")
        import ase.io

        check_writable(path, format=format)
        if len(self) > 1 and _ioformat(path, format).single:
            raise InputError(f"{path}: this format holds one frame, the trajectory has {len(self)}")
        try:  # a generator: frames become Atoms one at a time, never all at once
            ase.io.write(path, self[0] if len(self) == 1 else iter(self), format=format)
        except ValueError as err:
            raise InputError(f"{path}: cannot write this format ({err})") from None


def read(
    path: str | os.PathLike,
    index: str | int | slice = ":",
    format: str | None = None,
    species: Sequence[str] | None = None,
) -> Trajectory:
    """Read a trajectory from any file ASE reads (extxyz, .traj, LAMMPS dump, XDATCAR, ...) or
    from repap's ``.npz``. ``index`` selects frames as in ``ase.io.read`` (default: all).
    ``species`` names the elements of LAMMPS atom types 1, 2, ... in a LAMMPS dump, which holds
    types only (without it ASE reads type 1 as hydrogen, and repap warns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: no frames")
    if (format or path.suffix.lstrip(".")) == "npz":
        _type_options(path, "npz", species)  # refuses species= here
        traj = _read_npz(path)
        if index == ":":
            return traj
        rows = np.arange(len(traj))[as_slice(index, path)]
        if not len(rows):
            raise InputError(f"{path}: index {index!r} selects none of its {len(traj)} frames")
        return traj[rows]
    import ase.io
    from ase.io.formats import UnknownFileTypeError, filetype

    try:
        kind = format or filetype(str(path))
        options = _type_options(path, kind, species)
        frames = ase.io.iread(path, index=index, format=format, **options)
        return _collect(frames, str(path))
    except UnknownFileTypeError:
        raise InputError(
            f"{path}: unknown file format (name it: --format on the command line, format= in "
            "Python, e.g. extxyz)"
        ) from None
    except StopIteration:
        raise InputError(f"{path}: no frames") from None


def _type_options(path: Path, kind: str, species: Sequence[str] | None) -> dict:
    """ASE's options that give LAMMPS atom types their elements."""
    if not kind.startswith("lammps-dump"):
        if species is not None:
            raise InputError("species: only for LAMMPS dump files, which hold atom types")
        return {}
    if species is None:
        warnings.warn(
            f"{path}: a LAMMPS dump holds atom types, read as atomic numbers (type 1 = H); "
            "name the elements with species=['Si', ...] (CLI: --species Si)",
            stacklevel=3,
        )
        return {}
    from ase.data import atomic_numbers

    unknown = [s for s in species if s not in atomic_numbers]
    if unknown or not species:
        raise InputError(f"species: expected element symbols such as Si, got {list(species)}")
    return {"specorder": list(species)}


def check_writable(
    path: str | os.PathLike, precision: float | None = None, format: str | None = None
) -> None:
    """Raise now, before a long computation, if ``Trajectory.write(path)`` would fail."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist")
    if (format or path.suffix.lstrip(".")) == "npz":
        _check_precision(precision)
        return
    if precision is not None:
        raise InputError(f"precision: only the .npz format takes it, not {path.name}")
    from ase.io.formats import UnknownFileTypeError

    try:
        writable = _ioformat(path, format).can_write
    except UnknownFileTypeError:
        writable = False
    if not writable:
        raise InputError(
            f"{path}: unknown or read-only file format (use a suffix such as .npz, .extxyz, .traj)"
        )


def _ioformat(path: Path, format: str | None) -> Any:
    from ase.io.formats import filetype, get_ioformat

    return get_ioformat(format or filetype(path, read=False))


def _check_precision(precision: float | None) -> None:
    if precision is not None and not (isinstance(precision, float | int) and 0 < precision < 1):
        raise InputError(f"precision: expected a length in (0, 1) A, got {precision!r}")


def as_slice(index: str | int | slice, path: Path) -> slice | np.ndarray:
    if isinstance(index, slice):
        return index
    if isinstance(index, int):
        return slice(index, index + 1 if index != -1 else None)
    try:
        parts = [int(p) if p else None for p in str(index).split(":")]
    except ValueError:
        raise InputError(f"index: expected an int or 'start:stop:step', got {index!r}") from None
    if len(parts) == 1:
        return as_slice(parts[0] if parts[0] is not None else ":", path)
    return slice(*parts)


def validate(traj: Trajectory, source: str) -> None:
    """One-line errors naming the source and frame for data no step downstream can use."""
    pos, cell = traj.positions, traj.cell
    if pos.ndim != 3 or pos.shape[2] != 3:
        raise InputError(f"{source}: positions must have shape (F, N, 3), got {pos.shape}")
    n_frames, n_atoms = pos.shape[:2]
    if n_frames == 0:
        raise InputError(f"{source}: no frames")
    if n_atoms == 0:
        raise InputError(f"{source}: frame 0 has no atoms")
    if traj.numbers.shape != (n_atoms,):
        raise InputError(f"{source}: {traj.numbers.shape[0]} atomic numbers for {n_atoms} atoms")
    if cell.shape not in ((3, 3), (n_frames, 3, 3)):
        raise InputError(
            f"{source}: cell must have shape (3, 3) or ({n_frames}, 3, 3), got {cell.shape}"
        )
    bad = ~np.isfinite(pos).all(axis=(1, 2))
    if bad.any():
        raise InputError(f"{source}: frame {int(np.argmax(bad))} has NaN or infinite positions")
    if not np.isfinite(cell).all():
        raise InputError(f"{source}: the cell has NaN or infinite entries")
    if traj.pbc.any():
        volume = np.abs(np.linalg.det(cell.reshape(-1, 3, 3)))
        tiny = volume < 1e-6
        if tiny.any():
            frame = int(np.argmax(tiny)) if cell.ndim == 3 else 0
            raise InputError(f"{source}: frame {frame} is periodic but has no cell (volume 0)")
    if traj.energy is not None and traj.energy.shape != (n_frames,):
        raise InputError(f"{source}: {traj.energy.shape} energies for {n_frames} frames")


def _parsed(frames: Iterable[Atoms], source: str) -> Iterator[Atoms]:
    """The frames of an ASE reader; its parse errors (truncated or foreign files) become one line
    naming the file and the frame."""
    iterator = iter(frames)
    n = 0
    while True:
        try:
            atoms = next(iterator)
        except StopIteration:
            return
        except (
            ValueError,
            OSError,
            IndexError,
            KeyError,
            TypeError,
            AttributeError,
            AssertionError,
        ) as err:
            detail = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InputError(
                f"{source}: cannot read frame {n}: damaged, truncated or not this format ({detail})"
            ) from None
        yield atoms
        n += 1


def _collect(frames: Iterable[Atoms], source: str) -> Trajectory:
    """Stream frames into blocks, checking each against frame 0 as it arrives."""
    blocks_pos: list[np.ndarray] = []
    blocks_cell: list[np.ndarray] = []
    blocks_energy: list[np.ndarray] = []
    numbers = pbc = None
    common: dict[str, Any] = {}  # scalar info every frame shares (how an ensemble was made)
    n = 0
    for atoms in _parsed(frames, source):
        if n == 0:  # ASE gives numpy scalars: plain ones, JSON-able
            scalars = (str, int, float, np.number)
            common = {k: v.item() if isinstance(v, np.generic) else v
                      for k, v in atoms.info.items() if isinstance(v, scalars)}  # fmt: skip
        elif common:
            common = {k: v for k, v in common.items() if atoms.info.get(k) == v}
        k = n % _BLOCK
        if k == 0:
            if numbers is None:
                numbers, pbc = atoms.numbers.copy(), atoms.pbc.copy()
                n_atoms = len(numbers)
            blocks_pos.append(np.empty((_BLOCK, n_atoms, 3)))
            blocks_cell.append(np.empty((_BLOCK, 3, 3)))
            blocks_energy.append(np.full(_BLOCK, np.nan))
        if len(atoms) != n_atoms:
            raise InputError(f"{source}: frame {n} has {len(atoms)} atoms, frame 0 has {n_atoms}")
        if not np.array_equal(atoms.numbers, numbers):
            raise InputError(f"{source}: frame {n} has other species or atom order than frame 0")
        if not np.array_equal(atoms.pbc, pbc):
            raise InputError(
                f"{source}: frame {n} has pbc {atoms.pbc.tolist()}, frame 0 has {pbc.tolist()}"
            )
        positions = atoms.positions
        if not np.isfinite(positions).all():
            raise InputError(f"{source}: frame {n} has NaN or infinite positions")
        cell = atoms.cell.array
        if pbc.any() and not abs(np.linalg.det(cell)) >= 1e-6:  # also catches a NaN cell
            raise InputError(f"{source}: frame {n} is periodic but has no cell (volume 0)")
        blocks_pos[-1][k] = positions
        blocks_cell[-1][k] = cell
        blocks_energy[-1][k] = _energy_of(atoms)
        n += 1
    if n == 0:
        raise InputError(f"{source}: no frames")
    positions = _concat(blocks_pos, n)
    cells = _concat(blocks_cell, n)
    energy = _concat(blocks_energy, n)
    cell = cells[0].copy() if (cells == cells[0]).all() else cells
    return Trajectory(
        positions,
        cell,
        numbers,
        pbc,
        None if np.isnan(energy).all() else energy,
        {**common, "source": source},
    )


def _concat(blocks: list[np.ndarray], n: int) -> np.ndarray:
    out = np.empty((n, *blocks[0].shape[1:]), dtype=blocks[0].dtype)
    start = 0
    while blocks:  # free each block as soon as it is copied, to keep the peak near 2x
        block = blocks.pop(0)
        take = min(len(block), n - start)
        out[start : start + take] = block[:take]
        start += take
    return out


def _energy_of(atoms: Atoms) -> float:
    calc = atoms.calc
    if calc is not None and "energy" in getattr(calc, "results", {}):
        return float(calc.results["energy"])
    value = atoms.info.get("energy")
    return float(value) if isinstance(value, int | float) else np.nan


def npz_system(cell: np.ndarray, numbers: np.ndarray, pbc: np.ndarray, info: dict) -> dict:
    """The arrays every repap .npz holds besides its positions: the format marker, the system
    and the info (as JSON)."""
    return {"format": np.array(NPZ_FORMAT), "cell": cell, "numbers": numbers, "pbc": pbc,
            "info": np.array(json.dumps(info))}  # fmt: skip


def add_npz_arrays(zf: zipfile.ZipFile, arrays: dict[str, np.ndarray]) -> None:
    """Arrays into an open .npz (a zip of .npy files), never pickled."""
    for name, array in arrays.items():
        buffer = io.BytesIO()
        array = array if array.flags.c_contiguous else array.copy()  # keeps 0-d arrays 0-d
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        zf.writestr(f"{name}.npy", buffer.getvalue())


def _write_npz(traj: Trajectory, path: Path, precision: float | None) -> None:
    arrays: dict[str, np.ndarray] = {}
    if precision is None:
        arrays["positions"] = traj.positions
    else:  # each atom's mean position + integer steps of `precision` A, as byte planes
        _check_precision(precision)
        mean = traj.positions.mean(axis=0)
        steps = np.round((traj.positions - mean) / precision)
        dtype = np.int16 if np.abs(steps).max() <= np.iinfo(np.int16).max else np.int32
        planes = steps.astype(dtype).view(np.uint8).reshape(*steps.shape, -1)
        # the high bytes of small displacements are nearly constant and compress away
        arrays.update(
            mean=mean,
            precision=np.array(float(precision)),
            dtype=np.array(np.dtype(dtype).str),
            steps=np.moveaxis(planes, -1, 0).copy(),
        )
    arrays.update(npz_system(traj.cell, traj.numbers, traj.pbc, traj.info))
    if traj.energy is not None:
        arrays["energy"] = traj.energy
    if hasattr(
        traj, "extra_arrays"
    ):  # a repap.sim.reference_sets.NetworkSet: its per-network arrays
        arrays.update({f"set_{k}": v for k, v in traj.extra_arrays().items()})
    tmp = path.with_name(path.name + ".part")
    compression = zipfile.ZIP_DEFLATED if precision is None else zipfile.ZIP_LZMA
    with zipfile.ZipFile(tmp, "w", compression=compression) as zf:
        add_npz_arrays(zf, arrays)
    os.replace(tmp, path)  # an interrupted write never leaves a half file under `path`


def _read_npz(path: Path) -> Trajectory:
    with open(path, "rb") as fh:  # numpy would try pickle next, and advise loading unsafely
        if fh.read(2) != b"PK":
            raise InputError(f"{path}: not an .npz file (no zip archive inside)")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            if "format" not in data or str(data["format"]) != NPZ_FORMAT:
                raise InputError(f"{path}: not a repap trajectory (no '{NPZ_FORMAT}' marker)")
            if "positions" in data:
                positions = data["positions"]
            else:
                planes = np.moveaxis(data["steps"], 0, -1)
                steps = np.ascontiguousarray(planes).view(str(data["dtype"]))[..., 0]
                positions = data["mean"] + steps * float(data["precision"])
            energy = data["energy"] if "energy" in data else None
            fields = (positions, data["cell"], data["numbers"], data["pbc"], energy,
                      json.loads(str(data["info"])))  # fmt: skip
            extra = {k[4:]: data[k] for k in data.files if k.startswith("set_")}
            if extra:  # several networks of one composition
                return NetworkSet(*fields, **extra)
            return Trajectory(*fields)
    except (zipfile.BadZipFile, EOFError, KeyError, OSError) as err:
        raise InputError(f"{path}: damaged or truncated .npz ({err})") from None
    except ValueError as err:
        msg = str(err)
        if "allow_pickle" in msg:  # numpy's advice to load unsafely: never taken here
            msg = "damaged, or not a repap .npz (an array in it is not plain data)"
        raise InputError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


@dataclass(repr=False)
class NetworkSet(Trajectory):
    """Frames of several networks of one composition in one cell (a :class:`Trajectory`
    whose frames come from different systems: atom order is per network). ``network[f]``: the
    network of frame f; per network k: ``inherent[k]`` (N, 3) its inherent structure,
    ``inherent_energy[k]`` (eV/atom), ``heldout[k]`` whether it is held out, ``seeds[k]``,
    ``family[k]`` its group of near-copies (networks matching on 90 % of atoms or more,
    :mod:`repap.analysis.closeness`; numbered by first member; each network its own in sets
    written before families)."""

    network: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    inherent: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    inherent_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heldout: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    seeds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    family: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.family) != len(self.inherent):
            self.family = np.arange(len(self.inherent), dtype=np.int64)

    @property
    def n_networks(self) -> int:
        return len(self.inherent)

    def system(self, k: int) -> Trajectory:
        """The frames of network k: one system, as the rest of repap expects."""
        rows = np.flatnonzero(self.network == k)
        return Trajectory(self.positions[rows], self.cell, self.numbers, self.pbc,
                          None if self.energy is None else self.energy[rows],
                          {**self.info, "network": int(k), "seed": int(self.seeds[k])})  # fmt: skip

    def inherent_structures(self, which: str = "all") -> Trajectory:
        keep = self._which(which)
        energy = self.inherent_energy[keep] * len(self.numbers)
        return Trajectory(self.inherent[keep], self.cell, self.numbers, self.pbc, energy,
                          dict(self.info))  # fmt: skip

    def _which(self, which: str) -> np.ndarray:
        if which == "all":
            return np.ones(self.n_networks, bool)
        if which == "train":
            return ~self.heldout
        if which == "heldout":
            return self.heldout.copy()
        raise InputError(f"which: expected 'all', 'train' or 'heldout', got {which!r}")

    def _repr_extra(self) -> dict[str, Any]:
        return {"networks": self.n_networks, "held out": int(self.heldout.sum())}

    def subset(self, which: str) -> NetworkSet:
        """The training or the held-out networks, with every frame of each."""
        keep = np.flatnonzero(self._which(which))
        remap = np.full(self.n_networks, -1)
        remap[keep] = np.arange(len(keep))
        rows = np.flatnonzero(np.isin(self.network, keep))
        return NetworkSet(
            self.positions[rows], self.cell, self.numbers, self.pbc,
            None if self.energy is None else self.energy[rows], dict(self.info),
            network=remap[self.network[rows]], inherent=self.inherent[keep],
            inherent_energy=self.inherent_energy[keep], heldout=self.heldout[keep],
            seeds=self.seeds[keep], family=self.family[keep],
        )  # fmt: skip

    def extra_arrays(self) -> dict[str, np.ndarray]:
        return {"network": self.network, "inherent": self.inherent,
                "inherent_energy": self.inherent_energy, "heldout": self.heldout,
                "seeds": self.seeds, "family": self.family}  # fmt: skip
