"""New networks next to known ones: rebuild one region of a network, relax, keep what is new
and sound (``repap rebuild``). No model is learnt; this is the search that, measured
(docs/results.md, "Rebuilding one region"), gives new networks of held-out melt-quench quality.

Each try starts from one of the given networks' inherent structures, in turn. The ``hole``
atoms nearest a centre atom are taken out; the centre is an atom that is not four-fold
(bonds shorter than ``metrics.CUTOFF``) where the network has any, else any atom. They
are put back one at a time, uniformly in the hole's sphere (radius: the farthest atom taken
out), none closer than ``min_dist`` to any atom (a hole that jams is filled again), or with
``fill="site"`` by the learnt site model (:mod:`.site_fill`: each next to an atom with
a free bond, mostly the hole's rim, not held to the sphere). The
whole structure is relaxed (LAMMPS, SW; to a looser force first, as a screen) and kept when
it is no given network (network identity, ``repap.analysis.networks``), its energy is at most
``max_energy`` (default: the given networks' mean + one standard deviation) and it matches
none kept before: ``n`` distinct networks. Tries go in batches until ``n`` are kept; the
energy ceiling selects, so the kept ones' energy spread is narrower than the networks'.
``regions`` > 1 makes as many holes per try, each around its own defect away from the
others: networks a little farther from their sources at a few times the cost (docs/results.md).

What the kept networks are: new inherent structures, but neighbours of their sources (they
keep about 95 % of a source's bonds: a few bond switches), not networks as independent of
the training ones as a fresh melt-quench's.
"""

from __future__ import annotations

import contextlib
import os
import time
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from repap._checks import check_min_dist, check_positive_int
from repap.data.trajectory import Trajectory
from repap.errors import InputError
from repap.geometry import minimum_image_vectors

TRIES = 200  # draws for one atom before the hole is filled again
REFILLS = 20  # fills of one hole before the try is given up
FIRST_BATCH = 64
MAX_TRIES = 100  # per network asked for (about 7 are needed at the defaults) before giving up
# Relaxed to SCREEN_FMAX first, only those within SCREEN_EV of the ceiling go on to fmax: a
# quarter of the relaxation time, none lost (of 86 kept in 400 tries, measured).
SCREEN_FMAX, SCREEN_EV = 1e-2, 0.02  # eV/A, eV/atom


def wrapped(pos: np.ndarray, like: Trajectory) -> Trajectory:
    """Structures of positions ``pos`` (B, N, 3) wrapped into the cell of ``like`` (its first
    frame's), with its cell, numbers and pbc."""
    cell = like.frame_cells()[0]
    frac = pos @ np.linalg.inv(cell)
    return Trajectory((frac - np.floor(frac)) @ cell, like.cell, like.numbers, like.pbc)


def defects(networks: Trajectory) -> np.ndarray:
    """(F, N) bool: atoms with other than four bonds shorter than repap.analysis.metrics.CUTOFF."""
    from repap.analysis.metrics import CUTOFF, coordination_and_angles

    counts, _ = coordination_and_angles(networks, cutoff=CUTOFF)
    return counts != 4


def holes(networks: Trajectory, sources: np.ndarray, hole: int, rng: np.random.Generator,
          defect: np.ndarray | None = None, regions: int = 1):  # fmt: skip
    """For each source index: its positions with the atoms of ``regions`` holes moved to the
    end, hole after hole, and per atom moved the centre (B, H, 3) and radius (B, H) of its
    hole (H = regions * hole). A hole is the ``hole`` atoms, of those in no earlier hole,
    nearest its centre: a defect (a random atom where there is none) and, after the first,
    one farther than twice each earlier hole's radius from its centre, where there is one.
    ``defect``: the networks' :func:`defects`, where already known."""
    cell = networks.frame_cells()[0]
    src = networks.positions[sources]
    defect = (defects(networks) if defect is None else defect)[sources]
    weight = np.where(defect.any(1, keepdims=True), defect, True).astype(float)
    cum = np.cumsum(weight, 1)
    pick = (cum < rng.random((len(src), 1)) * cum[:, -1:]).sum(1)
    centre = src[np.arange(len(src)), pick]
    r = np.linalg.norm(minimum_image_vectors(src - centre[:, None], cell), axis=-1)
    order = np.argsort(-r, axis=1, kind="stable")  # the first hole last, its centre at the end
    radius = np.take_along_axis(r, order, 1)[:, -hole]
    centres = np.repeat(centre[:, None], regions * hole, 1)
    radii = np.repeat(radius[:, None], regions * hole, 1)
    for k in range(len(src) if regions > 1 else 0):
        taken, far = [order[k, -hole:]], r[k] > 2 * radius[k]
        free = order[k, :-hole]  # in the order they keep
        for j in range(1, regions):
            ok = far[free]
            pool = free[ok & defect[k, free]] if (ok & defect[k, free]).any() else free[ok]
            c = rng.choice(pool if pool.size else free)
            rc = np.linalg.norm(minimum_image_vectors(src[k] - src[k, c], cell), axis=-1)
            near = np.argsort(rc[free], kind="stable")[:hole][::-1]  # its centre last
            taken.append(free[near])
            centres[k, j * hole : (j + 1) * hole] = src[k, c]
            radii[k, j * hole : (j + 1) * hole] = rc[free[near[0]]]
            far &= rc > 2 * rc[free[near[0]]]
            free = np.delete(free, near)
        order[k] = np.concatenate([free, *taken])
    return np.take_along_axis(src, order[..., None], 1), centres, radii


def fill_uniform(
    pos: np.ndarray,
    hole: int,
    centre: np.ndarray,
    radius: np.ndarray,
    cell: np.ndarray,
    min_dist: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """``pos`` (B, N, 3) with its last ``hole`` atoms drawn again, each uniformly in its
    sphere (``centre`` (B, hole, 3), ``radius`` (B, hole) as :func:`holes` gives them), none
    closer than ``min_dist`` to any atom; NaN rows: no fill in REFILLS tries."""
    out = pos.copy()
    n_atoms = pos.shape[1]
    todo = np.arange(len(pos))
    for _ in range(REFILLS):
        active, jammed = todo, []
        for j, i in enumerate(range(n_atoms - hole, n_atoms)):
            waiting = active
            for _ in range(TRIES):
                if not waiting.size:
                    break
                v = rng.normal(size=(waiting.size, 3))
                scale = radius[waiting, j] * rng.random(waiting.size) ** (1 / 3)
                trial = centre[waiting, j] + v * (scale / np.linalg.norm(v, axis=1))[:, None]
                d = np.linalg.norm(
                    minimum_image_vectors(out[waiting, :i] - trial[:, None], cell), axis=-1
                )
                ok = d.min(1) >= min_dist
                out[waiting[ok], i] = trial[ok]
                waiting = waiting[~ok]
            if waiting.size:  # jammed: this hole is filled again next round
                jammed.append(waiting)
                active = np.setdiff1d(active, waiting)
        todo = np.concatenate(jammed) if jammed else np.zeros(0, np.int64)
        if not todo.size:
            return out
    out[todo] = np.nan
    return out


FILLS = ("uniform", "site")


def _check(hole: int, n_atoms: int, min_dist: float, max_energy: float | None, seed: int,
           regions: int = 1, fill: str = "uniform") -> None:  # fmt: skip
    check_positive_int(regions, "regions")
    if fill not in FILLS:
        raise InputError(f"fill: expected one of {FILLS}, got {fill!r}")
    if not (isinstance(hole, Integral) and not isinstance(hole, bool) and 1 <= hole < n_atoms):
        raise InputError(f"hole: expected 1 to {n_atoms - 1} atoms, got {hole!r}")
    if hole * regions >= n_atoms:
        raise InputError(f"regions: {regions} holes of {hole} atoms leave none of the "
                         f"{n_atoms} atoms in place")  # fmt: skip
    if not (isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0):
        raise InputError(f"seed: expected an integer >= 0, got {seed!r}")
    check_min_dist(min_dist)
    if max_energy is not None and not np.isfinite(max_energy):
        raise InputError(f"max_energy: expected an energy in eV/atom, got {max_energy!r}")


def rebuild(
    networks: Trajectory,
    n: int,
    hole: int = 8,
    regions: int = 1,
    max_energy: float | None = None,
    min_dist: float = 2.0,
    seed: int = 0,
    batch: int = 500,
    fmax: float = 1e-3,
    avoid: Trajectory | np.ndarray | None = None,
    fill: str = "uniform",
    progress: bool = False,
    bar: Any = None,
) -> tuple[Trajectory, dict[str, Any]]:
    """``n`` distinct new networks rebuilt from ``networks`` (inherent structures with
    energies, one per network, e.g. ``set.inherent_structures("train")``); see the module
    doc. ``regions``: holes of ``hole`` atoms per try, each around its own defect. A network
    matching one kept before, or one of ``avoid`` (relaxed structures made earlier, or their
    fingerprints), is not new either. ``fill``: how the holes' atoms are put back,
    ``"uniform"`` (at random in the hole) or ``"site"`` (the learnt site model,
    :mod:`repap.generation.site_fill`; cubic cells). Returns (the relaxed structures kept, with
    energies; a summary: tries, kept, seconds, ceiling). ``bar``: a tqdm bar to advance
    instead of a bar of its own (``rebuild_file`` keeps one over all its chunks)."""
    from tqdm.auto import tqdm

    from repap.analysis.networks import TOLERANCE, distance, fingerprints, group
    from repap.sim.relaxation import relax

    check_positive_int(n, "n")
    check_positive_int(batch, "batch")
    _check(hole, networks.n_atoms, min_dist, max_energy, seed, regions, fill)
    if networks.energy is None or not np.isfinite(networks.energy).all():
        raise InputError("networks: need the inherent structures' energies")
    e_net = networks.energy / networks.n_atoms
    ceiling = float(e_net.mean() + e_net.std()) if max_energy is None else float(max_energy)
    known = group(networks)
    before = np.zeros((0, networks.n_atoms * (networks.n_atoms - 1) // 2))
    if avoid is not None and len(avoid):
        before = avoid if isinstance(avoid, np.ndarray) else fingerprints(avoid)
    seen = np.concatenate([before, np.empty((n, before.shape[1]))])  # those made, so far
    m = len(before)
    cell = networks.frame_cells()[0]
    defect = defects(networks)
    rng = np.random.default_rng(seed)
    model = None
    if fill == "site":
        from repap.generation import site_fill

        site_fill.check_cell(cell)
        model = site_fill.load()
    kept, tried, start = [], 0, time.perf_counter()
    own = bar is None
    bar = bar if not own else tqdm(total=n, desc="rebuilding", unit="network",
                                   disable=not progress)  # fmt: skip
    with contextlib.ExitStack() as stack:
        if own:
            stack.enter_context(bar)
        while sum(map(len, kept)) < n:
            have = sum(map(len, kept))  # size the batch to what is still missing
            if tried >= MAX_TRIES * n:
                raise InputError(f"max_energy: {have} of {n} new networks at or below "
                                 f"{ceiling:.4f} eV/atom in {tried} tries (raise it)")  # fmt: skip
            # none kept yet: 1 in 8 before any try, at most 1 in 2 * tried after some
            rate = have / tried if have else (0.125 if not tried else 0.5 / tried)
            size = int(min(batch, max(16, np.ceil(1.2 * (n - have) / rate))))
            if not tried:  # the first batch measures the rate (1 in 3 kept at 216 atoms)
                size = min(size, FIRST_BATCH)
            sources = (tried + np.arange(size)) % len(networks)
            pos, centre, radius = holes(networks, sources, hole, rng, defect, regions)
            if model is None:
                new = fill_uniform(pos, hole * regions, centre, radius, cell, min_dist, rng)
            else:
                new = site_fill.fill(model, pos, hole * regions, cell, min_dist,
                                     seed=int(rng.integers(2**62)))  # fmt: skip
            ok = np.flatnonzero(np.isfinite(new).all((1, 2)))
            tried += size
            if not ok.size:
                raise InputError(f"hole, min_dist: no hole of {hole} atoms could be filled "
                                 f"with atoms {min_dist:g} A apart in {size} tries")  # fmt: skip
            r = relax(wrapped(new[ok], networks), fmax=max(fmax, SCREEN_FMAX), progress=False)
            near = np.flatnonzero(r.structures.energy / networks.n_atoms <= ceiling + SCREEN_EV)
            if not near.size:
                continue
            r = relax(r.structures[near], fmax=fmax, progress=False)
            e = np.where(r.status == "converged", r.structures.energy / networks.n_atoms, np.inf)
            low = np.flatnonzero(e <= ceiling)
            if not low.size:
                continue
            s = r.structures[low]
            s.info["source"] = sources[ok][near][low].tolist()
            fp = fingerprints(s)
            good = []
            for i in np.flatnonzero(known.match(fp) == -1):  # new, and not made already
                if len(good) + have < n and (not m or distance(seen[:m], fp[i]).min() > TOLERANCE):
                    seen[m] = fp[i]
                    m += 1
                    good.append(i)
            if good:
                kept.append(s[np.asarray(good)])
                kept[-1].info["source"] = [s.info["source"][i] for i in good]
            bar.update(len(good))
    out = _joined(kept, networks)
    seconds = time.perf_counter() - start
    summary = {"kept": n, "tried": tried, "seconds": seconds, "seconds_per_network": seconds / n,
               "max_energy_eV_per_atom": ceiling, "hole": hole, "regions": regions,
               "min_dist_A": min_dist, "fill": fill}  # fmt: skip
    out.info["rebuild"] = summary
    out.info["seconds_per_structure"] = seconds / n  # the network report's cost row
    return out, summary


def check_networks_output(out: Path, n: int, chunk: int, atoms: int, overwrite: bool) -> None:
    """The checks ``rebuild_file`` and ``search_file`` share, before any work: the output,
    the sizes, the shipped set of ``atoms``, and the disk for n networks written twice
    (chunks, then OUT)."""
    from repap.data.references import check_set_atoms
    from repap.jobs import check_output, check_space

    check_output(out, overwrite)
    check_positive_int(n, "n")
    check_positive_int(chunk, "chunk")
    check_set_atoms(atoms)
    check_space(out.parent, 2 * n * atoms * 3 * 8, f"n: {n:,} networks of {atoms} atoms")


def rebuild_file(out: str | os.PathLike, n: int, atoms: int = 64, chunk: int = 100,
                 temperature: float | None = None, md_time: float | None = None,
                 progress: bool = True, overwrite: bool = False, workers: int | None = 1,
                 scheduler: str | os.PathLike | None = None,
                 **options: Any) -> dict[str, Any]:  # fmt: skip
    """``repap rebuild``: ``n`` new networks from the built-in ``atoms``-atom set's training
    networks into ``out`` (.npz, .xyz/.extxyz or .db), ``chunk`` at a time into ``OUT.parts/``
    (chunk c seeded by seed + c); a rerun with the same arguments resumes. Each chunk is a task
    (:mod:`repap.cluster`): in this process (``workers=1``, the default), on ``workers`` local
    processes (None: one per core; the command line's default) or on the Dask cluster of
    ``scheduler``; the same networks any way. ``options`` are :func:`rebuild`'s.
    ``temperature`` (K): write, instead of the inherent structures, one
    frame of each at that temperature after ``md_time`` ps (default 0.5) of MD
    (:func:`repap.sim.md.thermalize`, Vink's SW, the potential the built-in sets were made and
    relaxed with), as a melt-quench's frames are; its time is counted in the cost. An
    existing ``out``, or finished chunks of other arguments, are refused unless
    ``overwrite`` (:mod:`repap.jobs`). Returns the summary."""
    import json
    import shutil

    from tqdm.auto import tqdm

    from repap.analysis.networks import TOLERANCE, distance, fingerprints
    from repap.cluster import check_scheduler, check_workers, tasks
    from repap.data.references import reference_set
    from repap.data.trajectory import read
    from repap.jobs import check_memory, claim_parts, intact_chunk, output_job, parts_dir
    from repap.sim.md import check_md

    out = Path(out)
    check_networks_output(out, n, chunk, atoms, overwrite)
    check_workers(workers)
    check_scheduler(scheduler)
    # every network made is kept as a fingerprint, to avoid it
    check_memory(n * atoms * (atoms - 1) / 2 * 8, f"n: {n:,} networks of {atoms} atoms")
    networks = reference_set(atoms=atoms).inherent_structures("train")
    options = {"hole": 8, "regions": 1, "max_energy": None, "min_dist": 2.0, "seed": 0,
               "fill": "uniform", **options}  # fmt: skip
    _check(options["hole"], networks.n_atoms, options["min_dist"], options["max_energy"],
           options["seed"], options["regions"], options["fill"])  # fmt: skip
    if temperature is None and md_time is not None:
        raise InputError("md_time: only with temperature (the MD that makes the frames)")
    if temperature is not None:  # refuse bad MD settings before any rebuilding
        md_time = 0.5 if md_time is None else md_time
        check_md(temperature, md_time, time_name="md_time")
        seed = options.get("seed", 0)
        if isinstance(seed, Integral) and seed + n + 1 >= 900_000_000:  # LAMMPS's seed range
            raise InputError(f"seed: expected below {900_000_000 - n - 1} with temperature "
                             f"(frame k's MD is seeded by seed + 1 + k), got {seed}")  # fmt: skip
    settings = {"n": n, "atoms": atoms, "chunk": chunk, **options}  # defaults included
    if temperature is not None:
        settings |= {"temperature": temperature, "md_time": md_time}
    seed = options.pop("seed")
    parts = parts_dir(out)
    chunks = -(-n // chunk)
    with output_job(out, overwrite) as job:
        claim_parts(parts, settings, announce=True, overwrite=overwrite)
        final: dict[int, tuple[Trajectory, dict]] = {}  # chunk c as written, in order
        drafts: dict[int, tuple[Trajectory, dict]] = {}  # made, not yet checked against earlier
        md: dict[int, tuple[Trajectory, dict]] = {}  # the frames at temperature
        for c in range(chunks):
            stages = (("", final), (".draft", drafts), (".md", md))
            for stage, into in stages if temperature is not None else stages[:2]:
                path, record = _part_paths(parts, c, stage)
                if path.exists() and record.exists() and intact_chunk(path, ("positions",)):
                    into[c] = read(path), json.loads(record.read_text())
        size = [min(chunk, n - c * chunk) for c in range(chunks)]
        todo = [c for c in range(chunks) if c not in final and c not in drafts]
        bar = tqdm(total=n, initial=sum(size[c] for c in final), desc="rebuilding",
                   unit="network", disable=not progress)  # fmt: skip
        # Each chunk is rebuilt as a task (repap.cluster) on its own, seeded by seed + c. In
        # chunk order, this process drops a chunk's networks that an earlier chunk holds and
        # rebuilds as many again, avoiding every earlier one (a task seeded by (seed, c)): the
        # same networks for any number of workers, in any order of finishing.
        units = len(todo) + len(set(drafts) - set(final))  # drafts may need a top-up
        units += 0 if temperature is None else chunks - len(md)
        with bar, tasks("chunk", units, scheduler, workers, needs=("lammps",)) as work:
            ticks = bar if work.here else None  # in this process: a tick per network kept
            if ticks is not None:  # drafts read back count as made, as their task ticked
                bar.update(sum(size[c] for c in drafts if c not in final))
            for c in todo:
                work.submit(("draft", c), rebuild, networks, size[c], seed=seed + c, bar=ticks,
                            **options)  # fmt: skip
            made: list[np.ndarray] = []  # fingerprints of the chunks final so far, in order
            held: dict[int, Trajectory] = {}  # a chunk's networks kept while it is topped up
            prints: dict[int, np.ndarray] = {}  # fingerprints computed before a chunk is final

            def finalize(c: int, part: Trajectory, record: dict) -> None:
                _write_part(part, record, *_part_paths(parts, c, ""))
                final[c] = part, record
                drafts.pop(c, None)
                for stale in _part_paths(parts, c, ".draft"):
                    stale.unlink(missing_ok=True)
                if ticks is None:
                    bar.update(len(part))

            def advance() -> None:  # chunks become final in order, each once
                while len(made) < chunks:
                    c = len(made)
                    if c not in final:
                        if c not in drafts or c in held:
                            return
                        part, record = drafts[c]
                        fp = fingerprints(part)
                        earlier = np.concatenate(made) if made else fp[:0]
                        new = [i for i in range(len(part)) if not len(earlier)
                               or distance(earlier, fp[i]).min() > TOLERANCE]  # fmt: skip
                        if len(new) < len(part):  # some made before: as many again, new
                            held[c] = part[np.asarray(new, dtype=int)]
                            held[c].info["source"] = [part.info["source"][i] for i in new]
                            prints[c] = fp[new]
                            if ticks is not None:
                                bar.update(len(new) - len(part))
                            # held by the cluster, not sent in the task (it grows with n)
                            avoid = work.share(np.concatenate([earlier, fp[new]]), False)
                            missing = len(part) - len(new)  # before the drafts still to run
                            work.submit_first(("top-up", c), rebuild, networks, missing,
                                              seed=_top_up_seed(seed, c), bar=ticks,
                                              avoid=avoid, **options)  # fmt: skip
                            return
                        prints[c] = fp
                        finalize(c, part, record)
                    made.append(prints.pop(c) if c in prints else fingerprints(final[c][0]))
                    if temperature is not None and c not in md:
                        work.submit(("md", c), _thermalized, final[c][0], temperature, md_time,
                                    1 + seed + c * chunk)  # fmt: skip

            advance()
            for (stage, c), (part, record) in work.results():
                if stage == "draft":  # kept on disk, so that a rerun need not make it again
                    _write_part(part, record, *_part_paths(parts, c, ".draft"))
                    drafts[c] = part, record
                elif stage == "top-up":
                    kept = held.pop(c)
                    first = drafts[c][1]
                    both = _joined([kept, part], networks)
                    prints[c] = np.concatenate([prints[c], fingerprints(part)])
                    record = {**first, "tried": first["tried"] + record["tried"],
                              "seconds": first["seconds"] + record["seconds"],
                              "top_up": len(part)}  # fmt: skip
                    finalize(c, both, record)
                else:
                    _write_part(part, record, *_part_paths(parts, c, ".md"))
                    md[c] = part, record
                advance()
        done = [(md if temperature is not None else final)[c][0] for c in range(chunks)]
        records = [final[c][1] for c in range(chunks)]
        tried = sum(r["tried"] for r in records)
        seconds = sum(r["seconds"] for r in records)
        md_seconds = sum(md[c][1]["seconds"] for c in md) if temperature is not None else 0.0
        sources = [k for c in range(chunks) for k in final[c][0].info.get("source", [])]
        s = {k: v for k, v in records[-1].items() if k != "top_up"}
        result = _joined(done, networks)
        seconds += md_seconds
        summary = {**s, "kept": n, "tried": int(tried), "seconds": seconds,
                   "seconds_per_network": seconds / n, "out": str(out),
                   "topped_up": sum(r.get("top_up", 0) for r in records)}  # fmt: skip
        if temperature is not None:
            summary |= {"temperature_K": temperature, "md_time_ps": md_time,
                        "md_seconds": md_seconds}  # fmt: skip
        if "source" in result.info:  # how much of its source each one keeps (closeness)
            summary["closeness_to_source"] = _closeness_to_source(result, networks)
        result.info["rebuild"] = {k: v for k, v in summary.items() if k != "out"}
        result.info["seconds_per_structure"] = seconds / n
        if len(sources) == n:  # (parts written before sources were recorded have none)
            result.info["source"] = sources
        result.write(job.tmp)
        job.publish()
        shutil.rmtree(parts)
    return summary


def _closeness_to_source(result: Trajectory, networks: Trajectory) -> dict[str, float]:
    """Median share of atoms each network keeps on its source, aligned, and the share of
    near-copies (>= 0.9 of atoms): rebuilt networks are their sources' neighbours."""
    from repap.analysis.closeness import CLOSE, closeness

    source = np.asarray(result.info["source"])
    shares = np.array([closeness(result[k : k + 1], networks[source[k] : source[k] + 1]).atoms[0]
                       for k in range(len(result))])  # fmt: skip
    return {"atoms_median": float(np.median(shares)),
            "near_copy_share": float(np.mean(shares >= CLOSE))}  # fmt: skip


def _part_paths(parts: Path, c: int, stage: str) -> tuple[Path, Path]:
    """Chunk c's file and record: final (stage ""), a draft not yet checked against the
    earlier chunks (".draft"), or its frames at temperature (".md")."""
    return parts / f"chunk-{c:06d}{stage}.npz", parts / f"chunk-{c:06d}{stage}.json"


def _top_up_seed(seed: int, c: int) -> int:
    """The seed of chunk c's top-up: apart from every chunk's seed + c."""
    return int(np.random.SeedSequence([seed, c, 1]).generate_state(1, np.uint64)[0] >> 2)


def _thermalized(part: Trajectory, temperature: float, md_time: float,
                 seed: int) -> tuple[Trajectory, dict[str, float]]:  # fmt: skip
    """One frame of each network after md_time ps at temperature, and the seconds taken."""
    from repap.sim.md import thermalize

    t0 = time.perf_counter()
    frames = thermalize(part, temperature, md_time, seed=seed, progress=False)
    return frames, {"seconds": time.perf_counter() - t0}


def _write_part(part: Trajectory, record: dict[str, Any], path: Path, record_path: Path) -> None:
    import json

    tmp = path.with_name(path.name + ".tmp.npz")
    part.write(tmp)
    record_path.write_text(json.dumps(record))
    os.replace(tmp, path)  # the part counts as done only once it is whole


def _joined(parts: list[Trajectory], like: Trajectory) -> Trajectory:
    """The parts as one Trajectory; ``info["source"]``: each network's source (the index of
    the training network it was rebuilt from), where the parts say."""
    out = Trajectory(np.concatenate([d.positions for d in parts]), like.cell, like.numbers,
                     like.pbc, np.concatenate([d.energy for d in parts]))  # fmt: skip
    if all("source" in d.info for d in parts):
        out.info["source"] = [int(k) for d in parts for k in d.info["source"]]
    return out
