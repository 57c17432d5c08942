"""repap: ensembles of atomic structures with Recurrent Probabilistic Axis Projections.

The public names are imported on first use (PEP 562), so ``import repap`` and the ``repap``
command stay fast: torch and numba load only when a function needs them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import TYPE_CHECKING, Any

from repap._C import build_info, cuda_available, get_num_threads, set_num_threads
from repap._version import __version__

_LAZY = {  # public name -> module that defines it
    "load_model": "model.checkpoint",
    "pretrained": "model.checkpoint",
    "evaluate": "evaluation.snapshots",
    "energy": "sim.md",
    "simulate": "sim.md",
    "thermalize": "sim.md",
    "ModelConfig": "model.config",
    "RePAP": "model.recurrent",
    "bin_index": "model.projection",
    "project": "model.projection",
    "rdf": "analysis.radial",
    "reference": "data.references",
    "reference_set": "data.references",
    "relax": "sim.relaxation",
    "Ensemble": "data.ensemble",
    "InputError": "errors",
    "Sequences": "data.sequences",
    "prepare": "data.sequences",
    "TrainConfig": "model.config",
    "train": "training.loop",
    "Trajectory": "data.trajectory",
    "read": "data.trajectory",
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


# Modules that moved when the package was cut into stages (CHANGELOG.md, 0.2.0): the old
# dotted names still import, as the same module object, with one DeprecationWarning each.
# repap.model, repap.training and repap.evaluation are packages now and keep their names.
_MOVED = {
    "_periodic": "geometry",
    "parts": "jobs",
    "trajectory": "data.trajectory",
    "ensemble": "data.ensemble",
    "sequences": "data.sequences",
    "augment": "data.augment",
    "references": "data.references",
    "radial": "analysis.radial",
    "metrics": "analysis.metrics",
    "rings": "analysis.rings",
    "structure_factor": "analysis.structure_factor",
    "networks": "analysis.networks",
    "md": "sim.md",
    "relaxation": "sim.relaxation",
    "dataset": "sim.reference_sets",
    "config": "model.config",
    "lstm": "model.lstm",
    "ops": "model.projection_ops",
    "projection": "model.projection",
    "checkpoint": "model.checkpoint",
    "metadata": "model.metadata",
    "sampling": "model.sampling",
    "generate": "generation.chunked",
    "rebuild": "generation.rebuild",
    "site_fill": "generation.site_fill",
    "network_eval": "evaluation.network_report",
    "baselines": "evaluation.baselines",
    "judge": "evaluation.judge",
    "demo": "workflows.demo",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``repap.OLD`` as the module now at ``repap.NEW`` (the same object)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        old = fullname.partition("repap.")[2] if fullname.startswith("repap.") else ""
        if old in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: Any) -> Any:
        new = f"repap.{_MOVED[spec.name[len('repap.') :]]}"
        warnings.warn(f"{spec.name} is now {new}; the old name will be removed in a later "
                      "release", DeprecationWarning, stacklevel=2)  # fmt: skip
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # the import system sets ours on it; put it back
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"repap.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    # submodules as attributes, as after `import numpy`: repap.data.sequences.split(...)
    if not name.startswith("_") and importlib.util.find_spec(f"repap.{name}") is not None:
        return importlib.import_module(f"repap.{name}")
    raise AttributeError(f"module 'repap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and IDEs
    from repap.analysis.radial import rdf
    from repap.data.ensemble import Ensemble
    from repap.data.references import reference, reference_set
    from repap.data.sequences import Sequences, prepare
    from repap.data.trajectory import Trajectory, read
    from repap.errors import InputError
    from repap.evaluation.snapshots import evaluate
    from repap.model.checkpoint import load_model, pretrained
    from repap.model.config import ModelConfig, TrainConfig
    from repap.model.projection import bin_index, project
    from repap.model.recurrent import RePAP
    from repap.sim.md import energy, simulate, thermalize
    from repap.sim.relaxation import relax
    from repap.training.loop import train
