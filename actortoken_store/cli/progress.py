"""A one-line progress display for long commands: done fraction, rate and time left."""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable
from typing import IO, Final, TextIO

__all__ = ["ProgressDisplay", "stream_position", "stream_size"]

REDRAW_SECONDS: Final = 0.2
"""Shortest time between two redraws, so a fast import does not flood the terminal."""

_BAR_WIDTH: Final = 24


class ProgressDisplay:
    """Redraws one line on a terminal with records read, rate and, when known, time left.

    The fraction done comes from the input's byte position against its size, so it is
    known for files (compressed ones included, by their compressed bytes) and unknown for
    a pipe. Without a size the line shows records and rate only.

    Args:
        out: the terminal stream to draw on; the caller decides whether it is a terminal.
        total_bytes: size of the input, or None when unknown.
        position: returns the bytes of the input read so far, or None when unknown.
        clock: seconds from a monotonic clock.
    """

    def __init__(
        self,
        out: TextIO,
        total_bytes: int | None,
        position: Callable[[], int | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._total = total_bytes if total_bytes else None
        self._position = position
        self._clock = clock
        self._started = clock()
        self._last_drawn = -REDRAW_SECONDS
        self._drawn = False

    def update(self, records: int) -> None:
        """Redraw the line for ``records`` read, unless the last redraw was too recent."""
        now = self._clock()
        if now - self._last_drawn < REDRAW_SECONDS:
            return
        self._last_drawn = now
        line = self.render(records, now - self._started)
        width = shutil.get_terminal_size().columns
        self._out.write("\r" + line[: max(width - 1, 1)] + "\x1b[K")
        self._out.flush()
        self._drawn = True

    def render(self, records: int, elapsed: float) -> str:
        """Return the text of the line for ``records`` read in ``elapsed`` seconds."""
        rate = records / elapsed if elapsed > 0 else 0.0
        counts = f"{records:,} records  {rate:,.0f} records/s"
        position = self._position()
        if self._total is None or position is None:
            return counts
        fraction = min(position / self._total, 1.0)
        filled = round(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        remaining = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        eta = "--:--" if remaining is None else _clock_time(remaining)
        return f"[{bar}] {fraction:4.0%}  {counts}  ETA {eta}"

    def finish(self) -> None:
        """Erase the line, so that the command's own output starts on a clean line."""
        if self._drawn:
            self._out.write("\r\x1b[K")
            self._out.flush()


def stream_size(stream: IO[bytes]) -> int | None:
    """Return the size of the regular file behind ``stream``, or None (a pipe, a socket)."""
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def stream_position(stream: IO[bytes]) -> int | None:
    """Return the byte offset of ``stream``, or None when it cannot tell (a pipe)."""
    try:
        return stream.tell()
    except (OSError, ValueError):
        return None


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
