"""Progress of the sampler's chains as occasional plain lines (logs, pipes, worker processes).

nutpie calls back with every chain's progress several times a second; a line is printed when the
slowest chain passes another quarter of its draws, or every :data:`EVERY_SECONDS` at the latest,
so a long fit shows it is alive without flooding a log. On an interactive terminal the fit of a
single analysis in the main process uses nutpie's own progress bar instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

__all__ = ["ChainReporter", "EVERY_SECONDS"]

EVERY_SECONDS = 15.0
_QUARTERS = 4


class ChainReporter:
    """A ``progress_callback`` for ``nutpie.sample`` that says one line now and then.

    Parameters
    ----------
    name : str
        The analysis, named in every line.
    say : callable
        Receives each line.
    """

    def __init__(self, name: str, say: Callable[[str], None]) -> None:
        self._name = name
        self._say = say
        self._quarter = 0
        self._last = time.monotonic()

    def __call__(self, chains: Sequence) -> None:
        """Called by nutpie with one progress record per chain."""
        if not chains:
            return
        fractions = [c.finished_draws / max(c.total_draws, 1) for c in chains]
        quarter = int(min(fractions) * _QUARTERS)
        now = time.monotonic()
        if quarter <= self._quarter and now - self._last < EVERY_SECONDS:
            return
        self._quarter, self._last = max(quarter, self._quarter), now
        phase = "warm-up" if any(c.tuning for c in chains) else "sampling"
        done = ", ".join(
            f"chain {i + 1} {c.finished_draws:,}/{c.total_draws:,}" for i, c in enumerate(chains)
        )
        divergences = sum(c.divergences for c in chains)
        self._say(
            f"    {self._name}: {phase} {100 * min(fractions):.0f}% ({done}; "
            f"{divergences} divergences)"
        )
