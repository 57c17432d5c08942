"""The built-in amorphous-silicon reference data, shipped with the package (no LAMMPS needed).

Both files were made by ``repap simulate`` (the exact commands are in docs/guide.md), stored with
``--precision 0.001``: positions to 0.001 A, far below the thermal motion (~0.1 A) and the grid
spacing (~0.17 A at G = 50). Energies are the MD ones, in full precision.
"""

from __future__ import annotations

from repap.data import DATA_DIR
from repap.data.trajectory import Trajectory, read
from repap.errors import InputError

DATA = DATA_DIR
FILES = {False: "a-si-30-vink.npz", True: "a-si-30-vink-heldout.npz"}
NETWORK_SETS = {64: "a-si-64-networks.npz", 216: "a-si-216-networks.npz"}  # by atoms


def reference(heldout: bool = False) -> Trajectory:
    """The shipped a-Si trajectory: 30 atoms at 2.33 g/cm3, Vink's Stillinger-Weber, 300 K.

    ``heldout=False``: the training run (seed 1), 40,000 frames 10 fs apart.
    ``heldout=True``: a second melt-quench (seed 2), 5,000 frames. It ends in the SAME network
    as the training run (relaxed, the two match: docs/guide.md), so it tells whether structures are
    sound a-Si, not whether a model generalises to unseen networks.
    """
    return read(DATA / FILES[bool(heldout)])


def check_set_atoms(atoms: int) -> None:
    """Refuse an atom count no shipped network set has."""
    if atoms not in NETWORK_SETS:
        raise InputError(f"atoms: expected one of {tuple(NETWORK_SETS)}, got {atoms!r}")


def reference_set(which: str = "all", atoms: int = 64) -> Trajectory:
    """A shipped multi-network set (a :class:`repap.sim.reference_sets.NetworkSet`) of a-Si, one
    melt-quench (1 ns) per distinct network, 200 frames at 300 K each, every network's
    inherent structure; ``which``: "all", "train" or "heldout" (every fifth seed held out);
    ``atoms``: 64 (131 networks) or 216 (38 networks). Built by ``repap dataset`` (docs/guide.md,
    "Sets of many networks")."""
    check_set_atoms(atoms)
    path = DATA / NETWORK_SETS[atoms]
    if not path.is_file():
        raise OSError(
            f"{path}: not shipped with this build; make it with repap dataset (docs/guide.md)"
        )
    nets = read(path)
    return nets if which == "all" else nets.subset(which)  # "all": no copy
