"""repap: ensembles of atomic structures with Recurrent Probabilistic Axis Projections."""

from repap._C import build_info, cuda_available, get_num_threads, set_num_threads
from repap.projection import bin_index, project

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "bin_index",
    "build_info",
    "cuda_available",
    "get_num_threads",
    "project",
    "set_num_threads",
]
