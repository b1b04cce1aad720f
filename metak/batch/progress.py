"""The progress of a batch over its reviews: a bar on a terminal, occasional lines in a log.

On an interactive terminal one line is redrawn in place (at most a few times a second); written
to a file or pipe, a plain line is printed at every tenth of the reviews or every
:data:`LOG_EVERY_SECONDS`, whichever comes first, so a log shows the batch is alive without
filling up. Written here rather than with a progress-bar library: tqdm is not a dependency, and
rich's bar does not print such lines to a log.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ReviewProgress", "LOG_EVERY_SECONDS"]

LOG_EVERY_SECONDS = 60.0
_REDRAW_SECONDS = 0.25
_WIDTH = 30
_TENTHS = 10


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ReviewProgress:
    """Progress over ``total`` reviews, ``done`` of which finished before this run started.

    Parameters
    ----------
    total : int
        Reviews in the batch.
    done : int
        Reviews already done (checkpointed by an earlier run).
    stream : file, optional
        Where to write (default: standard error); None writes nothing (``--quiet``).
    """

    def __init__(self, total: int, done: int = 0, stream: TextIO | None = sys.stderr) -> None:
        self.total = max(total, 1)
        self.start_done = self.done = done
        self.stream = stream
        self.started = time.monotonic()
        self._drawn = 0.0
        self._logged_tenth = int(_TENTHS * done / self.total)
        self._logged_at = self.started
        self.terminal = bool(stream is not None and stream.isatty())

    def _line(self) -> str:
        fraction = self.done / self.total
        elapsed = time.monotonic() - self.started
        finished_here = self.done - self.start_done
        left = ""
        if 0 < finished_here < self.total - self.start_done:
            remaining = elapsed / finished_here * (self.total - self.done)
            left = f", about {_clock(remaining)} left"
        return (
            f"{self.done:,}/{self.total:,} reviews ({100 * fraction:.0f}%), "
            f"{_clock(elapsed)} elapsed{left}"
        )

    def advance(self, reviews: int) -> None:
        """``reviews`` more reviews are done."""
        self.done = min(self.total, self.done + reviews)
        if self.stream is None:
            return
        now = time.monotonic()
        if self.terminal:
            if now - self._drawn >= _REDRAW_SECONDS or self.done == self.total:
                filled = int(_WIDTH * self.done / self.total)
                bar = "#" * filled + "." * (_WIDTH - filled)
                self.stream.write(f"\r[{bar}] {self._line()}\033[K")
                self.stream.flush()
                self._drawn = now
            return
        tenth = int(_TENTHS * self.done / self.total)
        if tenth > self._logged_tenth or now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_tenth, self._logged_at = tenth, now
            print(f"    {self._line()}", file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar's line (terminal)."""
        if self.stream is not None and self.terminal:
            self.stream.write("\n")
            self.stream.flush()
