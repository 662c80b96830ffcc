"""Standard output that keeps a command running after its reader goes away.

When stdout is a pipe whose reader exits early (``| head -1``), the next write raises
`BrokenPipeError`. Aborting the command there would lose its outcome, because an import
has already committed or rolled back and its exit status must still report whether
records were rejected. The guard discards further output instead, so the command finishes
and returns its own exit code.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["tolerate_closed_stdout"]


class _ReaderTolerantStream:
    """A text stream that drops writes once its reader has closed the pipe."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._discard_output()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._discard_output()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _discard_output(self) -> None:
        self.reader_gone = True
        # Point the descriptor at /dev/null, so that text still buffered in the real stream
        # does not fail again at the interpreter's final flush.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)


@contextlib.contextmanager
def tolerate_closed_stdout() -> Iterator[None]:
    """Replace `sys.stdout` for the duration with a stream that survives a closed pipe."""
    original = sys.stdout
    sys.stdout = _ReaderTolerantStream(original)
    try:
        yield
    finally:
        sys.stdout = original
