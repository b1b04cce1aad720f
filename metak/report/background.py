"""Sampler-diagnostics blocks drawn in a second process while the rest of the page is built.

The trace, rank and predictive-check figures of the MCMC analyses are half of a report's time
(about 13 of 25 s on the bundled results), and they depend on nothing the other sections compute.
So :func:`start_diagnostics` starts ``python -m metak.report.background RESULTS_DIR NAME ...``,
which reads the results directory as the report does and prints those analyses' diagnostics
blocks (``{name: (html, figures)}``, :class:`~metak.report.render.RenderedFigure` lists, pickled)
on standard output, while the main process builds the other sections and then the remaining
analyses' blocks; :meth:`Diagnostics.collect` then takes the child's. A plain subprocess
rather than ``multiprocessing``: it never re-runs the user's script (spawn would, and a script
without an ``if __name__ == "__main__":`` guard would then fit again). The child draws with the
same code on the same files, so the page is byte-identical to a one-process build (tested); if
the child fails for any reason, :meth:`Diagnostics.collect` returns nothing and the caller draws
every block itself, so a real problem surfaces there, as one error, in the main process.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

__all__ = ["Diagnostics", "start_diagnostics", "report_jobs", "child_share", "MIN_MCMC_ANALYSES"]

# Below this many MCMC analyses the section is quick and the child's start-up (importing
# matplotlib and arviz-plots, about 3 s) would cost more than it saves.
MIN_MCMC_ANALYSES = 2
# The child starts about 3-4 s late and the main process has ~5 s more of other sections than
# that (bundled results; an analysis' block takes ~1.6 s): the child takes half of the blocks
# plus this many, so that both finish at about the same time.
CHILD_EXTRA = 2


def child_share(names: list[str]) -> list[str]:
    """The MCMC analyses whose blocks the child draws: the first half plus ``CHILD_EXTRA``."""
    return names[: min(len(names), (len(names) + 1) // 2 + CHILD_EXTRA)]


def report_jobs(jobs: int | None) -> int:
    """Processes the report may use: ``jobs``, else 2 when the machine has 2 or more cores."""
    if jobs is not None:
        return max(1, int(jobs))
    return 2 if (os.cpu_count() or 1) >= 2 else 1


class Diagnostics:
    """The running child that draws the diagnostics section."""

    def __init__(self, process: subprocess.Popen, names: list[str]) -> None:
        self._process = process
        self.names = names  # the analyses whose blocks the child draws

    def collect(self) -> dict[str, tuple[str, list]]:
        """``{name: (html, figures)}`` from the child; empty when it failed (draw them here)."""
        try:
            out, _ = self._process.communicate()
        except BaseException:
            self.stop()
            raise
        if self._process.returncode != 0:
            return {}
        try:
            # Our own child's output, produced by the code below: not untrusted input.
            drawn = pickle.loads(out)  # noqa: S301
        except Exception:  # noqa: BLE001 - a broken child means: draw the blocks here
            return {}
        return drawn if isinstance(drawn, dict) else {}

    def stop(self) -> None:
        """End the child (the report failed or was interrupted)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def start_diagnostics(
    results_dir: Path, mcmc_analyses: list[str], jobs: int | None
) -> Diagnostics | None:
    """Start drawing some diagnostics blocks of ``results_dir`` in a child process.

    Parameters
    ----------
    results_dir : Path
        The (verified) results directory the report is built from.
    mcmc_analyses : list of str
        The MCMC analyses the section draws, in page order; the child takes
        :func:`child_share` of them.
    jobs : int, optional
        Processes the report may use (:func:`report_jobs`).

    Returns
    -------
    Diagnostics or None
        None when one process is asked for, or the section is too small to be worth a child.
    """
    if report_jobs(jobs) < 2 or len(mcmc_analyses) < MIN_MCMC_ANALYSES:
        return None
    names = child_share(mcmc_analyses)
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "metak.report.background",
                str(Path(results_dir).resolve()),
                *names,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a failure is handled by drawing the section in the parent
        )
    except OSError:  # no usable interpreter to start (e.g. an embedded Python): draw here
        return None
    return Diagnostics(process, names)


def _draw(results_dir: Path, names: list[str]) -> dict[str, tuple[str, list]]:
    from metak.report.inputs import load_inputs, open_posterior
    from metak.report.tables import diagnostics_blocks

    inputs = load_inputs(results_dir)
    trees = {name: open_posterior(inputs.posterior_path(name), name) for name in names}
    return diagnostics_blocks(inputs, names, trees)


if __name__ == "__main__":
    sys.stdout.buffer.write(pickle.dumps(_draw(Path(sys.argv[1]), sys.argv[2:])))
