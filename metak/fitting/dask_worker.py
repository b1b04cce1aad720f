"""One worker process of the embedded Dask cluster (:mod:`metak.fitting.cluster`).

Started as ``python -m metak.fitting.dask_worker ADDRESS NAME PARENT_PID``: a fresh interpreter
(never a re-run of the user's script) that serves one Dask worker with one thread until the
scheduler closes, and ends with its parent. The worker imports metak and PyMC when its first task
arrives, and keeps them (and its compiled models, :mod:`metak.fitting.mcmc.compiled`) for the
tasks after it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# One thread: every task is one analysis or one chunk of reviews, single-threaded apart from
# nutpie's chains; parallelism comes from the number of worker processes.
_THREADS = 1


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent dies (even by SIGKILL).

    The parent may have died while this process was starting (the signal is only sent for
    deaths after the call), so the parent is checked afterwards, and this process ends if it is
    gone.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the worker ends when the scheduler closes
        pass
    if os.getppid() != parent:
        os._exit(1)


async def _serve(address: str, name: str) -> None:
    from distributed import Worker

    # memory_limit=0: no Dask memory manager. metak checks the memory a fit needs before any
    # work starts, and without a nanny a worker past Dask's limit could only pause for ever.
    async with Worker(
        address, nthreads=_THREADS, name=name, memory_limit=0, dashboard=False
    ) as worker:
        await worker.finished()


def main(argv: list[str] | None = None) -> int:
    """Serve one Dask worker for the scheduler at ``argv[0]``; return the exit code."""
    address, name, parent = argv if argv is not None else sys.argv[1:]
    _die_with_parent(int(parent))
    # SIGTERM (from the parent's clean-up, or the kernel when the parent died) ends the process
    # at once; there is nothing to save, the parent runs any unfinished task again elsewhere.
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    import distributed  # noqa: F401 - configures its loggers on import; quieten them after

    for logger in ("distributed", "distributed.worker", "distributed.core"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    asyncio.run(_serve(address, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
