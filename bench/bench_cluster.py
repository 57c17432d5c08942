"""Work units as Dask tasks (repap.cluster): what a task costs, and what a second worker gives.

1. Overhead: ``n`` tasks that sleep ``length`` seconds on the embedded 2-worker cluster; the
   ideal is n x length / 2, the rest is Dask's (submit, schedule, run, return, as_completed)
   and repap's. ``extra_info``: seconds of overhead per task. The cluster's start and stop
   are measured apart (they come once per command).
2. Speed-up from 1 worker (in this process: no cluster) to 2 (the embedded cluster, its
   start included) for ``repap dataset``, ``relax`` and ``rebuild`` at sizes of about 20-60 s
   on one core. ``extra_info``: the bytes a task ships (pickled arguments and result).

Run on a quiet machine (nothing else on the cores): ``.venv/bin/pytest bench/bench_cluster.py``.
"""

import pickle
import time

import pytest

import repap
from repap.cluster import tasks
from repap.generation.rebuild import rebuild, rebuild_file
from repap.sim.reference_sets import build_runs, one_run
from repap.sim.relaxation import relax, relax_file

LENGTHS = {0.0: 400, 0.01: 400, 0.1: 80, 1.0: 16}  # task length (s): tasks


@pytest.mark.benchmark(group="cluster: start and stop of the embedded 2-worker cluster")
def test_start_and_stop(benchmark):
    def start_stop():
        with tasks("bench", 2, workers=2) as work:
            assert not work.here

    benchmark.pedantic(start_stop, rounds=3, iterations=1)


@pytest.mark.parametrize("length", list(LENGTHS))
@pytest.mark.benchmark(group="cluster: overhead per task, 2 workers (cluster started)")
def test_overhead(benchmark, length):
    n = LENGTHS[length]
    with tasks("bench", n, workers=2) as work:

        def run():
            for k in range(n):
                work.submit(k, time.sleep, length)
            assert sum(1 for _ in work.results()) == n

        benchmark.pedantic(run, rounds=3, iterations=1)
    ideal = n * length / 2
    per_task = (benchmark.stats.stats.min - ideal) * 2 / n
    benchmark.extra_info |= {"tasks": n, "task_s": length, "ideal_s": ideal,
                             "overhead_ms_per_task": round(1e3 * per_task, 2)}  # fmt: skip


def _speed_up(benchmark, workers, fn, shipped):
    benchmark.extra_info["workers"] = workers
    benchmark.extra_info["bytes_per_task"] = shipped
    benchmark.pedantic(fn, rounds=1, iterations=1)


def _size(*values) -> int:
    return len(pickle.dumps(values))


RUN = {"atoms": 64, "frames": 100, "stride": 250, "melt_time": 10.0, "quench_time": 50.0,
       "equilibrate_time": 5.0}  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.benchmark(group="cluster: repap dataset, 4 runs of 64 atoms (50 ps quench)")
def test_dataset(benchmark, tmp_path, workers):
    args = (1, RUN, 20)
    shipped = _size(args) + _size(one_run(*args))
    counter = iter(range(100))

    def fn():
        build_runs(tmp_path / f"runs-{next(counter)}", 4, relax_every=20, workers=workers,
                   progress=False, **RUN)  # fmt: skip

    _speed_up(benchmark, workers, fn, shipped)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.benchmark(group="cluster: repap relax, 2,400 frames of 64 atoms, 16 chunks")
def test_relax(benchmark, tmp_path, workers):
    frames = repap.reference_set(atoms=64)[::5][:2400]
    path = tmp_path / "in.npz"
    frames.write(path)
    part = frames[:150]
    shipped = _size(part) + _size(relax(part, progress=False))
    counter = iter(range(100))

    def fn():
        relax_file(path, tmp_path / f"out-{next(counter)}.npz", chunk=150, workers=workers,
                   progress=False)  # fmt: skip

    _speed_up(benchmark, workers, fn, shipped)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.benchmark(group="cluster: repap rebuild, 384 networks of 64 atoms, 12 chunks")
def test_rebuild(benchmark, tmp_path, workers):
    networks = repap.reference_set(atoms=64).inherent_structures("train")
    shipped = _size(networks) + _size(rebuild(networks, 32, seed=99))
    counter = iter(range(100))

    def fn():
        rebuild_file(tmp_path / f"out-{next(counter)}.npz", 384, chunk=32, workers=workers,
                     progress=False)  # fmt: skip

    _speed_up(benchmark, workers, fn, shipped)
