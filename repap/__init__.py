"""repap: ensembles of atomic structures with Recurrent Probabilistic Axis Projections.

The public names are imported on first use (PEP 562), so ``import repap`` and the ``repap``
command stay fast: torch and numba load only when a function needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from repap._C import build_info, cuda_available, get_num_threads, set_num_threads

__version__ = "0.1.0"

_LAZY = {  # public name -> module that defines it
    "load_model": "checkpoint",
    "pretrained": "checkpoint",
    "evaluate": "evaluation",
    "energy": "md",
    "simulate": "md",
    "thermalize": "md",
    "ModelConfig": "config",
    "RePAP": "model",
    "bin_index": "projection",
    "project": "projection",
    "rdf": "radial",
    "reference": "references",
    "reference_set": "references",
    "relax": "relaxation",
    "Ensemble": "ensemble",
    "InputError": "errors",
    "Sequences": "sequences",
    "prepare": "sequences",
    "TrainConfig": "config",
    "train": "training",
    "Trajectory": "trajectory",
    "read": "trajectory",
}

__all__ = [  # every name in _LAZY plus the compiled helpers
    "Ensemble",
    "InputError",
    "ModelConfig",
    "RePAP",
    "Sequences",
    "TrainConfig",
    "Trajectory",
    "__version__",
    "bin_index",
    "build_info",
    "cuda_available",
    "energy",
    "evaluate",
    "get_num_threads",
    "load_model",
    "prepare",
    "pretrained",
    "project",
    "rdf",
    "read",
    "reference",
    "reference_set",
    "relax",
    "set_num_threads",
    "simulate",
    "thermalize",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"repap.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    # submodules as attributes, as after `import numpy`: repap.sequences.split(...)
    if not name.startswith("_") and importlib.util.find_spec(f"repap.{name}") is not None:
        return importlib.import_module(f"repap.{name}")
    raise AttributeError(f"module 'repap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and IDEs
    from repap.checkpoint import load_model, pretrained
    from repap.config import ModelConfig, TrainConfig
    from repap.ensemble import Ensemble
    from repap.errors import InputError
    from repap.evaluation import evaluate
    from repap.md import energy, simulate, thermalize
    from repap.model import RePAP
    from repap.projection import bin_index, project
    from repap.radial import rdf
    from repap.references import reference, reference_set
    from repap.relaxation import relax
    from repap.sequences import Sequences, prepare
    from repap.training import train
    from repap.trajectory import Trajectory, read
