"""The random baselines of ``repap evaluate``: uniform, random sequential addition with a
minimum distance, and known structures perturbed (defined in
:mod:`repap.data.random_structures`, below every stage that uses them)."""

from repap.data.random_structures import RSA_JAMMING, perturbed, random_min_distance, uniform

__all__ = ["RSA_JAMMING", "perturbed", "random_min_distance", "uniform"]
