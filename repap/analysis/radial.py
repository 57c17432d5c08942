"""Periodic radial distribution function in Numba, batched over frames, any triclinic cell.

Two kernels share one pair rule: a frame loop for many small frames (all pairs, periodic
images enumerated when ``rmax`` exceeds half a cell height) and a cell list for one large frame.
Both are parallel over chunks with one histogram per chunk (a shared histogram would race).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from repap._checks import check_frames, check_positive_int
from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.geometry import cartesian, cell_heights, image_reach, minimum_image

_CELL_LIST_MIN_ATOMS = 2000  # below this, all pairs beat building a cell list


def rdf(
    positions: np.ndarray | Trajectory,
    cell: np.ndarray | None = None,
    rmax: float = 4.2,
    nbins: int = 100,
    pbc: bool | np.ndarray = True,
    pairs: tuple[int, int] | None = None,
    numbers: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Radial distribution function g(r), averaged over frames. Returns (r, g), r = bin centres.

    positions: (N, 3) or (F, N, 3) Angstrom, or a Trajectory (then cell, pbc and numbers come
    from it). cell: (3, 3) or (F, 3, 3), rows are lattice vectors, any shape. pairs: (Za, Zb)
    for the partial RDF of Zb around Za (needs ``numbers``).

    Bins are ``linspace(0, rmax, nbins + 1)``; a distance d goes to bin ceil(d / dr) - 1, i.e.
    intervals (lo, hi], zero distances are dropped. Per frame, g_k = H_k / (n_a rho_b V_k) with
    H_k the ordered pair count (each pair counted from both atoms), n_a the number of centre
    atoms, rho_b = n_b / cell volume and V_k = 4 pi / 3 (hi^3 - lo^3); frames are averaged.
    This is ASE's ``get_rdf`` (same edges, same g; also for partial RDFs), and freud's
    ``density.RDF`` with ``normalization_mode="exact"`` up to its [lo, hi) bin intervals.
    Unlike both, ``rmax`` may exceed half the smallest cell height: periodic images are summed
    (a pair then counts once per image within rmax), which small cells such as 30-atom a-Si need.
    """
    if isinstance(positions, Trajectory):
        traj = positions
        positions, cell, pbc, numbers = traj.positions, traj.cell, traj.pbc, traj.numbers
    pos, cells, periodic = check_frames(positions, cell, pbc)
    n_frames, n_atoms = pos.shape[:2]
    fixed = cells.ndim == 2  # linear algebra once, then broadcast views (cheap for 40,000 frames)
    one = cells[None] if fixed else cells
    volumes = np.broadcast_to(np.abs(np.linalg.det(one)), (n_frames,))
    cells = np.broadcast_to(cells, (n_frames, 3, 3))
    if not (isinstance(rmax, int | float) and math.isfinite(rmax) and rmax > 0):
        raise InputError(f"rmax: expected a positive number, got {rmax!r}")
    check_positive_int(nbins, "nbins")
    centre, neighbour = _species_masks(pairs, numbers, n_atoms)
    n_a, n_b = int(centre.sum()), int(neighbour.sum())

    inv = np.linalg.inv(one)
    heights = np.broadcast_to(cell_heights(one), (n_frames, 3))  # face gaps
    reach = image_reach(one, periodic, rmax) * np.ones((n_frames, 1), np.int64)
    dr = float(rmax / nbins)  # as ASE computes it, so that bin edges agree to the last bit
    frac = pos @ inv[0] if fixed else pos @ inv
    cells = np.ascontiguousarray(cells)
    weights = volumes / max(n_a * n_b, 1)  # per-frame normalisation folded into the counts
    threads = numba.get_num_threads()
    use_cells = n_frames == 1 and n_atoms >= _CELL_LIST_MIN_ATOMS and (heights[0] >= 3 * rmax).all()
    if use_cells:
        hist = _hist_cell_list(
            frac[0],
            cells[0],
            periodic,
            rmax,
            dr,
            nbins,
            centre,
            neighbour,
            np.floor(heights[0] / rmax).astype(np.int64),
            threads,
        )
        hist *= weights[0]
    elif pairs is None and not reach.any():
        # the common case (small cells, rmax below half of them, one species): a tight loop
        hist = _hist_frames_min_image(frac, cells, periodic, rmax, dr, nbins, weights, threads)
    else:
        hist = _hist_frames(
            frac, cells, periodic, reach, rmax, dr, nbins, centre, neighbour, weights, threads
        )
    edges = np.linspace(0.0, rmax, nbins + 1)
    shell = 4.0 * math.pi * dr * (edges[:-1] ** 2 + edges[:-1] * dr + dr**2 / 3.0)  # as ASE
    g = hist / (n_frames * shell) if n_a and n_b else np.zeros(nbins)
    return 0.5 * (edges[1:] + edges[:-1]), g


def _species_masks(pairs, numbers, n_atoms):
    if pairs is None:
        ones = np.ones(n_atoms, dtype=np.int64)
        return ones, ones
    if numbers is None:
        raise InputError("pairs: partial RDFs need numbers= (atomic numbers of the atoms)")
    numbers = np.asarray(numbers)
    if numbers.shape != (n_atoms,):
        raise InputError(f"numbers: expected {n_atoms} atomic numbers, got {numbers.shape}")
    if len(pairs) != 2:
        raise InputError(f"pairs: expected two atomic numbers, got {pairs!r}")
    return (numbers == pairs[0]).astype(np.int64), (numbers == pairs[1]).astype(np.int64)


@numba.njit(cache=True, inline="always")
def _bin(d2, rmax, dr):
    """ASE's rule: bin ceil(d / dr) - 1 for 0 < d <= rmax, else -1."""
    if d2 == 0.0 or d2 > rmax * rmax * (1.0 + 1e-12):
        return -1
    return math.ceil(math.sqrt(d2) / dr) - 1


@numba.njit(cache=True, parallel=True)
def _hist_frames(
    frac, cells, periodic, reach, rmax, dr, nbins, centre, neighbour, weights, threads
):
    n_frames, n_atoms = frac.shape[0], frac.shape[1]
    chunks = min(threads, n_frames)
    local = np.zeros((chunks, nbins))
    for c in numba.prange(chunks):
        for f in range(c * n_frames // chunks, (c + 1) * n_frames // chunks):
            h = cells[f]
            w = weights[f]
            ra, rb, rc = reach[f, 0], reach[f, 1], reach[f, 2]
            for i in range(n_atoms):
                for j in range(i, n_atoms):
                    # ordered-pair weight: i as centre with j around it, and the reverse
                    pair_w = centre[i] * neighbour[j] + (centre[j] * neighbour[i] if j != i else 0)
                    if pair_w == 0:
                        continue
                    s0 = frac[f, j, 0] - frac[f, i, 0]
                    s1 = frac[f, j, 1] - frac[f, i, 1]
                    s2 = frac[f, j, 2] - frac[f, i, 2]
                    s0, s1, s2 = minimum_image(s0, s1, s2, periodic)
                    for a in range(-ra, ra + 1):
                        for b in range(-rb, rb + 1):
                            for e in range(-rc, rc + 1):
                                t0, t1, t2 = s0 + a, s1 + b, s2 + e
                                x, y, z = cartesian(t0, t1, t2, h)
                                k = _bin(x * x + y * y + z * z, rmax, dr)
                                if 0 <= k < nbins:  # i == j: an atom and its own images
                                    local[c, k] += w * pair_w
    return local.sum(axis=0)


@numba.njit(cache=True, parallel=True, fastmath=False)
def _hist_frames_min_image(frac, cells, periodic, rmax, dr, nbins, weights, threads):
    """_hist_frames for one species and no images: each unordered pair once, weight 2."""
    n_frames, n_atoms = frac.shape[0], frac.shape[1]
    chunks = min(threads, n_frames)
    local = np.zeros((chunks, nbins + 1))
    r2max = rmax * rmax * (1.0 + 1e-12)
    p0, p1, p2 = (
        1.0 if periodic[0] else 0.0,
        1.0 if periodic[1] else 0.0,
        1.0 if periodic[2] else 0.0,
    )
    for c in numba.prange(chunks):
        hist = local[c]
        for f in range(c * n_frames // chunks, (c + 1) * n_frames // chunks):
            h = cells[f]
            w = 2.0 * weights[f]
            h00, h01, h02 = h[0, 0], h[0, 1], h[0, 2]
            h10, h11, h12 = h[1, 0], h[1, 1], h[1, 2]
            h20, h21, h22 = h[2, 0], h[2, 1], h[2, 2]
            for i in range(n_atoms - 1):
                a0, a1, a2 = frac[f, i, 0], frac[f, i, 1], frac[f, i, 2]
                for j in range(i + 1, n_atoms):
                    s0 = frac[f, j, 0] - a0
                    s1 = frac[f, j, 1] - a1
                    s2 = frac[f, j, 2] - a2
                    s0 -= p0 * np.floor(s0 + 0.5)
                    s1 -= p1 * np.floor(s1 + 0.5)
                    s2 -= p2 * np.floor(s2 + 0.5)
                    x = s0 * h00 + s1 * h10 + s2 * h20
                    y = s0 * h01 + s1 * h11 + s2 * h21
                    z = s0 * h02 + s1 * h12 + s2 * h22
                    d2 = x * x + y * y + z * z
                    if d2 <= r2max and d2 > 0.0:
                        k = math.ceil(math.sqrt(d2) / dr) - 1
                        if k < nbins:
                            hist[k] += w
    return local[:, :nbins].sum(axis=0)


@numba.njit(cache=True)
def _build_cells(frac, periodic, grid):
    """Atoms sorted by cell: (start offsets, atom indices, wrapped fractional coordinates)."""
    n = frac.shape[0]
    wrapped = frac.copy()
    index = np.empty(n, dtype=np.int64)
    total = grid[0] * grid[1] * grid[2]
    counts = np.zeros(total + 1, dtype=np.int64)
    for i in range(n):
        cell_ijk = np.empty(3, dtype=np.int64)
        for d in range(3):
            s = wrapped[i, d]
            if periodic[d]:
                s -= np.floor(s)
                wrapped[i, d] = s
            k = int(np.floor(s * grid[d]))
            cell_ijk[d] = min(max(k, 0), grid[d] - 1)
        index[i] = (cell_ijk[0] * grid[1] + cell_ijk[1]) * grid[2] + cell_ijk[2]
        counts[index[i] + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[index[i]]] = i
        fill[index[i]] += 1
    return starts, order, wrapped


@numba.njit(cache=True, parallel=True)
def _hist_cell_list(frac, h, periodic, rmax, dr, nbins, centre, neighbour, grid, threads):
    starts, order, s = _build_cells(frac, periodic, grid)
    n = frac.shape[0]
    gx, gy, gz = grid[0], grid[1], grid[2]
    chunks = threads * 4
    local = np.zeros((chunks, nbins))
    for c in numba.prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            if centre[i] == 0:
                continue
            cx = min(max(int(np.floor(s[i, 0] * gx)), 0), gx - 1)
            cy = min(max(int(np.floor(s[i, 1] * gy)), 0), gy - 1)
            cz = min(max(int(np.floor(s[i, 2] * gz)), 0), gz - 1)
            for dx in range(-1, 2):
                nx = cx + dx
                if nx < 0 or nx >= gx:
                    if not periodic[0]:
                        continue
                    nx %= gx
                for dy in range(-1, 2):
                    ny = cy + dy
                    if ny < 0 or ny >= gy:
                        if not periodic[1]:
                            continue
                        ny %= gy
                    for dz in range(-1, 2):
                        nz = cz + dz
                        if nz < 0 or nz >= gz:
                            if not periodic[2]:
                                continue
                            nz %= gz
                        cell_id = (nx * gy + ny) * gz + nz
                        for p in range(starts[cell_id], starts[cell_id + 1]):
                            j = order[p]
                            if j == i or neighbour[j] == 0:
                                continue
                            t0 = s[j, 0] - s[i, 0]
                            t1 = s[j, 1] - s[i, 1]
                            t2 = s[j, 2] - s[i, 2]
                            t0, t1, t2 = minimum_image(t0, t1, t2, periodic)
                            x, y, z = cartesian(t0, t1, t2, h)
                            k = _bin(x * x + y * y + z * z, rmax, dr)
                            if 0 <= k < nbins:
                                local[c, k] += 1.0
    return local.sum(axis=0)
