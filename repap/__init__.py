"""repap: ensembles of atomic structures with Recurrent Probabilistic Axis Projections."""

from repap._C import build_info, cuda_available, get_num_threads, set_num_threads
from repap.checkpoint import load_model, pretrained
from repap.evaluate import evaluate
from repap.md import energy, simulate
from repap.model import ModelConfig, RePAP
from repap.projection import bin_index, project
from repap.radial import rdf
from repap.reference import reference
from repap.sequences import Sequences, prepare
from repap.train import TrainConfig, train
from repap.trajectory import Trajectory, read

__version__ = "0.1.0"

__all__ = [
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
    "set_num_threads",
    "simulate",
    "train",
]
