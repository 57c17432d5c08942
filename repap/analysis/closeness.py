"""Closeness of networks: how much of one network lies on another, aligned.

Identity (:mod:`repap.analysis.networks`) says whether two inherent structures are the same
network; it calls a network with one bond switched "new". Closeness says how much of it is
old: the largest fraction of a network's atoms that lie within ``radius`` (0.6 A) of a
reference network's atoms, over every symmetry of the cell (the 48 of a cube), every
translation and every relabelling of the atoms, and the share of the reference's bonds whose
two atoms are matched and still bonded. A translated, rotated, relabelled copy scores 1;
independent melt-quench networks of 216 atoms score about 0.2, random packings about 0.17.

How the alignment is found, per symmetry R and reference B: every difference b_j - R a_i
(N^2 vectors, periodic) votes into a grid of bins at least ``radius`` wide; the atoms matched
by a translation t all vote within one bin of t, so the largest 3 x 3 x 3 box sum bounds the
matches of any translation from above. The best boxes are refined (nearest atom of B within
``radius`` for each atom of A, the translation moved by the mean offset, three times) and the
count kept. Boxes that cannot beat the best count found are not refined. The search is exact
up to that refinement, which can stop short where a box holds two translations' votes.

Cells must be orthorhombic (a diagonal cell matrix, periodic on all axes): the symmetries are
the signed permutations of the axes that keep the cell (48 for a cube, 8 for three distinct
lengths), applied in fractional coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import permutations, product
from typing import Any

import numba
import numpy as np

from repap.analysis.metrics import CUTOFF
from repap.analysis.networks import distance, sorted_pair_distances
from repap.data.trajectory import Trajectory
from repap.errors import InputError

RADIUS = 0.6  # A: an atom within it of a reference atom is "the same atom" (bonds are 2.35)
CLOSE = 0.9  # matched share at which a network counts as a near-copy of the reference one
_SLOTS = 4  # atoms a lookup bin can hold (bins are under 0.8 A: one atom in a sound structure)


@dataclass
class Closeness:
    """Per network: ``nearest`` reference network (index, -1 if none compared), ``atoms``
    the share of its atoms matched within ``radius``, ``bonds`` the share of that reference
    network's bonds kept (both atoms matched and still bonded), ``offset`` the median
    distance of matched atoms (A), ``symmetry`` the index of the cell symmetry used."""

    nearest: np.ndarray
    atoms: np.ndarray
    bonds: np.ndarray
    offset: np.ndarray
    symmetry: np.ndarray
    radius: float

    def __len__(self) -> int:
        return len(self.nearest)

    def __repr__(self) -> str:  # one line, not the arrays
        return (f"Closeness({len(self)} networks, atoms on the nearest median "
                f"{np.median(self.atoms) if len(self) else float('nan'):.3f}, radius "
                f"{self.radius:g} A)")  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """Median matched atoms and bonds kept, and the share of near-copies (>= CLOSE)."""
        if not len(self):
            return {"networks": 0}
        return {
            "networks": len(self),
            "atoms_median": float(np.median(self.atoms)),
            "atoms_mean": float(np.mean(self.atoms)),
            "share_close": float(np.mean(self.atoms >= CLOSE)),
            "bonds_kept_median": float(np.median(self.bonds)),
            "radius_A": self.radius,
        }


def cell_symmetries(cell: np.ndarray) -> np.ndarray:
    """Signed permutation matrices (K, 3, 3) mapping the orthorhombic ``cell`` onto itself,
    identity first: R acts on fractional coordinates as s -> s @ R.T."""
    lengths = np.diag(cell)
    ops = []
    for perm in permutations(range(3)):
        if not np.allclose(lengths[list(perm)], lengths, rtol=1e-9, atol=1e-9):
            continue
        for signs in product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            m[np.arange(3), perm] = signs
            ops.append(m)
    ops.sort(key=lambda m: (not np.array_equal(m, np.eye(3, dtype=np.int64)),))
    return np.asarray(ops, dtype=np.float64)


def _frames(traj: Trajectory | np.ndarray, cell: np.ndarray | None, name: str):
    if isinstance(traj, Trajectory):
        if not traj.pbc.all():
            raise InputError(f"{name}: closeness needs a cell periodic on all three axes")
        cells = traj.frame_cells()
        if not np.allclose(cells, cells[0]):
            raise InputError(f"{name}: closeness needs one cell for every structure")
        return np.asarray(traj.positions, dtype=np.float64), np.asarray(cells[0], float)
    pos = np.asarray(traj, dtype=np.float64)
    if pos.ndim == 2:
        pos = pos[None]
    if pos.ndim != 3 or pos.shape[2] != 3 or cell is None:
        raise InputError(f"{name}: expected positions (F, N, 3) with a cell, or a Trajectory")
    return pos, np.asarray(cell, dtype=np.float64)


def closeness(
    networks: Trajectory | np.ndarray,
    reference: Trajectory | np.ndarray,
    *,
    cell: np.ndarray | None = None,
    radius: float = RADIUS,
    skip: np.ndarray | None = None,
    cutoff: float = CUTOFF,
) -> Closeness:
    """Closeness of each of ``networks`` to its nearest of ``reference`` (inherent structures
    of one orthorhombic cell; see the module doc). ``skip[k]``: a reference index network k is
    not compared with (-1: none), for a set against itself (``skip=np.arange(n)``)."""
    pos_a, cell_a = _frames(networks, cell, "networks")
    pos_b, cell_b = _frames(reference, cell, "reference")
    lengths, syms, vote, look = _setup(pos_a, cell_a, pos_b, cell_b, radius)
    n_a = len(pos_a)
    skip = np.full(n_a, -1, np.int64) if skip is None else np.asarray(skip, np.int64)
    if skip.shape != (n_a,):
        raise InputError(f"skip: expected one index per network ({n_a}), got {skip.shape}")
    frac_a = np.mod(pos_a / lengths, 1.0)
    frac_b = np.mod(pos_b / lengths, 1.0)
    if not len(pos_b) or not n_a:
        empty = np.zeros(n_a)
        return Closeness(np.full(n_a, -1), empty, empty.copy(), empty.copy(),
                         np.zeros(n_a, np.int64), float(radius))  # fmt: skip
    # nearest by fingerprint first: a near-copy found early spares refining the rest
    prints_a = sorted_pair_distances(pos_a, lengths)
    prints_b = sorted_pair_distances(pos_b, lengths)
    order = np.argsort(np.stack([distance(prints_b, p) for p in prints_a]), axis=1, kind="stable")
    grid = _lookup_grids(frac_b, look)
    _, nearest, sym, shift = _search(frac_a, frac_b, grid, look, vote, syms, lengths,
                                     float(radius), skip, order)  # fmt: skip
    atoms = np.zeros(n_a)
    bonds = np.zeros(n_a)
    offset = np.zeros(n_a)
    for k in range(n_a):
        if nearest[k] < 0:
            continue
        b = nearest[k]
        mapped = np.mod(frac_a[k] @ syms[sym[k]].T + shift[k], 1.0)
        pair, dist = _match(mapped, frac_b[b], lengths, radius)
        atoms[k] = np.mean(pair >= 0)
        offset[k] = float(np.median(dist[pair >= 0])) if np.any(pair >= 0) else 0.0
        bonds[k] = _bonds_kept(pos_a[k], pos_b[b], pair, lengths, cutoff)
    return Closeness(nearest, atoms, bonds, offset, sym, float(radius))


def near_copies(
    networks: Trajectory | np.ndarray,
    reference: Trajectory | np.ndarray | None = None,
    *,
    cell: np.ndarray | None = None,
    share: float = CLOSE,
    radius: float = RADIUS,
) -> np.ndarray:
    """Pairs (i, j, matched share) of a network of ``networks`` and one of ``reference`` (or
    of ``networks`` itself, i < j, when None) that match on at least ``share`` of the atoms,
    aligned as :func:`closeness` aligns (the share is the first's atoms matched)."""
    pos_a, cell_a = _frames(networks, cell, "networks")
    same = reference is None
    pos_b, cell_b = (pos_a, cell_a) if same else _frames(reference, cell, "reference")
    lengths, syms, vote, look = _setup(pos_a, cell_a, pos_b, cell_b, radius)
    if not (isinstance(share, int | float) and 0 < share <= 1):
        raise InputError(f"share: expected a fraction in (0, 1], got {share!r}")
    if not len(pos_a) or not len(pos_b):
        return np.zeros((0, 3))
    frac_a, frac_b = np.mod(pos_a / lengths, 1.0), np.mod(pos_b / lengths, 1.0)
    least = math.ceil(share * pos_a.shape[1] - 1e-9)
    count = _pairs(frac_a, frac_b, _lookup_grids(frac_b, look), look, vote, syms, lengths,
                   float(radius), least, same)  # fmt: skip
    i, j = np.nonzero(count >= 0)
    return np.column_stack([i, j, count[i, j] / pos_a.shape[1]])


def _setup(
    pos_a: np.ndarray, cell_a: np.ndarray, pos_b: np.ndarray, cell_b: np.ndarray, radius: float
):
    """Checks; (cell lengths, symmetries, vote bins, lookup bins) per axis."""
    if pos_a.shape[1] != pos_b.shape[1]:
        raise InputError(f"reference: {pos_b.shape[1]} atoms per network against "
                         f"{pos_a.shape[1]}: closeness compares networks of one cell")  # fmt: skip
    if not np.allclose(cell_a, cell_b, atol=1e-6):
        raise InputError("reference: its cell differs from the networks' cell")
    if np.count_nonzero(cell_a - np.diag(np.diag(cell_a))) or np.any(np.diag(cell_a) <= 0):
        raise InputError("networks: closeness needs an orthorhombic cell (a diagonal matrix)")
    if not (isinstance(radius, int | float) and 0 < radius < 1.0):
        raise InputError(f"radius: expected a distance in (0, 1) A, got {radius!r}")
    lengths = np.diag(cell_a).copy()
    vote = np.maximum(3, np.floor(lengths / radius)).astype(np.int64)
    # lookup bins at least 1.5 radius wide: the first refinement reaches that far
    look = np.maximum(3, np.floor(lengths / (1.5 * radius))).astype(np.int64)
    return lengths, cell_symmetries(cell_a), vote, look


def _lookup_grids(frac: np.ndarray, look: np.ndarray) -> np.ndarray:
    """For each reference network a grid of atom indices (-1: empty), ``_SLOTS`` per bin."""
    grid = np.full((len(frac), *look, _SLOTS), -1, dtype=np.int32)
    for b in range(len(frac)):
        cells = np.minimum((frac[b] * look).astype(np.int64), look - 1)
        for j, (x, y, z) in enumerate(cells):
            free = np.flatnonzero(grid[b, x, y, z] < 0)
            if len(free):
                grid[b, x, y, z, free[0]] = j
    return grid


def _match(mapped: np.ndarray, ref: np.ndarray, lengths: np.ndarray, radius: float):
    """For each mapped atom the reference atom within ``radius`` (-1: none) and its distance:
    the nearest, each reference atom used once (closest pair first)."""
    d = mapped[:, None, :] - ref[None, :, :]
    d -= np.round(d)
    dist = np.linalg.norm(d * lengths, axis=-1)
    pair = np.full(len(mapped), -1, np.int64)
    out = np.zeros(len(mapped))
    order = np.argsort(dist, axis=None)
    used_a = np.zeros(len(mapped), bool)
    used_b = np.zeros(len(ref), bool)
    for flat in order:
        i, j = divmod(int(flat), len(ref))
        if dist[i, j] > radius:
            break
        if used_a[i] or used_b[j]:
            continue
        used_a[i] = used_b[j] = True
        pair[i], out[i] = j, dist[i, j]
    return pair, out


def bonded(pos: np.ndarray, lengths: np.ndarray, cutoff: float = CUTOFF):
    """Bond matrix (N, N) of one structure in a periodic orthorhombic cell of edges
    ``lengths``, and the minimum-image vectors d[i, j] from atom i to atom j (N, N, 3)."""
    d = pos[None, :, :] - pos[:, None, :]
    d -= lengths * np.round(d / lengths)
    r = np.linalg.norm(d, axis=-1)
    return (r < cutoff) & ~np.eye(len(pos), dtype=bool), d


def _bonds_kept(a: np.ndarray, b: np.ndarray, pair: np.ndarray, lengths, cutoff) -> float:
    """Share of b's bonds (j, l) whose atoms are both matched to atoms of a that are bonded."""
    bonded_a, bonded_b = bonded(a, lengths, cutoff)[0], bonded(b, lengths, cutoff)[0]
    j, m = np.nonzero(np.triu(bonded_b, 1))
    if not len(j):
        return 0.0
    inverse = np.full(len(b), -1, np.int64)
    matched = np.flatnonzero(pair >= 0)
    inverse[pair[matched]] = matched
    ia, ma = inverse[j], inverse[m]
    ok = (ia >= 0) & (ma >= 0)
    kept = np.zeros(len(j), bool)
    kept[ok] = bonded_a[ia[ok], ma[ok]]
    return float(kept.mean())


@numba.njit(cache=True, parallel=True)
def _search(frac_a, frac_b, grid, look, vote, syms, lengths, radius, skip, order):
    """For every network a: the most atoms matched to one reference network, that network
    (-1: none compared), the symmetry and the translation (fractional). References are
    tried in ``order[a]``; the best count so far spares refining boxes that cannot beat it."""
    n_a, n_b = frac_a.shape[0], frac_b.shape[0]
    count = np.full(n_a, -1, dtype=np.int64)
    nearest = np.full(n_a, -1, dtype=np.int64)
    sym = np.zeros(n_a, dtype=np.int64)
    shift = np.zeros((n_a, 3))
    for a in numba.prange(n_a):
        for k in range(n_b):
            b = order[a, k]
            if skip[a] == b:
                continue
            c, s, t0, t1, t2 = _best_alignment(frac_a[a], frac_b[b], grid[b], look, vote,
                                                syms, lengths, radius, count[a])  # fmt: skip
            if c > count[a] or nearest[a] < 0:
                count[a], nearest[a], sym[a] = max(c, count[a]), b, s
                shift[a, 0], shift[a, 1], shift[a, 2] = t0, t1, t2
    return count, nearest, sym, shift


@numba.njit(cache=True, parallel=True)
def _pairs(frac_a, frac_b, grid, look, vote, syms, lengths, radius, least, same):
    """Atoms matched for every pair (a, b) that reaches ``least`` (else -1); ``same``: one
    set against itself, pairs a < b only."""
    n_a, n_b = frac_a.shape[0], frac_b.shape[0]
    count = np.full((n_a, n_b), -1, dtype=np.int64)
    for a in numba.prange(n_a):
        for b in range(a + 1 if same else 0, n_b):
            c = _best_alignment(frac_a[a], frac_b[b], grid[b], look, vote, syms, lengths,
                                radius, least - 1)[0]  # fmt: skip
            if c >= least:
                count[a, b] = c
    return count


@numba.njit(cache=True)
def _best_alignment(fa, fb, grid, look, vote, syms, lengths, radius, floor):
    n, m = fa.shape[0], fb.shape[0]
    v0, v1, v2 = vote[0], vote[1], vote[2]
    hist = np.zeros((v0, v1, v2), dtype=np.int32)
    box = np.zeros((v0, v1, v2), dtype=np.int32)
    tmp = np.zeros((v0, v1, v2), dtype=np.int32)
    rot = np.empty((n, 3))
    scaled = np.empty((n, 3))  # rotated a in vote bins
    fbv = np.empty((m, 3))  # b in vote bins
    for j in range(m):
        fbv[j, 0] = fb[j, 0] * v0
        fbv[j, 1] = fb[j, 1] * v1
        fbv[j, 2] = fb[j, 2] * v2
    prev = np.empty((3, max(v0, v1, v2)), dtype=np.int64)
    after = np.empty((3, max(v0, v1, v2)), dtype=np.int64)
    for d, v in enumerate((v0, v1, v2)):
        for x in range(v):
            prev[d, x] = (x - 1) % v
            after[d, x] = (x + 1) % v
    top_v = np.empty(3, dtype=np.int64)
    top_i = np.empty((3, 3), dtype=np.int64)
    reach = min(lengths[0] / look[0], lengths[1] / look[1], lengths[2] / look[2])
    best, best_s, bt0, bt1, bt2 = floor, 0, 0.0, 0.0, 0.0
    for s in range(syms.shape[0]):
        r = syms[s]
        for i in range(n):
            for d in range(3):
                x = fa[i, 0] * r[d, 0] + fa[i, 1] * r[d, 1] + fa[i, 2] * r[d, 2]
                rot[i, d] = x - math.floor(x)
            scaled[i, 0] = rot[i, 0] * v0
            scaled[i, 1] = rot[i, 1] * v1
            scaled[i, 2] = rot[i, 2] * v2
        hist[:] = 0
        for i in range(n):
            a0, a1, a2 = scaled[i, 0], scaled[i, 1], scaled[i, 2]
            for j in range(m):
                d0 = fbv[j, 0] - a0
                d1 = fbv[j, 1] - a1
                d2 = fbv[j, 2] - a2
                if d0 < 0:
                    d0 += v0
                if d1 < 0:
                    d1 += v1
                if d2 < 0:
                    d2 += v2
                hist[min(int(d0), v0 - 1), min(int(d1), v1 - 1), min(int(d2), v2 - 1)] += 1
        # 3 x 3 x 3 periodic box sums, one axis at a time
        for x in range(v0):
            xm, xp = prev[0, x], after[0, x]
            for y in range(v1):
                for z in range(v2):
                    tmp[x, y, z] = hist[xm, y, z] + hist[x, y, z] + hist[xp, y, z]
        for x in range(v0):
            for y in range(v1):
                ym, yp = prev[1, y], after[1, y]
                for z in range(v2):
                    box[x, y, z] = tmp[x, ym, z] + tmp[x, y, z] + tmp[x, yp, z]
        # the three largest boxes (z sums last), best first
        top_v[:] = -1
        for x in range(v0):
            for y in range(v1):
                for z in range(v2):
                    q = box[x, y, prev[2, z]] + box[x, y, z] + box[x, y, after[2, z]]
                    if q > top_v[2]:
                        k = 2
                        while k > 0 and q > top_v[k - 1]:
                            top_v[k] = top_v[k - 1]
                            top_i[k] = top_i[k - 1]
                            k -= 1
                        top_v[k] = q
                        top_i[k, 0], top_i[k, 1], top_i[k, 2] = x, y, z
        # refine them while one could still beat the best count (a box sum bounds it)
        for k in range(3):
            if top_v[k] <= best:
                break
            # start from the votes' centroid in the box (its centre may lie a bin away)
            x0, y0, z0 = top_i[k, 0], top_i[k, 1], top_i[k, 2]
            w = 0.0
            t0 = 0.0
            t1 = 0.0
            t2 = 0.0
            for a in range(-1, 2):
                for b in range(-1, 2):
                    for c in range(-1, 2):
                        h = hist[(x0 + a) % v0, (y0 + b) % v1, (z0 + c) % v2]
                        w += h
                        t0 += h * a
                        t1 += h * b
                        t2 += h * c
            t0 = (x0 + 0.5 + t0 / w) / v0
            t1 = (y0 + 0.5 + t1 / w) / v1
            t2 = (z0 + 0.5 + t2 / w) / v2
            # a wider first reach (the centroid may lie off the translation); atoms within it
            # bound the count of any translation within reach - radius of the start: none
            # that could beat the best, no further passes
            wide, t0, t1, t2 = _refine(rot, fb, grid, look, lengths, reach, t0, t1, t2)
            if wide <= best:
                continue
            _, t0, t1, t2 = _refine(rot, fb, grid, look, lengths, radius, t0, t1, t2)
            _, t0, t1, t2 = _refine(rot, fb, grid, look, lengths, radius, t0, t1, t2)
            c = _refine(rot, fb, grid, look, lengths, radius, t0, t1, t2)[0]
            if c > best:
                best, best_s, bt0, bt1, bt2 = c, s, t0, t1, t2
    return best, best_s, bt0, bt1, bt2


@numba.njit(cache=True)
def _refine(rot, fb, grid, look, lengths, radius, t0, t1, t2):
    """Atoms of ``rot`` + t within ``radius`` (at most a lookup bin) of an atom of b (the
    nearest, via b's grid), and t moved by their mean offset."""
    n = rot.shape[0]
    g0, g1, g2 = look[0], look[1], look[2]
    r2 = radius * radius
    count = 0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for i in range(n):
        p0 = rot[i, 0] + t0
        p1 = rot[i, 1] + t1
        p2 = rot[i, 2] + t2
        p0 -= math.floor(p0)
        p1 -= math.floor(p1)
        p2 -= math.floor(p2)
        # the bins within ``radius`` (at most a bin wide): this one and its neighbour on
        # the near side, per axis
        q0, q1, q2 = p0 * g0, p1 * g1, p2 * g2
        c0, c1, c2 = min(int(q0), g0 - 1), min(int(q1), g1 - 1), min(int(q2), g2 - 1)
        n0 = 1 if q0 - c0 >= 0.5 else -1
        n1 = 1 if q1 - c1 >= 0.5 else -1
        n2 = 1 if q2 - c2 >= 0.5 else -1
        best = r2
        e0 = 0.0
        e1 = 0.0
        e2 = 0.0
        found = False
        for a in range(2):
            for b in range(2):
                for c in range(2):
                    cell = grid[(c0 + a * n0) % g0, (c1 + b * n1) % g1, (c2 + c * n2) % g2]
                    for k in range(cell.shape[0]):
                        j = cell[k]
                        if j < 0:
                            break
                        d0 = fb[j, 0] - p0
                        d1 = fb[j, 1] - p1
                        d2 = fb[j, 2] - p2
                        d0 -= math.floor(d0 + 0.5)
                        d1 -= math.floor(d1 + 0.5)
                        d2 -= math.floor(d2 + 0.5)
                        x = d0 * lengths[0]
                        y = d1 * lengths[1]
                        z = d2 * lengths[2]
                        q = x * x + y * y + z * z
                        if q <= best:
                            best, e0, e1, e2, found = q, d0, d1, d2, True
        if found:
            count += 1
            s0 += e0
            s1 += e1
            s2 += e2
    if count:
        t0 += s0 / count
        t1 += s1 / count
        t2 += s2 / count
    return count, t0 - math.floor(t0), t1 - math.floor(t1), t2 - math.floor(t2)
