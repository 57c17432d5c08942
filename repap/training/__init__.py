"""Stage 5, training: ``repap.train`` and ``repap train`` (:mod:`.loop`).

``from repap.training import train, TrainConfig`` keeps working (the names of the module this
package replaced), loaded on first use."""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"train": "loop", "TrainConfig": "loop"}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"repap.training.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'repap.training' has no attribute {name!r}")
