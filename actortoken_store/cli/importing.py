"""``actortoken-store import``: load actor tokens from a JSON, JSON Lines or gzip file."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``import`` command."""
    from actortoken_store.importer import DEFAULT_IMPORT_BATCH_SIZE

    parser = subparsers.add_parser(
        "import",
        help="import actor tokens from a file or standard input",
        description="Import Clerk actor tokens: one JSON object, a JSON array or JSON Lines, "
        "in snake_case or camelCase, optionally gzip-compressed. Each rejected record is "
        "reported with its line and reason, and the valid records are stored anyway unless "
        "--strict is given. Records that contradict a stored token (conflicts) are not "
        "applied and are listed the same way; they do not change the exit status. Exit "
        "status: 0 when every record was valid, 1 when any was rejected, 2 on usage, "
        "configuration or connection errors.",
    )
    parser.add_argument("path", metavar="PATH", help="file to read, or - for standard input")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="store nothing if any record is rejected (one transaction for the whole input)",
    )
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_IMPORT_BATCH_SIZE,
        metavar="N",
        help="records stored and committed together; default: %(default)s",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="show no progress line and no timing; the summary is still printed",
    )
    parser.set_defaults(handler=_import)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _import(args: argparse.Namespace) -> int:
    import sys
    import time
    from contextlib import ExitStack

    from sqlalchemy.orm import sessionmaker

    from actortoken_store.cli.database import announce, open_database
    from actortoken_store.cli.main import EXIT_OK, EXIT_REJECTED
    from actortoken_store.cli.progress import ProgressDisplay, stream_position, stream_size
    from actortoken_store.importer import import_tokens
    from actortoken_store.sources import STDIN, open_source, source_name

    # Open a file first, so that a missing file is reported before any connection.
    # Standard input is left alone, because a check could consume data from it.
    if args.path != STDIN:
        with open_source(args.path):
            pass
    name = source_name(args.path)

    with ExitStack() as stack:
        database = stack.enter_context(open_database(args))
        binary = (
            sys.stdin.buffer if args.path == STDIN else stack.enter_context(open(args.path, "rb"))
        )
        display = None
        # The progress line goes to stderr, and only to a terminal: a log file or a pipe
        # would collect every redraw.
        if not args.quiet and sys.stderr.isatty():
            display = ProgressDisplay(
                sys.stderr, stream_size(binary), lambda: stream_position(binary)
            )
        started = time.monotonic()
        try:
            report = import_tokens(
                sessionmaker(database.engine),
                binary,
                strict=args.strict,
                batch_size=args.batch_size,
                schema=database.schema,
                progress=None if display is None else display.update,
            )
        finally:
            if display is not None:
                display.finish()
        elapsed = time.monotonic() - started

    if not args.quiet:
        rate = report.records / elapsed if elapsed > 0 else 0.0
        announce(
            f"read {_count(report.records, 'record')} in {elapsed:.1f} s ({rate:,.0f} records/s)"
        )
    print(f"inserted: {report.inserted}")
    print(f"updated: {report.updated}")
    print(f"unchanged: {report.unchanged}")
    print(f"conflict: {report.conflict}")
    print(f"rejected: {report.rejected}")
    for rejection in report.rejections:
        print(f"{name}:{rejection.line}: {rejection.reason}")
    unlisted = report.rejected - len(report.rejections)
    if unlisted:
        print(f"{name}: {_count(unlisted, 'more rejected record')} not listed")
    for conflict in report.conflicts:
        print(f"{name}:{conflict.line}: {conflict.reason}")
    unlisted_conflicts = report.conflict - len(report.conflicts)
    if unlisted_conflicts:
        print(f"{name}: {_count(unlisted_conflicts, 'more conflicting record')} not listed")
    if report.rolled_back:
        print("nothing was stored: --strict rolls back the whole import when a record is rejected")
    return EXIT_REJECTED if report.rejected else EXIT_OK


def _count(number: int, noun: str) -> str:
    """Return ``number`` and ``noun``, plural unless the number is 1: "1 record", "2 records"."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"
