"""Stage 1, data: atoms and their sequences. :class:`~repap.data.trajectory.Trajectory` (frames
of one system) and :class:`~repap.data.trajectory.NetworkSet` (frames of many networks), the
generated :class:`~repap.data.ensemble.Ensemble`, reading and writing them (any ASE format or
repap's ``.npz``), the coordinate sequences a model trains on, their augmentations, and the
shipped reference sets. The files of this folder are the shipped data and models.
"""

from pathlib import Path

DATA_DIR = Path(__file__).parent  # the shipped .npz sets and models/
