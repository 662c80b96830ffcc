"""One import in a process of its own, so that its peak memory can be measured alone.

``python -m actortoken_store.bench.probe URL PATH`` imports PATH with `import_tokens`, as
the ``import`` command does, and prints one JSON object: the records read and the seconds
the import took, from opening the input to the last commit. The parent reads the child's
peak resident memory from ``wait4``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from sqlalchemy.orm import sessionmaker

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
        report = import_tokens(sessionmaker(engine), path)
        elapsed = (stopwatch_ns() - started) / 1e9
    finally:
        engine.dispose()
    print(json.dumps({"records": report.records, "rejected": report.rejected, "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
