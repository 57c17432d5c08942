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


# -- structure references: plain numpy, all pairs, minimum image in a cubic cell -------------
def pair_vectors_cubic(positions: np.ndarray, length: float) -> np.ndarray:
    """(F, N, N, 3) minimum-image vectors r_j - r_i; valid while cutoffs stay below L/2."""
    d = positions[:, None, :, :] - positions[:, :, None, :]
    return d - length * np.round(d / length)


def coordination_cubic(positions: np.ndarray, length: float, cutoff: float) -> np.ndarray:
    """(F, N) neighbour counts within ``cutoff``."""
    r = np.linalg.norm(pair_vectors_cubic(positions, length), axis=-1)
    n = positions.shape[1]
    r[:, np.arange(n), np.arange(n)] = np.inf
    return (r < cutoff).sum(axis=-1)


def bond_angles_cubic(positions: np.ndarray, length: float, cutoff: float) -> np.ndarray:
    """All angles j-i-k (degrees) between pairs of neighbours j < k of each atom i."""
    vec = pair_vectors_cubic(positions, length)
    r = np.linalg.norm(vec, axis=-1)
    n = positions.shape[1]
    r[:, np.arange(n), np.arange(n)] = np.inf
    angles = []
    for f in range(positions.shape[0]):
        for i in range(n):
            nb = np.flatnonzero(r[f, i] < cutoff)
            u = vec[f, i, nb] / r[f, i, nb, None]
            cos = u @ u.T
            j, k = np.triu_indices(len(nb), 1)
            angles.append(np.degrees(np.arccos(np.clip(cos[j, k], -1, 1))))
    return np.concatenate(angles)


def first_peak_cubic(
    positions: np.ndarray, length: float, rmax: float = 4.0, width: float = 0.02
) -> float:
    """Position of the highest histogram bin of pair distances / r^2 (the RDF's first peak)."""
    r = np.linalg.norm(pair_vectors_cubic(positions, length), axis=-1)
    r = r[r > 0]
    edges = np.arange(0.0, rmax + width, width)
    hist, _ = np.histogram(r, edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return float(centres[np.argmax(hist / centres**2)])
