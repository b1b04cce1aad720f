"""Where work runs: an embedded local Dask cluster, or an existing one (``--scheduler``).

``metak batch`` and ``metak fit --jobs`` hand their work to Dask (``dask.distributed``). By
default :class:`Cluster` starts an embedded cluster: the scheduler inside this process and one
worker *process* per core, each started as ``python -m metak.fitting.dask_worker`` — a fresh
interpreter that never re-runs the user's script (``multiprocessing``'s spawn would, and a script
without an ``if __name__ == "__main__":`` guard would then call :func:`metak.fit` again in every
worker). Workers end with this process even when it is killed (``SIGKILL``): the kernel signals
them (Linux ``PR_SET_PDEATHSIG``) and they also check at start-up that their parent is alive.
The scheduler lives in this process, so it ends with it too.

With ``scheduler="tcp://HOST:PORT"`` the same work goes to an existing cluster (started by hand
with ``dask scheduler`` / ``dask worker``, or by Dask's deployment tools); its workers must be able
to import the same metak version, which :class:`Cluster` checks before handing out any work.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from pathlib import Path

from metak.errors import ConfigError, MetakError

__all__ = [
    "Cluster",
    "ClusterError",
    "default_workers",
    "describe",
    "scheduler_address",
    "worker_versions",
    "START_TIMEOUT",
]

# Seconds to wait for the embedded workers (importing distributed, metak and numpy takes a few
# seconds on a loaded 2-core machine) or for an existing scheduler to answer.
START_TIMEOUT = 120.0
# Seconds to reach an existing scheduler: it is up or the address is wrong.
CONNECT_TIMEOUT = 20.0
_POLL_SECONDS = 0.2
_STOP_SECONDS = 10.0
# The scheduler's and client's own log lines (connections, workers joining and leaving) are not
# the user's business; errors still show.
_QUIET = logging.ERROR
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Packages whose version can change a number: every worker of a cluster must have the same.
_NUMERIC_PACKAGES = ("numpy", "scipy", "pandas", "pymc", "pytensor", "nutpie", "arviz-stats")


class ClusterError(MetakError):
    """The cluster could not be reached or lost every worker."""


def default_workers(n_tasks: int | None = None) -> int:
    """One worker per core (the cores this process may use), at most one per task."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    return max(1, cores if n_tasks is None else min(cores, n_tasks))


def _metak_root() -> str:
    """The folder holding the ``metak`` package this process imported (for the workers)."""
    return str(Path(__file__).resolve().parents[2])


class Cluster:
    """A Dask client on an embedded local cluster or an existing one; a context manager.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the embedded cluster (default: one per core). Ignored with
        ``scheduler``.
    scheduler : str, optional
        Address of an existing Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    check_version : bool
        With ``scheduler``: refuse workers that import a different metak.

    Raises
    ------
    ClusterError
        When the scheduler cannot be reached, the embedded workers do not start, or the
        cluster's workers cannot import this metak.
    """

    def __init__(
        self, workers: int | None = None, scheduler: str | None = None, check_version: bool = True
    ) -> None:
        self.workers = workers or default_workers()
        self.scheduler = scheduler
        self.check_version = check_version
        self.client = None
        self._local = None
        self._processes: list[subprocess.Popen] = []

    # -- start and stop ---------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        """Start (or connect to) the cluster."""
        try:
            if self.scheduler is None:
                self._start_local()
            else:
                self._connect()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the embedded cluster's workers and scheduler, or disconnect."""
        self.close()

    def _connect(self) -> None:
        from distributed import Client

        try:
            self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise ClusterError(
                f"error: --scheduler {self.scheduler}: cannot reach the Dask scheduler ({err}); "
                "fix: start it (`dask scheduler`) and check the address and port"
            ) from None
        _quiet_loggers()
        self._wait_for_workers(1)
        if self.check_version:
            self._check_workers_import_metak()

    def _start_local(self) -> None:
        from distributed import Client, LocalCluster

        self._local = LocalCluster(
            n_workers=0,
            processes=True,  # tcp, so the worker processes can connect
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            silence_logs=_QUIET,
            # No dashboard; the scheduler's HTTP endpoints (metrics) on a free local port, not
            # on 8787, which another cluster (or another metak) may hold.
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
        address = self._local.scheduler_address
        env = dict(os.environ)
        # The workers import the metak this process imported, wherever it was imported from.
        env["PYTHONPATH"] = os.pathsep.join([_metak_root(), *filter(None, [env.get("PYTHONPATH")])])
        # One worker per core, one thread each: BLAS libraries must not start a thread per core
        # in every worker (what Dask's own nanny sets for its workers, too).
        env.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
        for index in range(self.workers):
            self._processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "metak.fitting.dask_worker",
                        address,
                        f"metak-worker-{index}",
                        str(os.getpid()),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,  # stdout is the user's (e.g. a script's output)
                    env=env,
                )
            )
        self.client = Client(address, timeout=START_TIMEOUT)
        _quiet_loggers()
        self._wait_for_workers(self.workers)

    def _wait_for_workers(self, wanted: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while len(self.client.scheduler_info(n_workers=-1)["workers"]) < wanted:
            self.check_local_workers()
            if time.monotonic() > deadline:
                where = self.scheduler or "the embedded cluster"
                raise ClusterError(
                    f"error: no Dask worker joined {where} within {START_TIMEOUT:.0f} s; "
                    "fix: start workers with `dask worker <scheduler address>`"
                )
            time.sleep(_POLL_SECONDS)

    def _check_workers_import_metak(self) -> None:
        try:
            found = self.client.run(worker_versions)
        except Exception as err:  # noqa: BLE001 - any failure on a worker needs the same fix
            raise ClusterError(
                f"error: --scheduler {self.scheduler}: the workers cannot import metak ({err}); "
                "fix: install this metak on every worker (or set PYTHONPATH for `dask worker`)"
            ) from None
        here = worker_versions()
        for worker, versions in sorted(found.items()):
            for name, version in here.items():
                if versions.get(name) != version:
                    raise ClusterError(
                        f"error: --scheduler {self.scheduler}: worker {worker} has {name} "
                        f"{versions.get(name)}, this process {version}; results would depend on "
                        f"which worker fitted a review; fix: install the same versions everywhere"
                    )

    def close(self) -> None:
        """Disconnect, and end the embedded cluster's worker processes and scheduler."""
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001, S110 - closing after a failure must not mask it
                pass
            self.client = None
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + _STOP_SECONDS
        for process in self._processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes = []
        if self._local is not None:
            self._local.close()
            self._local = None

    # -- running work -----------------------------------------------------------------------

    def check_local_workers(self) -> None:
        """Raise when every embedded worker process has ended (nothing would run the work)."""
        if self._processes and all(p.poll() is not None for p in self._processes):
            codes = ", ".join(str(p.returncode) for p in self._processes)
            raise ClusterError(
                f"error: every metak worker process ended unexpectedly (exit codes {codes}); "
                "fix: see the messages above, or run with --jobs 1"
            )

    def run(
        self,
        function: Callable,
        tasks: Iterable[tuple[str, tuple, float]],
        one_per_thread: bool = False,
    ) -> Iterator[tuple[str, object]]:
        """Run ``function(*args)`` for each ``(key, args, priority)``; yield ``(key, result)``.

        Results come in completion order; higher ``priority`` starts first. A task's exception
        is re-raised here and the tasks not yet finished are cancelled (also when the caller
        stops iterating). A task whose worker dies is run again on another worker (Dask does
        this), so ``function`` must give the same result whichever worker runs it.

        ``one_per_thread``: hand the tasks out highest priority first, at most one per worker
        thread at a time, the next when one finishes (list scheduling), for a few long tasks of
        unequal cost (``fit``'s MCMC analyses). Submitted all at once, Dask assigns each task to
        a worker as it arrives — before it has seen the later, higher-priority ones — so the
        first two would start first whatever their priority, and each worker's queue would be
        fixed from the start. Without it every task is submitted at once (a batch's many equal
        chunks), so workers that join the cluster later get work too.
        """
        finished: queue.Queue = queue.Queue()
        futures = {}
        pending = sorted(tasks, key=lambda task: -task[2])  # stable: equal priorities in order
        pending.reverse()  # pop() from the end: highest priority first
        slots = max(1, sum(self.client.nthreads().values())) if one_per_thread else len(pending)

        def submit() -> None:
            key, args, priority = pending.pop()
            future = self.client.submit(function, *args, key=key, pure=False, priority=priority)
            futures[future.key] = future
            # Called in the client's event-loop thread; the waiting happens in this thread.
            future.add_done_callback(finished.put)

        try:
            while pending and len(futures) < slots:
                submit()
            while futures:
                try:
                    future = finished.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    self.check_local_workers()
                    continue
                if futures.pop(future.key, None) is not None:
                    result = _result(future)
                    if pending:
                        submit()
                    yield future.key, result
        finally:
            for future in futures.values():
                future.cancel()


def _result(future) -> object:
    """A finished task's result; its exception re-raised, a task that killed workers as one line."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        raise ClusterError(
            f"error: every worker that ran task {future.key} died (Dask gave up after several: "
            "out of memory, or killed); fix: check the workers' memory and logs, then run the "
            "same command again (finished work is kept)"
        ) from None


def worker_versions() -> dict[str, str | None]:
    """The versions of metak and of the packages its numbers depend on, in this process."""
    versions: dict[str, str | None] = {}
    for name in ("metak", *_NUMERIC_PACKAGES):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _quiet_loggers() -> None:
    for name in ("distributed", "distributed.client", "distributed.scheduler"):
        logging.getLogger(name).setLevel(_QUIET)


def describe(cluster: Cluster) -> str:
    """``"2 worker processes"`` or ``"the Dask cluster at tcp://..."`` for progress lines."""
    if cluster.scheduler is None:
        return f"{cluster.workers} worker process{'es' if cluster.workers != 1 else ''}"
    return f"the Dask cluster at {cluster.scheduler}"


def scheduler_address(text: str) -> str:
    """Check a ``--scheduler`` address (``tcp://HOST:PORT`` or another Dask protocol).

    Raises
    ------
    ConfigError
        One line with the fix when it is not an address Dask can dial.
    """
    protocols = ("tcp://", "tls://", "ucx://", "ws://", "wss://")
    if not text.startswith(protocols) or ":" not in text.split("://", 1)[1]:
        raise ConfigError(
            f"error: --scheduler {text!r}: not a Dask scheduler address; fix: give it as "
            "tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786 (printed by `dask scheduler`)"
        )
    return text
