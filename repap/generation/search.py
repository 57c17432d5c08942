"""Networks by search from random structures: topology-changing moves, each relaxed, kept by
Metropolis acceptance while the temperature is lowered (simulated annealing on Vink's SW).

Unlike :mod:`repap.generation.rebuild`, nothing starts from a training network, so what comes
out is as independent of the training networks as the moves make it (measure it with
:mod:`repap.analysis.closeness`). A chain starts from a random structure (no pair closer than
``min_dist``, relaxed) or, with ``start="model"``, from a learnt whole-structure model's
sample relaxed; each step proposes one move:

- a bond switch in the Wooten-Winer-Weaire manner: bonded atoms B and C, A bonded to B (not
  to C), D bonded to C (not to B); the pair B-C turns by 90 degrees about its midpoint, C
  towards A and B towards D, so that the relaxation can form A-C and B-D. Any bond, or with
  probability ``defect_bias`` one with an atom of other than four bonds (0 by default: a
  bias of 0.7 ended 0.013 eV/atom higher at 6 moves per atom, 64 atoms);
- with probability ``refill`` a hole refill as :func:`repap.generation.rebuild.rebuild` makes
  one: the ``hole`` atoms nearest a defect drawn again at random (``fill="uniform"``) or by the
  learnt site model (``fill="site"``).

The proposal is relaxed (LAMMPS, conjugate gradients to ``screen_fmax``) and accepted with
probability min(1, exp(-dE / T)), dE the change of the total energy (eV), T (eV) falling
geometrically from ``t_start`` to ``t_end`` over ``moves_per_atom`` x N steps. Chains advance
together, one batch of proposals relaxed per step, and end relaxed to ``fmax``. Seeded: the
same seed gives the same networks.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np

from repap._checks import check_min_dist, check_positive_int
from repap.data.trajectory import Trajectory
from repap.errors import InputError

STARTS = ("random", "model")
FILLS = ("uniform", "site")


@dataclass(frozen=True)
class SearchOptions:
    """How a search runs (see the module doc): its length (moves per atom), annealing
    temperatures (eV, on the total energy), move mix and relaxation."""

    moves_per_atom: float = 6.0
    t_start: float = 0.3
    t_end: float = 0.01
    defect_bias: float = 0.0
    refill: float = 0.0
    hole: int = 8
    fill: str = "uniform"
    start: str = "random"
    min_dist: float = 2.0
    screen_fmax: float = 0.05
    fmax: float = 1e-3

    def check(self, n_atoms: int) -> None:
        def fraction(value: Any, name: str) -> None:
            if not (isinstance(value, Real) and 0 <= value <= 1):
                raise InputError(f"{name}: expected a fraction in [0, 1], got {value!r}")

        if not (isinstance(self.moves_per_atom, Real) and 0 <= self.moves_per_atom <= 1000):
            raise InputError(f"moves_per_atom: expected 0 to 1000, got {self.moves_per_atom!r}")
        for name in ("t_start", "t_end", "screen_fmax", "fmax"):
            value = getattr(self, name)
            if not (isinstance(value, Real) and math.isfinite(value) and value > 0):
                raise InputError(f"{name}: expected a positive number, got {value!r}")
        if self.t_end > self.t_start:
            raise InputError(f"t_end: expected at most t_start ({self.t_start}), got "
                             f"{self.t_end}")  # fmt: skip
        fraction(self.defect_bias, "defect_bias")
        fraction(self.refill, "refill")
        if not (isinstance(self.hole, Integral) and 1 <= self.hole < n_atoms // 2):
            raise InputError(f"hole: expected 1 to {n_atoms // 2 - 1} atoms, got {self.hole!r}")
        if self.fill not in FILLS:
            raise InputError(f"fill: expected one of {FILLS}, got {self.fill!r}")
        if self.start not in STARTS:
            raise InputError(f"start: expected one of {STARTS}, got {self.start!r}")
        check_min_dist(self.min_dist)

    def steps(self, n_atoms: int) -> int:
        return math.ceil(self.moves_per_atom * n_atoms)


def switch_bond(pos: np.ndarray, lengths: np.ndarray, rng: np.random.Generator,
                defect_bias: float = 0.0) -> np.ndarray | None:  # fmt: skip
    """``pos`` (N, 3) in an orthorhombic cell of edge ``lengths`` with one bond switched (see
    the module doc), wrapped into the cell; None where no bond has the neighbours a switch
    needs."""
    from repap.analysis.closeness import bonded

    bonds, d = bonded(pos, lengths)
    pairs = np.argwhere(np.triu(bonds, 1))
    if not len(pairs):
        return None
    coord = bonds.sum(1)
    bad = np.flatnonzero((coord[pairs[:, 0]] != 4) | (coord[pairs[:, 1]] != 4))
    for _ in range(20):
        pool = bad if (bad.size and rng.random() < defect_bias) else np.arange(len(pairs))
        b, c = pairs[pool[rng.integers(len(pool))]]
        if rng.random() < 0.5:
            b, c = c, b
        a_s = np.flatnonzero(bonds[b] & ~bonds[c])
        a_s = a_s[a_s != c]
        d_s = np.flatnonzero(bonds[c] & ~bonds[b])
        d_s = d_s[d_s != b]
        if a_s.size and d_s.size:
            break
    else:
        return None
    a, e = a_s[rng.integers(a_s.size)], d_s[rng.integers(d_s.size)]
    half = d[b, c] / 2  # from the midpoint to C
    to_a, to_d = d[b, a], d[c, e]
    axis = np.cross(half, to_a - to_d)
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # A, B, C, D in a line: any axis normal to the bond
        axis = np.cross(half, rng.normal(size=3))
        norm = np.linalg.norm(axis)
    axis /= norm
    turned = np.cross(axis, half) + axis * axis.dot(half)  # half turned by 90 degrees
    if turned.dot(to_a) < 0:
        turned = -turned
    mid = pos[b] + half
    out = pos.copy()
    out[c], out[b] = mid + turned, mid - turned  # C towards A, B towards D
    return out % lengths


def _refill(pos: np.ndarray, like: Trajectory, options: SearchOptions, rng, site_model):
    """``pos`` (B, N, 3) each with one hole around a defect drawn again; NaN rows where the
    hole could not be filled."""
    from repap.generation.rebuild import fill_uniform, holes

    nets = Trajectory(pos, like.cell, like.numbers, like.pbc)
    cut, centre, radius = holes(nets, np.arange(len(pos)), options.hole, rng)
    cell = like.frame_cells()[0]
    if site_model is None:
        return fill_uniform(cut, options.hole, centre, radius, cell, options.min_dist, rng)
    from repap.generation import site_fill

    return site_fill.fill(site_model, cut, options.hole, cell, options.min_dist,
                          seed=int(rng.integers(2**62)))  # fmt: skip


def search(
    like: Trajectory,
    n: int,
    options: SearchOptions | None = None,
    seed: int = 0,
    starts: Trajectory | None = None,
    progress: bool = False,
    desc: str = "searching",
) -> tuple[Trajectory, dict[str, Any]]:
    """``n`` networks by search (see the module doc) in the cell and composition of ``like``
    (orthorhombic, periodic). ``starts``: the structures the chains start from (n of them,
    before relaxation; for ``options.start == "model"``); else random ones. Returns (the
    final relaxed networks, with energies; a summary: moves, accepted, seconds, the mean
    energy along the way). ``desc``: the progress bar's label."""
    from tqdm.auto import tqdm

    from repap.data.random_structures import random_min_distance
    from repap.sim.relaxation import relax

    options = SearchOptions() if options is None else options
    check_positive_int(n, "n")
    if not (isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0):
        raise InputError(f"seed: expected an integer >= 0, got {seed!r}")
    cell = like.frame_cells()[0]
    if not like.pbc.all() or np.count_nonzero(cell - np.diag(np.diag(cell))):
        raise InputError("like: search needs a periodic orthorhombic cell")
    options.check(like.n_atoms)
    lengths = np.diag(cell).copy()
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    if starts is None:
        starts = random_min_distance(n, cell, like.numbers, min_dist=options.min_dist,
                                     seed=int(rng.integers(2**31)))  # fmt: skip
    elif len(starts) != n or starts.n_atoms != like.n_atoms:
        raise InputError(f"starts: expected {n} structures of {like.n_atoms} atoms, got "
                         f"{len(starts)} of {starts.n_atoms}")  # fmt: skip
    site_model = None
    if options.refill > 0 and options.fill == "site":
        from repap.generation import site_fill

        site_fill.check_cell(cell)
        site_model = site_fill.load()

    def relaxed(pos: np.ndarray, fmax: float) -> tuple[np.ndarray, np.ndarray]:
        traj = Trajectory(pos, like.cell, like.numbers, like.pbc)
        r = relax(traj, fmax=fmax, max_steps=2000, progress=False)
        e = np.where(r.status == "failed", np.inf, r.energy_after * like.n_atoms)
        return r.structures.positions % lengths, e

    pos, energy = relaxed(np.asarray(starts.positions, float), options.screen_fmax)
    steps = options.steps(like.n_atoms)
    accepted = 0
    trace = [float(np.mean(energy)) / like.n_atoms]
    for k in tqdm(range(steps), desc=desc, unit="move", disable=not progress):
        temperature = options.t_start * (options.t_end / options.t_start) ** (k / max(steps - 1, 1))
        refill = rng.random(n) < options.refill
        proposal = pos.copy()
        moved = np.zeros(n, bool)
        for i in np.flatnonzero(~refill):
            new = switch_bond(pos[i], lengths, rng, options.defect_bias)
            if new is not None:
                proposal[i], moved[i] = new, True
        if refill.any():
            filled = _refill(pos[refill], like, options, rng, site_model)
            ok = np.isfinite(filled).all((1, 2))
            proposal[np.flatnonzero(refill)[ok]] = filled[ok]
            moved[np.flatnonzero(refill)[ok]] = True
        rows = np.flatnonzero(moved)
        if not rows.size:
            continue
        new_pos, new_e = relaxed(proposal[rows], options.screen_fmax)
        gain = np.clip(-(new_e - energy[rows]) / temperature, None, 0.0)
        take = np.isfinite(new_e) & (rng.random(rows.size) < np.exp(gain))
        pos[rows[take]], energy[rows[take]] = new_pos[take], new_e[take]
        accepted += int(take.sum())
        if (k + 1) % max(1, steps // 10) == 0:
            trace.append(float(np.mean(energy)) / like.n_atoms)
    final = relax(Trajectory(pos, like.cell, like.numbers, like.pbc), fmax=options.fmax,
                  progress=False)  # fmt: skip
    out = final.structures
    out.positions %= lengths
    seconds = time.perf_counter() - t0
    summary = {
        "networks": n, "moves": steps * n, "accepted": accepted,
        "acceptance": accepted / max(steps * n, 1), "seconds": seconds,
        "seconds_per_network": seconds / n, "energy_trace_eV_per_atom": trace,
        "converged": int(np.sum(final.status == "converged")), **asdict(options),
    }  # fmt: skip
    out.info = {"search": summary, "seconds_per_structure": seconds / n}
    return out, summary


def search_file(
    out: str | os.PathLike, n: int, atoms: int = 64, chunk: int = 32, seed: int = 0,
    progress: bool = True, overwrite: bool = False, workers: int | None = 1,
    scheduler: str | os.PathLike | None = None, **options: Any,
) -> dict[str, Any]:  # fmt: skip
    """``repap search``: ``n`` networks by search in the cell of the built-in ``atoms``-atom
    set into ``out`` (.npz, .xyz/.extxyz or .db), ``chunk`` chains at a time into
    ``OUT.parts/`` (chunk c seeded by seed + c); a rerun with the same arguments resumes.
    Each chunk is a task (:mod:`repap.cluster`): in this process (``workers=1``, the default),
    on ``workers`` local processes (None: one per core; the command line's default) or on the
    Dask cluster of ``scheduler``; the same output any way.
    ``options``: :class:`SearchOptions` fields. An existing ``out``, or finished chunks of
    other arguments, are refused unless ``overwrite`` (:mod:`repap.jobs`). Returns the
    summary."""
    import json
    import shutil

    from repap.cluster import check_scheduler, check_workers, tasks
    from repap.data.references import reference_set
    from repap.data.trajectory import read
    from repap.generation.rebuild import check_networks_output
    from repap.jobs import claim_parts, intact_chunk, output_job, parts_dir

    out = Path(out)
    check_networks_output(out, n, chunk, atoms, overwrite)
    check_workers(workers)
    check_scheduler(scheduler)
    if not (isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0):
        raise InputError(f"seed: expected an integer >= 0, got {seed!r}")
    unknown = sorted(set(options) - set(SearchOptions.__dataclass_fields__))
    if unknown:
        raise InputError(f"options: unknown {', '.join(unknown)}")
    opts = SearchOptions(**options)
    like = reference_set(atoms=atoms).inherent_structures("train")[:1]
    opts.check(like.n_atoms)
    settings = {"n": n, "atoms": atoms, "chunk": chunk, "seed": seed, **asdict(opts)}
    parts = parts_dir(out)
    chunks = -(-n // chunk)
    done: list[Trajectory | None] = [None] * chunks
    records: list[dict[str, Any]] = [{}] * chunks
    with output_job(out, overwrite) as job:
        claim_parts(parts, settings, announce=True, overwrite=overwrite)
        todo = []
        for c in range(chunks):
            path, record = parts / f"chunk-{c:06d}.npz", parts / f"chunk-{c:06d}.json"
            if path.exists() and record.exists() and intact_chunk(path, ("positions",)):
                done[c], records[c] = read(path), json.loads(record.read_text())
            else:
                todo.append(c)
        from tqdm.auto import tqdm

        # each chunk a task (repap.cluster); this process writes them as they finish
        with tasks("chunk", len(todo), scheduler, workers, needs=("lammps",)) as work:
            inner = progress and work.here  # in this process: a bar of moves per chunk
            bar = tqdm(total=n, initial=n - sum(min(chunk, n - c * chunk) for c in todo),
                       desc="searching", unit="network", disable=not progress or inner)  # fmt: skip
            for c in todo:
                work.submit(c, _search_chunk, like, min(chunk, n - c * chunk), opts, seed + c,
                            atoms, inner, f"searching, chunk {c + 1}/{chunks}")  # fmt: skip
            for c, (part, s) in work.results():
                path, record = parts / f"chunk-{c:06d}.npz", parts / f"chunk-{c:06d}.json"
                tmp = path.with_name(path.name + ".tmp.npz")
                part.write(tmp)
                record.write_text(json.dumps(s))
                os.replace(tmp, path)  # the chunk counts as done only once it is whole
                done[c], records[c] = part, s
                bar.update(len(part))
            bar.close()
        seconds = sum(r["seconds"] for r in records)
        summary = {**{k: v for k, v in records[-1].items() if k in settings},
                   "networks": n, "chunks": len(records), "seconds": seconds,
                   "seconds_per_network": seconds / n,
                   "moves": sum(r["moves"] for r in records),
                   "accepted": sum(r["accepted"] for r in records), "atoms": atoms,
                   "seed": seed}  # fmt: skip
        summary["closeness"] = _closeness(done, reference_set(atoms=atoms))
        result = Trajectory(np.concatenate([d.positions for d in done]), like.cell, like.numbers,
                            like.pbc, np.concatenate([d.energy for d in done]),
                            {"search": summary, "seconds_per_structure": seconds / n})  # fmt: skip
        result.write(job.tmp)
        job.publish()
        shutil.rmtree(parts)
    return {**summary, "out": str(out)}


def _search_chunk(like: Trajectory, size: int, opts: SearchOptions, seed: int, atoms: int,
                  progress: bool, desc: str) -> tuple[Trajectory, dict[str, Any]]:  # fmt: skip
    """One work unit of :func:`search_file`: ``size`` chains seeded by ``seed``."""
    t0 = time.perf_counter()  # a learnt start's sampling counts in the cost
    starts = None
    if opts.start == "model":
        starts = _model_starts(atoms, size, seed, opts.min_dist)
    start_seconds = time.perf_counter() - t0
    part, s = search(like, size, opts, seed=seed, starts=starts, progress=progress, desc=desc)
    s["seconds"] += start_seconds
    s["start_seconds"] = start_seconds
    s["seconds_per_network"] = s["seconds"] / size
    part.info["seconds_per_structure"] = s["seconds_per_network"]
    return part, s


def _closeness(parts: list[Trajectory], nset) -> dict[str, float]:
    """Closeness of the networks made to the set's training networks, beside its held-out
    networks' (the bar: as far as an independent melt-quench)."""
    from repap.analysis.closeness import CLOSE, closeness

    train = nset.inherent_structures("train")
    made = Trajectory(np.concatenate([p.positions for p in parts]), train.cell, train.numbers)
    c = closeness(made, train)
    out = {"atoms_median": float(np.median(c.atoms)),
           "near_copy_share": float(np.mean(c.atoms >= CLOSE))}  # fmt: skip
    if nset.heldout.any():
        out["heldout_atoms_median"] = float(
            np.median(closeness(nset.inherent_structures("heldout"), train).atoms)
        )
    return out


def _model_starts(atoms: int, n: int, seed: int, min_dist: float) -> Trajectory:
    """``n`` samples of the pretrained whole-structure model of the ``atoms``-atom set (T 0.5,
    no pair closer than ``min_dist``), the learnt start; its sampling time counts."""
    from repap.model.checkpoint import pretrained

    model = pretrained(f"networks-{atoms}")
    return model.sample(n, seed=seed, min_dist=min_dist, temperature=0.5, progress=False)
