"""Generated structures with their per-structure statistics: a Trajectory that remembers how
each structure was drawn (repap.sample, repap generate)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repap.data.trajectory import Trajectory


@dataclass(repr=False)
class Ensemble(Trajectory):
    """Generated structures (a :class:`Trajectory` in the training data's atom order and
    cell) with per-structure statistics: ``index`` (the structure indices present, which key
    their random numbers), ``redrawn`` (atoms redrawn after a clash), ``restarts``; and
    ``failed``, the indices of structures that exhausted their restarts (not in the frames),
    with their own ``failed_redrawn`` and ``failed_restarts``: the work they cost counts too."""

    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    redrawn: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    restarts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    failed_redrawn: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    failed_restarts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def _repr_extra(self) -> dict[str, Any]:
        return {"failed": len(self.failed)}

    def __post_init__(self) -> None:
        if np.shape(self.positions)[0] == 0:  # every structure failed: nothing to validate
            self.positions = np.zeros((0, len(self.numbers), 3))
            self._coerce()
        else:
            super().__post_init__()

    def __getitem__(self, index: int | slice | np.ndarray) -> Any:
        """An int gives one ``ase.Atoms``; a slice or index array an Ensemble of those frames
        with their statistics (``failed`` describes the run, not frames: kept only when
        every frame is)."""
        part = super().__getitem__(index)
        if not isinstance(part, Trajectory):
            return part
        rows = np.arange(len(self))[index]
        whole = len(rows) == len(self) and bool((rows == np.arange(len(self))).all())
        empty = np.zeros(0, np.int64)
        return Ensemble(
            part.positions, part.cell, part.numbers, part.pbc, part.energy, part.info,
            index=self.index[rows], redrawn=self.redrawn[rows], restarts=self.restarts[rows],
            failed=self.failed if whole else empty,
            failed_redrawn=self.failed_redrawn if whole else empty,
            failed_restarts=self.failed_restarts if whole else empty,
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """Counts over every structure requested, the failed ones included."""
        n = len(self) + len(self.failed)
        redrawn = self.redrawn.sum() + self.failed_redrawn.sum()
        return {
            "structures": len(self),
            "failed": len(self.failed),
            "atoms_redrawn_fraction": float(redrawn / max(1, n * self.n_atoms)),
            "restarts": int(self.restarts.sum() + self.failed_restarts.sum()),
            "requested": n,
        }

    @classmethod
    def concat(cls, parts: list[Ensemble]) -> Ensemble:
        first = parts[0]
        return cls(
            np.concatenate([p.positions for p in parts]),
            first.cell, first.numbers, first.pbc, None, dict(first.info),
            index=np.concatenate([p.index for p in parts]),
            redrawn=np.concatenate([p.redrawn for p in parts]),
            restarts=np.concatenate([p.restarts for p in parts]),
            failed=np.concatenate([p.failed for p in parts]),
            failed_redrawn=np.concatenate([p.failed_redrawn for p in parts]),
            failed_restarts=np.concatenate([p.failed_restarts for p in parts]),
        )  # fmt: skip
