"""The contract between a trained model and everything that generates from it: what the
checkpoint's JSON records beside the weights, typed, versioned and checked.

``model.meta`` stays a plain dict (JSON as written); :class:`ModelMeta` reads it, checks every
field against the model's shape (atoms, bins) and is the one place that derives the source
atom order's inverse. :func:`repap.model.checkpoint.read` checks each file through it, so a damaged
file or one from another repap is refused with one line naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repap.errors import InputError

META_VERSION = 1  # of the fields below; a checkpoint without "meta_version" predates it: 1


@dataclass(frozen=True)
class ModelMeta:
    """What a trained model needs to generate, in sequence order: sequence position k holds
    atom ``order[k]`` of the training data's atom order (``numbers`` are in sequence order)."""

    n_bins: int
    sigma_angstrom: float
    sigma_frac: tuple[float, float, float]
    cell: np.ndarray  # (3, 3), rows are the lattice vectors, Angstrom
    pbc: np.ndarray  # (3,) bool
    numbers: np.ndarray  # (N,) atomic numbers in sequence order
    order: np.ndarray  # (N,) permutation
    first_counts: np.ndarray  # (G,) how often the first coordinate fell in each bin
    data: dict[str, Any] = field(default_factory=dict)  # what it was trained on
    versions: dict[str, Any] = field(default_factory=dict)

    @property
    def inverse(self) -> np.ndarray:
        """Sequence position of each source atom: ``frac[:, inverse]`` is in source order."""
        return np.argsort(self.order)

    @classmethod
    def from_dict(cls, meta: dict[str, Any], n_atoms: int, n_bins: int) -> ModelMeta:
        """The checked metadata of a model of ``n_atoms`` atoms on ``n_bins`` bins; one-line
        InputError naming the field for anything missing, malformed or inconsistent."""
        version = meta.get("meta_version", 1)
        if version != META_VERSION:
            raise InputError(
                f"metadata: version {version!r}, this repap reads version {META_VERSION} "
                "(made by another repap?)"
            )

        def get(name: str) -> Any:
            if name not in meta:
                raise InputError(f"metadata: {name}: missing (not a trained model's?)")
            return meta[name]

        def array(name: str, value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            try:
                out = np.asarray(value, dtype=dtype)
            except (TypeError, ValueError):
                raise InputError(f"metadata: {name}: not numbers") from None
            if out.shape != shape:
                raise InputError(f"metadata: {name}: expected shape {shape}, got {out.shape}")
            if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
                raise InputError(f"metadata: {name}: not finite")
            return out

        grid = get("grid")
        if not isinstance(grid, dict) or grid.get("n_bins") != n_bins:
            raise InputError(f"metadata: grid: expected {n_bins} bins (the model's), got {grid!r}")
        cell = array("cell", get("cell"), (3, 3), np.float64)
        if abs(np.linalg.det(cell)) < 1e-9:
            raise InputError("metadata: cell: singular")
        order = array("order", get("order"), (n_atoms,), np.int64)
        if not np.array_equal(np.sort(order), np.arange(n_atoms)):
            raise InputError(f"metadata: order: not a permutation of {n_atoms} atoms")
        first = get("first_coordinate")
        counts = first.get("counts") if isinstance(first, dict) else None
        counts = array("first_coordinate.counts", counts, (n_bins,), np.float64)
        if counts.min() < 0 or counts.sum() <= 0:
            raise InputError("metadata: first_coordinate.counts: no positive count")
        sigma_frac = array("sigma_frac", get("sigma_frac"), (3,), np.float64)
        sigma = float(array("sigma_angstrom", get("sigma_angstrom"), (), np.float64))
        if sigma <= 0 or sigma_frac.min() <= 0:
            raise InputError("metadata: sigma: expected positive widths")
        return cls(
            n_bins=n_bins, sigma_angstrom=sigma,
            sigma_frac=tuple(float(s) for s in sigma_frac), cell=cell,
            pbc=array("pbc", get("pbc"), (3,), bool),
            numbers=array("numbers", get("numbers"), (n_atoms,), np.int64), order=order,
            first_counts=counts, data=dict(meta.get("data", {})),
            versions=dict(meta.get("versions", {})),
        )  # fmt: skip
