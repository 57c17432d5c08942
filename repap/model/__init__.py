"""Stage 4, the model: its configuration, the RePAP LSTM with its one-coordinate step
(:mod:`.recurrent`), the projection densities and their torch ops, checkpoints with their
metadata, and the batched sampler that draws structures from a model (:mod:`.sampling`).

``from repap.model import RePAP, Step, ModelConfig`` keeps working (the names of the module
this package replaced), loaded on first use."""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"RePAP": "recurrent", "Step": "recurrent", "ModelConfig": "config"}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(f"repap.model.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'repap.model' has no attribute {name!r}")
