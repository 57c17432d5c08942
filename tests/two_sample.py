"""Two-sample tests of generated ensembles: do two ensembles come from one distribution?

Used where two generation paths must agree in distribution but not structure by structure
(bfloat16 against float32 products on CUDA). Independent of repap's own code: numpy and scipy
over the structures' positions.

- Per coordinate: the bin (of G along its lattice vector) of each atom's fractional coordinate
  on each axis, one multinomial count per structure: a chi-square two-sample test per
  coordinate (3N of them), Bonferroni over the coordinates.
- Pair distances: each structure's histogram of pair distances (minimum image) up to ``rmax``;
  the structures are the independent units, so each bin's mean count is compared with
  Welch's z over structures (a pair count is not independent of the structure's other pairs),
  Bonferroni over the bins.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def coordinate_bins(positions: np.ndarray, cell: np.ndarray, n_bins: int) -> np.ndarray:
    """(S, 3N) bin of every coordinate, in fractional units along the lattice vectors."""
    frac = positions @ np.linalg.inv(cell)
    frac -= np.floor(frac)
    return np.minimum((frac * n_bins).astype(np.int64), n_bins - 1).reshape(len(positions), -1)


def chi2_two_sample(a: np.ndarray, b: np.ndarray, n_bins: int) -> float:
    """p-value that integer samples a and b (values in [0, n_bins)) share one multinomial."""
    r = np.bincount(a, minlength=n_bins).astype(np.float64)
    s = np.bincount(b, minlength=n_bins).astype(np.float64)
    used = (r + s) > 0
    r, s = r[used], s[used]
    if len(r) < 2:
        return 1.0
    k1, k2 = np.sqrt(s.sum() / r.sum()), np.sqrt(r.sum() / s.sum())
    statistic = ((k1 * r - k2 * s) ** 2 / (r + s)).sum()
    return float(stats.chi2.sf(statistic, len(r) - 1))


def pair_histograms(positions: np.ndarray, cell: np.ndarray, rmax: float, n_bins: int,
                    chunk: int = 2048) -> np.ndarray:  # fmt: skip
    """(S, n_bins) per-structure histogram of pair distances (minimum image) over [0, rmax)."""
    inv = np.linalg.inv(cell)
    n_atoms = positions.shape[1]
    i, j = np.triu_indices(n_atoms, 1)
    out = np.empty((len(positions), n_bins), dtype=np.int64)
    edges = np.linspace(0.0, rmax, n_bins + 1)
    for lo in range(0, len(positions), chunk):
        p = positions[lo : lo + chunk] @ inv
        d = p[:, i] - p[:, j]
        d -= np.round(d)
        r = np.linalg.norm(d @ cell, axis=-1)
        idx = np.searchsorted(edges, r, side="right") - 1
        idx = np.where(r < rmax, idx, n_bins)  # one bin past the end collects the rest
        flat = (np.arange(len(p))[:, None] * (n_bins + 1) + idx).ravel()
        counts = np.bincount(flat, minlength=len(p) * (n_bins + 1)).reshape(len(p), -1)
        out[lo : lo + chunk] = counts[:, :n_bins]
    return out


def welch_p_values(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per column, the two-sided p-value of equal means (Welch's z, large samples)."""
    var = x.var(0, ddof=1) / len(x) + y.var(0, ddof=1) / len(y)
    diff = x.mean(0) - y.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, np.abs(diff) / np.sqrt(var), np.where(diff == 0, 0.0, np.inf))
    return 2 * stats.norm.sf(z)


def compare(a, b, cell: np.ndarray, n_bins: int, rmax: float) -> dict[str, float]:
    """Smallest p-values, each Bonferroni-corrected (times the number of tests, at most 1),
    of ensembles a and b (positions (S, N, 3), same atom order and cell): per coordinate
    bins, and the per-structure pair-distance histogram (bins of 0.1 A up to rmax)."""
    ba, bb = coordinate_bins(a, cell, n_bins), coordinate_bins(b, cell, n_bins)
    p_coord = [chi2_two_sample(ba[:, k], bb[:, k], n_bins) for k in range(ba.shape[1])]
    n_r = round(rmax / 0.1)
    p_pair = welch_p_values(pair_histograms(a, cell, rmax, n_r),
                            pair_histograms(b, cell, rmax, n_r))  # fmt: skip
    return {
        "coordinates": min(1.0, min(p_coord) * len(p_coord)),
        "pairs": min(1.0, float(p_pair.min()) * len(p_pair)),
    }
