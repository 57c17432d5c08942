"""Ring statistics of bonded networks: the shortest rings through every bond angle.

Atoms closer than ``cutoff`` are bonded (periodic images included). For every bond angle
j-i-k, the rings through it are i plus every shortest path from j to k that avoids i (King's
criterion; all paths of the shortest length are kept, so an angle shared by two rings, as in
diamond, gives both). The search runs on the periodic graph lifted to image offsets, so a path
that closes only after a lattice translation (a chain around the cell) is not a ring. Rings
found from several angles are counted once. Sizes ``3 .. max_size`` (8 by default); diamond Si
has only 6-rings, 2 per atom.
"""

from __future__ import annotations

import numba
import numpy as np

from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.geometry import cell_heights

MAX_SIZE = 8
_R = 4  # image offsets per axis in [-_R, _R]: rings of 8 bonds in the 30-atom cell need 2
_SIDE = 2 * _R + 1


def _bonds(positions, cell, pbc, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bonds (i, j, image shift of j) sorted by i, every bond in both directions."""
    inv = np.linalg.inv(cell)
    frac = positions @ inv
    frac = np.where(pbc, frac - np.floor(frac), frac)  # unwrapped MD positions: wrap first
    reach = np.where(pbc, np.ceil(cutoff / cell_heights(cell)), 0).astype(np.int64)
    return _bond_kernel(frac, np.ascontiguousarray(cell), reach, float(cutoff))


def _bond_kernel(frac, cell, reach, cutoff):
    empty = np.empty((0, 3), np.int64)
    m = _scan(frac, cell, reach, cutoff * cutoff, empty, False)  # count, then fill
    out = np.empty((m, 5), np.int64)
    _scan(frac, cell, reach, cutoff * cutoff, out, True)
    return out[:, 0], out[:, 1], np.ascontiguousarray(out[:, 2:])


@numba.njit(cache=True)
def _scan(frac, cell, reach, c2, out, fill):
    n = len(frac)
    m = 0
    for i in range(n):
        for j in range(n):
            for a in range(-reach[0], reach[0] + 1):
                for b in range(-reach[1], reach[1] + 1):
                    for c in range(-reach[2], reach[2] + 1):
                        if i == j and a == 0 and b == 0 and c == 0:
                            continue
                        d0 = frac[j, 0] + a - frac[i, 0]
                        d1 = frac[j, 1] + b - frac[i, 1]
                        d2 = frac[j, 2] + c - frac[i, 2]
                        r2 = 0.0
                        for k in range(3):
                            x = d0 * cell[0, k] + d1 * cell[1, k] + d2 * cell[2, k]
                            r2 += x * x
                        if r2 < c2:
                            if fill:
                                out[m, 0], out[m, 1] = i, j
                                out[m, 2], out[m, 3], out[m, 4] = a, b, c
                            m += 1
    return m


@numba.njit(cache=True)
def _code(atom, ox, oy, oz):
    return ((atom * _SIDE + ox + _R) * _SIDE + oy + _R) * _SIDE + oz + _R


@numba.njit(cache=True)
def _rings_of_structure(start, nbr, shift, n_atoms, max_size, capacity):
    """Every shortest ring through every angle: (rings (M, max_size, 4) of (atom, ox, oy, oz),
    sizes (M,)); duplicates (the same ring from several angles) are left to the caller."""
    n_nodes = n_atoms * _SIDE**3
    dist = np.full(n_nodes, -1, np.int64)
    touched = np.empty(n_nodes, np.int64)
    queue = np.empty((n_nodes, 4), np.int64)
    max_path = max_size - 2  # edges from j to k
    out = np.zeros((capacity, max_size, 4), np.int64)
    sizes = np.zeros(capacity, np.int64)
    m = 0
    for i in range(n_atoms):
        for a in range(start[i], start[i + 1]):
            for b in range(a + 1, start[i + 1]):
                j, k = nbr[a], nbr[b]
                # BFS from (j, shift a), never entering (i, 0)
                n_touched = 0
                head, tail = 0, 0
                sj = shift[a]
                c = _code(j, sj[0], sj[1], sj[2])
                dist[c] = 0
                touched[n_touched] = c
                n_touched += 1
                queue[tail, 0] = j
                queue[tail, 1:] = sj
                tail += 1
                block = _code(i, 0, 0, 0)
                dist[block] = 10**9  # never entered
                touched[n_touched] = block
                n_touched += 1
                sk = shift[b]
                target = _code(k, sk[0], sk[1], sk[2])
                found = -1
                while head < tail:
                    u = queue[head, 0]
                    ox, oy, oz = queue[head, 1], queue[head, 2], queue[head, 3]
                    du = dist[_code(u, ox, oy, oz)]
                    head += 1
                    if found >= 0 and du >= found:
                        break
                    if du >= max_path:
                        continue
                    for e in range(start[u], start[u + 1]):
                        v = nbr[e]
                        vx, vy, vz = ox + shift[e, 0], oy + shift[e, 1], oz + shift[e, 2]
                        if abs(vx) > _R or abs(vy) > _R or abs(vz) > _R:
                            continue
                        cv = _code(v, vx, vy, vz)
                        if dist[cv] != -1:
                            continue
                        dist[cv] = du + 1
                        touched[n_touched] = cv
                        n_touched += 1
                        if cv == target:
                            found = du + 1
                        queue[tail, 0] = v
                        queue[tail, 1] = vx
                        queue[tail, 2] = vy
                        queue[tail, 3] = vz
                        tail += 1
                if found >= 1:
                    # every shortest path, walked back from k by decreasing distance (DFS)
                    size = found + 2
                    stack_node = np.zeros((found + 1, 4), np.int64)
                    stack_edge = np.zeros(found + 1, np.int64)
                    stack_node[0, 0] = k
                    stack_node[0, 1:] = sk
                    stack_edge[0] = start[k]
                    depth = 0
                    while depth >= 0:
                        u = stack_node[depth, 0]
                        du = found - depth
                        if du == 0:  # reached j: stack holds k .. j
                            if m < out.shape[0]:
                                out[m, 0, 0] = i
                                out[m, 0, 1:] = 0
                                for t in range(found + 1):
                                    out[m, 1 + t] = stack_node[t]
                                sizes[m] = size
                            m += 1
                            depth -= 1
                            continue
                        e = stack_edge[depth]
                        if e >= start[u + 1]:
                            depth -= 1
                            continue
                        stack_edge[depth] = e + 1
                        v = nbr[e]
                        vx = stack_node[depth, 1] + shift[e, 0]
                        vy = stack_node[depth, 2] + shift[e, 1]
                        vz = stack_node[depth, 3] + shift[e, 2]
                        if abs(vx) > _R or abs(vy) > _R or abs(vz) > _R:
                            continue
                        if dist[_code(v, vx, vy, vz)] == du - 1:
                            depth += 1
                            stack_node[depth, 0] = v
                            stack_node[depth, 1] = vx
                            stack_node[depth, 2] = vy
                            stack_node[depth, 3] = vz
                            stack_edge[depth] = start[v]
                for t in range(n_touched):
                    dist[touched[t]] = -1
    if m > out.shape[0]:
        return out[:0], sizes[:0], m
    return out[:m], sizes[:m], m


def _distinct(rings: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Sizes of the distinct rings among ring paths found from several angles. A ring's key is
    its node set translated so that its smallest (atom, offset) node sits at offset 0 (the
    same ring from any angle and any lattice translation), encoded and sorted: vectorised."""
    if not len(rings):
        return sizes
    m, width = len(rings), rings.shape[1]
    valid = np.arange(width)[None, :] < sizes[:, None]
    atom, off = rings[..., 0], rings[..., 1:]
    node = (
        (atom * _SIDE + off[..., 0] + _R) * _SIDE**2 + (off[..., 1] + _R) * _SIDE + off[..., 2] + _R
    )
    node = np.where(valid, node, np.iinfo(np.int64).max)
    anchor = np.argmin(node, axis=1)
    rel = off - off[np.arange(m), anchor][:, None, :] + 2 * _R  # in [0, 4R]
    side = 4 * _R + 1
    key = ((atom * side + rel[..., 0]) * side + rel[..., 1]) * side + rel[..., 2]
    key = np.sort(np.where(valid, key, np.iinfo(np.int64).max), axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    return sizes[first]


def ring_counts(traj: Trajectory, cutoff: float = 2.85, max_size: int = MAX_SIZE) -> np.ndarray:
    """Distinct rings per structure by size: (F, max_size + 1), column n = rings of n atoms
    (columns 0-2 are zero)."""
    if not 3 <= max_size <= 12:
        raise InputError(f"max_size: expected 3 .. 12, got {max_size}")
    counts = np.zeros((len(traj), max_size + 1), np.int64)
    cells = traj.frame_cells()
    for f in range(len(traj)):
        i, j, shift = _bonds(traj.positions[f], cells[f], traj.pbc, cutoff)
        start = np.searchsorted(i, np.arange(traj.n_atoms + 1))
        capacity = 32 * traj.n_atoms  # ring paths: ~6 angles per atom, 2+ paths each
        rings, sizes, m = _rings_of_structure(start, j, shift, traj.n_atoms, max_size, capacity)
        if m > capacity:  # more paths than room: once more with room for all of them
            rings, sizes, m = _rings_of_structure(start, j, shift, traj.n_atoms, max_size, m)
        counts[f] = np.bincount(_distinct(rings, sizes), minlength=max_size + 1)
    return counts


def rings_per_atom(traj: Trajectory, cutoff: float = 2.85, max_size: int = MAX_SIZE) -> dict:
    """Mean number of distinct rings of each size (3 .. max_size) per atom over an ensemble."""
    counts = ring_counts(traj, cutoff, max_size)
    per_atom = counts.sum(axis=0) / (len(traj) * traj.n_atoms)
    return {int(n): float(per_atom[n]) for n in range(3, max_size + 1)}
