"""Plain float64 numpy references for the kernels, written for clarity, not speed."""

import numpy as np


def projection_reference(frac, n_bins, sigma, periodic=True):
    """Eq. (1) of the RePAP poster at bin centres (k + 0.5) / G, rows x0, y0, z0, x1, ..."""
    x = np.asarray(frac, dtype=np.float64)
    n_frames, n_atoms, _ = x.shape
    x = x.reshape(n_frames, 3 * n_atoms)
    if periodic:
        x = x - np.floor(x)
    centres = (np.arange(n_bins) + 0.5) / n_bins
    d = x[..., None] - centres
    if periodic:
        d = d - np.round(d)  # minimum image on the unit circle
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (3,))
    s = np.tile(sigmas, n_atoms)[None, :, None]
    exponent = -(d**2) / (2 * s**2)
    exponent -= exponent.max(axis=-1, keepdims=True)  # avoid 0/0 for very small sigma
    w = np.exp(exponent)
    return w / w.sum(axis=-1, keepdims=True)


def bin_reference(frac, n_bins, periodic=True):
    x = np.asarray(frac, dtype=np.float64).reshape(len(frac), -1)
    if periodic:
        x = x - np.floor(x)
    return np.minimum(np.floor(x * n_bins), n_bins - 1).astype(np.int64) % n_bins
