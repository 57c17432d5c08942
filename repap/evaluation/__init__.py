"""Stage 7, evaluation: reports against references. Snapshot ensembles (RDF, Err_RDF,
coordination, angles: :mod:`.snapshots`), networks (relaxed, grouped, novelty, uniqueness,
rings, S(Q), the CHGNet judge: :mod:`.network_report`), and the baselines they are set beside.

``from repap.evaluation import evaluate`` keeps working (the name of the module this package
replaced), loaded on first use."""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        return importlib.import_module("repap.evaluation.snapshots").evaluate
    raise AttributeError(f"module 'repap.evaluation' has no attribute {name!r}")
