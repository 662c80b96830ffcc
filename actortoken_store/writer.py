"""A worker thread that stores batches while the caller reads and parses the next one.

Parsing and validating records costs the client about as much time as storing them costs
the server. Run one after the other, the two add up; with the store calls on a worker
thread they overlap, because psycopg releases the GIL while it waits for the server.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["BackgroundWriter", "background_writer"]


class BackgroundWriter:
    """Runs jobs on one worker thread, one at a time, in the order they are submitted.

    At most one job waits while another runs, so `submit` blocks when the worker falls
    behind and memory holds at most two submitted batches. After a job raises, the worker
    skips the jobs still queued, and the next `submit` or `wait` raises that error in the
    caller's thread.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``; raise the error of an earlier job instead, if one failed."""
        self._raise_error()
        self._jobs.put(job)

    def wait(self) -> None:
        """Wait until every submitted job has run; raise the first error of one."""
        self._jobs.join()
        self._raise_error()

    def close(self) -> None:
        """Let the queued jobs run, then stop the worker. Errors are left to `wait`."""
        self._jobs.put(None)
        self._thread.join()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as error:
                self._error = error
            finally:
                self._jobs.task_done()


@contextmanager
def background_writer(name: str) -> Iterator[BackgroundWriter]:
    """Provide a `BackgroundWriter` and stop its thread when the block ends."""
    writer = BackgroundWriter(name)
    try:
        yield writer
    finally:
        writer.close()
