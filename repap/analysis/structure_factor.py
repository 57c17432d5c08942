"""The static structure factor S(Q) of an ensemble, for comparison with diffraction.

S(Q) = 1 + 4 pi rho int_0^rmax r^2 (g(r) - 1) sin(Qr) / (Qr) W(r) dr, from the ensemble's g(r)
(``repap.rdf``, periodic images summed, so rmax may exceed the cell) with Lorch's window
W(r) = sin(pi r / rmax) / (pi r / rmax), which damps the ripples of the cut at rmax at the
price of a resolution of about 2 pi / rmax in Q. For one element, as measured by X-ray or
neutron diffraction (Laaziri 1999 for a-Si: first peak near 2.0 1/A).
"""

from __future__ import annotations

import numpy as np

from repap.analysis.radial import rdf
from repap.data.trajectory import Trajectory
from repap.errors import InputError


def structure_factor(
    traj: Trajectory,
    q: np.ndarray | None = None,
    rmax: float = 10.0,
    dr: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """(Q in 1/A, S(Q)) of the frames of ``traj`` (one element, periodic). ``q`` defaults to
    0.5 .. 15 1/A in 0.05 steps."""
    if not traj.pbc.all():
        raise InputError("traj: S(Q) from g(r) needs a cell periodic in x, y and z")
    if not (np.isfinite(rmax) and rmax > 0 and np.isfinite(dr) and 0 < dr < rmax):
        raise InputError(f"rmax, dr: expected 0 < dr < rmax, got {rmax}, {dr}")
    q = np.arange(0.5, 15.0 + 1e-9, 0.05) if q is None else np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or not (q > 0).all():
        raise InputError("q: expected a 1-D array of positive wave numbers (1/A)")
    nbins = round(rmax / dr)
    r, g = rdf(traj, rmax=rmax, nbins=nbins)
    volume = np.abs(np.linalg.det(traj.frame_cells())).mean()
    rho = traj.n_atoms / volume
    x = np.pi * r / rmax
    window = np.sin(x) / x
    qr = np.outer(q, r)
    integrand = r**2 * (g - 1.0) * window * np.sinc(qr / np.pi)  # np.sinc(x) = sin(pi x)/(pi x)
    return q, 1.0 + 4.0 * np.pi * rho * integrand.sum(axis=1) * (rmax / nbins)
