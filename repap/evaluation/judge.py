"""An independent energy judge: CHGNet (``pip install 'repap[judge]'``), a universal machine-
learned potential whose wheel carries its pretrained weights (no download at run time).

Energies are per atom relative to diamond Si under the same model (-5.312 eV/atom), so that a
quality claim does not rest on the Stillinger-Weber potential the data came from. Relaxed
30-atom Vink a-Si sits about +0.12 eV/atom above diamond under it; calorimetry puts a-Si
0.058-0.140 eV/atom above crystalline Si.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from typing import Any

import numpy as np

from repap.data.trajectory import Trajectory
from repap.errors import InputError

INSTALL = "the energy judge needs CHGNet: pip install 'repap[judge]' (or pip install chgnet)"


@functools.cache
def _model() -> Any:
    try:
        import torch
        from chgnet.model import CHGNet
    except ImportError:
        raise OSError(INSTALL) from None
    dtype = torch.get_default_dtype()
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its banner
        model = CHGNet.load(verbose=False)
    torch.set_default_dtype(dtype)  # keep the caller's default dtype whatever the loader does
    return model


def energies(traj: Trajectory, batch_size: int = 16) -> np.ndarray:
    """CHGNet potential energy per atom (eV) of every structure."""
    from pymatgen.io.ase import AseAtomsAdaptor

    model = _model()
    structures = [AseAtomsAdaptor.get_structure(atoms) for atoms in traj]
    with warnings.catch_warnings():  # CHGNet's own tensor-conversion warnings, not the caller's
        warnings.simplefilter("ignore", UserWarning)
        out = model.predict_structure(structures, batch_size=batch_size, task="e")
    out = out if isinstance(out, list) else [out]
    return np.array([float(o["e"]) for o in out])


@functools.cache
def diamond_energy(element: str = "Si", a: float = 5.431) -> float:
    """CHGNet energy per atom (eV) of the diamond crystal (Si, a = 5.431 A)."""
    from ase.build import bulk

    return float(energies(Trajectory.from_atoms([bulk(element, "diamond", a=a)]))[0])


def energy_above_diamond(traj: Trajectory) -> np.ndarray:
    """CHGNet energy per atom of each structure minus diamond Si's (eV/atom)."""
    if np.any(traj.numbers != 14):
        raise InputError("judge: energies relative to diamond are defined here for Si only")
    return energies(traj) - diamond_energy()
