"""Work units as Dask tasks (repap.cluster), on a real local cluster of 2 worker processes:
each command's output equals the one-process run's, byte for byte; a worker killed with
SIGKILL mid-run, or the client killed and run again, still gives it whole; a scheduler that
does not answer, or a worker without LAMMPS, gets one line and exit 2."""

import filecmp
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import repap
from repap.cli import main
from repap.cluster import ClusterError, local_cluster, tasks
from repap.data.shipped import model_file
from repap.generation.chunked import generate
from repap.generation.rebuild import rebuild_file
from repap.generation.search import search_file
from repap.sim.reference_sets import build_runs
from repap.sim.relaxation import relax_file

distributed = pytest.importorskip("distributed")

TINY = {"atoms": 16, "frames": 20, "stride": 10, "melt_time": 2.0, "quench_time": 2.0,
        "equilibrate_time": 0.5}  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and 2 single-threaded worker processes, joined by address (--scheduler)."""
    with local_cluster(2) as lc:
        yield lc


@pytest.fixture(scope="module")
def structures(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "in.npz"
    repap.reference()[::500][:24].write(path)  # 24 frames of the 30-atom run
    return path


def test_relax_on_a_cluster_writes_the_one_process_file(tmp_path, structures, cluster):
    relax_file(structures, tmp_path / "one.extxyz", chunk=4, workers=1, progress=False)
    relax_file(structures, tmp_path / "dask.extxyz", chunk=4, scheduler=cluster.scheduler_address,
               progress=False)  # fmt: skip
    relax_file(structures, tmp_path / "local.extxyz", chunk=4, workers=2, progress=False)
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "dask.extxyz", shallow=False)
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "local.extxyz", shallow=False)
    assert len(repap.read(tmp_path / "one.extxyz")) == 24


def test_generate_on_a_cluster_writes_the_one_process_file(tmp_path, cluster):
    model = model_file("recommended")
    args = {"n": 300, "batch_size": 50, "temperature": 0.5, "progress": False}
    generate(model, out=tmp_path / "one.extxyz", **args)
    generate(model, out=tmp_path / "dask.extxyz", scheduler=cluster.scheduler_address, **args)
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "dask.extxyz", shallow=False)


def test_rebuild_gives_the_same_networks_for_any_workers(tmp_path, cluster):
    """Chunks are made apart and checked in order: a network an earlier chunk holds is made
    again (hole 2 makes such repeats; the run must take that path), the same either way."""
    args = {"n": 20, "chunk": 4, "hole": 2, "progress": False}
    one = rebuild_file(tmp_path / "one.extxyz", workers=1, **args)
    dask = rebuild_file(tmp_path / "dask.extxyz", scheduler=cluster.scheduler_address, **args)
    assert one["topped_up"] > 0 and dask["topped_up"] == one["topped_up"]
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "dask.extxyz", shallow=False)
    from repap.analysis.networks import group

    assert len(group(repap.read(tmp_path / "one.extxyz")).representatives) == 20  # distinct


def test_search_on_a_cluster_writes_the_one_process_networks(tmp_path, cluster):
    args = {"n": 6, "chunk": 2, "moves_per_atom": 0.2, "progress": False}
    search_file(tmp_path / "one.extxyz", workers=1, **args)
    search_file(tmp_path / "dask.extxyz", scheduler=cluster.scheduler_address, **args)
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "dask.extxyz", shallow=False)


def test_dataset_on_a_cluster_writes_the_one_process_runs(tmp_path, cluster):
    one = build_runs(tmp_path / "one", 3, relax_every=5, workers=1, progress=False, **TINY)
    dask = build_runs(tmp_path / "dask", 3, relax_every=5, scheduler=cluster.scheduler_address,
                      progress=False, **TINY)  # fmt: skip
    for a, b in zip(one, dask, strict=True):
        x, y = repap.read(a), repap.read(b)
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.energy, y.energy)
        timing = ("md_seconds", "relax_seconds")  # measured, so never equal
        assert {k: v for k, v in x.info["run"].items() if k not in timing} == {
            k: v for k, v in y.info["run"].items() if k not in timing}  # fmt: skip


def test_a_worker_killed_mid_run_still_gives_the_whole_output(tmp_path, structures, cluster):
    """SIGKILL to a worker while it relaxes a chunk: Dask runs that task again elsewhere."""
    relax_file(structures, tmp_path / "one.extxyz", chunk=2, workers=1, progress=False)
    with distributed.Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_a_busy_worker() -> None:
            for _ in range(2000):
                busy = [w for w, keys in client.processing().items() if keys]
                if busy and (tmp_path / "dask.extxyz.parts").is_dir():
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(pids[busy[0]])
                    return
                time.sleep(0.005)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        relax_file(structures, tmp_path / "dask.extxyz", chunk=2, progress=False,
                   scheduler=cluster.scheduler_address)  # fmt: skip
        killer.join()
        assert killed, "no worker was busy to kill"
        client.wait_for_workers(2, timeout=30)  # its nanny started it again
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "dask.extxyz", shallow=False)


def test_a_killed_client_resumes_from_what_it_wrote(tmp_path, structures, cluster):
    relax_file(structures, tmp_path / "one.extxyz", chunk=2, workers=1, progress=False)
    argv = [sys.executable, "-m", "repap", "relax", str(structures), "--out", "dask.extxyz",
            "--chunk", "2", "--scheduler", cluster.scheduler_address, "--quiet"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "dask.extxyz.parts"
    for _ in range(3000):
        if len(list(parts.glob("chunk-*.npz"))) >= 2:
            break
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    kept = len(list(parts.glob("chunk-*.npz")))
    assert 2 <= kept < 12 and not (tmp_path / "dask.extxyz").exists()
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming, {kept}" in done.stdout + done.stderr
    assert filecmp.cmp(tmp_path / "one.extxyz", tmp_path / "dask.extxyz", shallow=False)


def test_a_scheduler_that_does_not_answer_gets_one_line(tmp_path, structures, capsys):
    t0 = time.perf_counter()
    rc = main(["relax", str(structures), "--out", str(tmp_path / "o.npz"), "--scheduler",
               "tcp://127.0.0.1:9"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "--scheduler tcp://127.0.0.1:9: no Dask scheduler answered" in err
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "o.npz.parts").exists()  # refused before any work
    assert main(["dataset", str(tmp_path / "r"), "--runs", "1", "--scheduler",
                 str(tmp_path / "nothing.json")]) == 2  # fmt: skip
    assert "no such scheduler file" in capsys.readouterr().err


def test_a_worker_without_lammps_or_with_another_repap_is_named(tmp_path, structures):
    """A worker that cannot import lammps (hidden by a preload), or has another repap, is
    refused before any task."""
    hide = tmp_path / "hide_lammps.py"
    hide.write_text("import sys\nsys.modules['lammps'] = None\n")
    with local_cluster(1, preload=[str(hide)]) as lc:
        with pytest.raises(ClusterError, match=r"worker tcp://\S+ on \S+: LAMMPS's Python "
                           "module \\(lammps\\) not installed there"):  # fmt: skip
            relax_file(structures, tmp_path / "o.npz", scheduler=lc.scheduler_address,
                       progress=False)  # fmt: skip
        # a module a task imports, missing on its worker, is named with the worker too
        with tasks("chunk", 1, scheduler=lc.scheduler_address) as work:
            work.submit(0, __import__, "lammps")
            with pytest.raises(ClusterError, match=r"worker tcp://\S+ on \S+: import of lammps"):
                list(work.results())
    other = tmp_path / "other_repap.py"
    other.write_text("import importlib.metadata as m\nreal = m.version\n"
                     "m.version = lambda n: '0.0.1' if n == 'repap' else real(n)\n")  # fmt: skip
    with local_cluster(1, preload=[str(other)]) as lc:
        with pytest.raises(ClusterError, match=r"worker tcp://\S+ on \S+: repap 0.0.1, this is "):
            relax_file(structures, tmp_path / "o.npz", scheduler=lc.scheduler_address,
                       progress=False)  # fmt: skip


def test_one_worker_or_one_unit_runs_here_and_bad_workers_are_refused():
    with tasks("chunk", 5, workers=1) as work:
        assert work.here
    with tasks("chunk", 1, workers=4) as work:
        assert work.here
    with pytest.raises(ValueError, match="workers: expected an integer >= 1, got 0"):
        with tasks("chunk", 5, workers=0):
            pass
    with tasks("chunk", 4, workers=2) as work:
        assert not work.here and work.workers == 2
        pids = list(work.client.run(os.getpid).values())
        for k in range(4):
            work.submit(k, os.getpid)
        ran = {pid for _, pid in work.results()}
    assert len(pids) == 2 and ran <= set(pids) and os.getpid() not in pids
    for pid in pids:  # the embedded cluster's workers end with it
        deadline = time.perf_counter() + 10
        while Path(f"/proc/{pid}").exists() and time.perf_counter() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists()
    with tasks("chunk", 0, scheduler="tcp://127.0.0.1:9") as work:  # nothing to do: no cluster
        assert work.here


def test_a_rebuild_stopped_in_a_top_up_resumes_to_the_same_networks(tmp_path, monkeypatch):
    """Stopped while it makes a chunk's repeats again, a rerun starts from the drafts kept
    on disk and ends with the networks of an uninterrupted run."""
    import repap.generation.rebuild as rb

    args = {"n": 20, "chunk": 4, "hole": 2, "progress": False, "workers": 1}
    whole = rebuild_file(tmp_path / "whole.extxyz", **args)
    assert whole["topped_up"] > 0
    real = rb.rebuild

    def stop_at_a_top_up(*a, **k):
        if k.get("avoid") is not None:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(rb, "rebuild", stop_at_a_top_up)
    with pytest.raises(KeyboardInterrupt):
        rebuild_file(tmp_path / "again.extxyz", **args)
    assert list((tmp_path / "again.extxyz.parts").glob("chunk-*.draft.npz"))
    monkeypatch.setattr(rb, "rebuild", real)
    again = rebuild_file(tmp_path / "again.extxyz", **args)
    assert again["topped_up"] == whole["topped_up"]
    assert filecmp.cmp(tmp_path / "whole.extxyz", tmp_path / "again.extxyz", shallow=False)
