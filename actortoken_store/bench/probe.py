"""One import in a process of its own, so that its peak memory can be measured alone.

``python -m actortoken_store.bench.probe URL PATH`` imports PATH with `import_tokens`, as
the ``import`` command does, and prints one JSON object: the records read, the seconds the
import took (from opening the input to the last commit) and the process's peak resident
memory.

The peak comes from ``VmHWM`` in ``/proc/self/status``, which counts this program only.
The ``ru_maxrss`` that ``wait4`` reports for a child is no substitute on Linux: it starts
from the parent's peak at the moment of ``exec``, so it shows the bench's own memory.
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Sequence

from sqlalchemy.orm import sessionmaker

from actortoken_store.bench.database import BENCH_SECRETS
from actortoken_store.bench.timing import stopwatch_ns
from actortoken_store.config import create_engine
from actortoken_store.importer import import_tokens

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    """Import ``argv[1]`` into the database at ``argv[0]``; print records and seconds."""
    url, path = argv
    engine = create_engine(url)
    try:
        with engine.connect():
            pass  # connect before the clock starts
        started = stopwatch_ns()
        report = import_tokens(sessionmaker(engine), path, secrets=BENCH_SECRETS)
        elapsed = (stopwatch_ns() - started) / 1e9
    finally:
        engine.dispose()
    result = {
        "records": report.records,
        "rejected": report.rejected,
        "seconds": elapsed,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))
    return 0


def peak_rss_mb() -> float:
    """Return the peak resident memory of this process in MiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # NOTE: outside Linux, ru_maxrss may include the parent's memory at exec time, and
    # macOS reports it in bytes rather than kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
