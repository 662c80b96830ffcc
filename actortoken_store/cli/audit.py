"""``actortoken-store audit``: read the event history, and prune old events.

Subcommands: ``actors`` (per-actor summary), ``actor SUB`` and ``user USER_ID``
(impersonations), ``token ID`` (one token's timeline), ``stale`` (pending tokens older than
an age), ``prune --before DATE``. Query output goes to stdout as a table, CSV with a header
row, or JSON with one object per line. An empty result prints only the header (nothing for
JSON) and exits 0. When more rows follow, stderr names the ``--after`` cursor of the next
page.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from actortoken_store.audit import AuditPage
from actortoken_store.audit.operations import MAX_PAGE_SIZE
from actortoken_store.cli.timeargs import parse_duration, parse_instant
from actortoken_store.model import TokenStatus
from actortoken_store.repository import ActorTokenRepository

__all__ = ["parse_duration", "parse_instant", "register"]

EXIT_OK: Final = 0

Columns = Sequence[str]


def _page_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        message = f"invalid limit {value!r}: use a whole number from 1 to {MAX_PAGE_SIZE}"
        raise argparse.ArgumentTypeError(message)
    return size


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit`` and its subcommands."""
    audit = subparsers.add_parser(
        "audit",
        help="query the audit trail of tokens, or prune old events",
        description="Query the event history that the database records for every token.",
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="QUERY", required=True)

    actors = commands.add_parser("actors", help="per-actor summary of the tokens issued")
    _add_window(actors)
    _add_output(actors)
    actors.set_defaults(handler=_actors)

    actor = commands.add_parser("actor", help="impersonations by one actor, newest first")
    actor.add_argument("sub", metavar="SUB", help="the actor's sub (the impersonator)")
    _add_window(actor)
    _add_status(actor)
    _add_output(actor)
    actor.set_defaults(handler=_impersonations)

    user = commands.add_parser("user", help="impersonations of one user, newest first")
    user.add_argument("user_id", metavar="USER_ID", help="the impersonated user")
    _add_window(user)
    _add_status(user)
    _add_output(user)
    user.set_defaults(handler=_impersonations)

    token = commands.add_parser("token", help="one token's events, oldest first")
    token.add_argument("token_id", metavar="ID", help="the token's id")
    _add_output(token)
    token.set_defaults(handler=_timeline)

    stale = commands.add_parser("stale", help="pending tokens older than an age, oldest first")
    stale.add_argument(
        "--older-than",
        type=parse_duration,
        default=timedelta(hours=1),
        metavar="AGE",
        help="minimum age since creation, e.g. 90m, 24h, 7d (default: 1h)",
    )
    stale.add_argument(
        "--now",
        type=parse_instant,
        metavar="WHEN",
        help="measure ages at this instant instead of the current time",
    )
    _add_window(stale, until=False)
    _add_output(stale)
    stale.set_defaults(handler=_stale)

    prune = commands.add_parser(
        "prune",
        help="delete events that occurred before a date",
        description=(
            "Delete the events that occurred before --before and print how many. This is the "
            "one deletion the events table allows; it needs the DELETE privilege on it."
        ),
    )
    prune.add_argument(
        "--before",
        type=parse_instant,
        required=True,
        metavar="WHEN",
        help="ISO 8601 time with offset or Z, or a date meaning UTC midnight",
    )
    prune.set_defaults(handler=_prune)


def _add_window(parser: argparse.ArgumentParser, *, until: bool = True) -> None:
    parser.add_argument(
        "--since",
        type=parse_instant,
        metavar="WHEN",
        help="only tokens issued at or after this time (ISO 8601 with offset or Z, or a date)",
    )
    if until:
        parser.add_argument(
            "--until",
            type=parse_instant,
            metavar="WHEN",
            help="only tokens issued before this time (ISO 8601 with offset or Z, or a date)",
        )


def _add_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status",
        choices=[status.value for status in TokenStatus],
        help="only tokens whose latest status is this",
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=_page_size, default=50, metavar="N", help="rows per page (default: 50)"
    )
    parser.add_argument("--after", metavar="CURSOR", help="the cursor of the next page")
    parser.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="table (default), csv with a header row, or json with one object per line",
    )


@contextmanager
def _repository(args: argparse.Namespace) -> Iterator[ActorTokenRepository]:
    # Imported here so that `--help` does not import the database modules.
    from actortoken_store.cli.database import open_database

    with open_database(args) as database, Session(database.engine) as session:
        yield ActorTokenRepository(session, schema=database.schema)
        session.commit()


_IMPERSONATION_COLUMNS: Final = (
    "token_id",
    "user_id",
    "actor_sub",
    "issued_at",
    "status",
    "accepted_at",
    "revoked_at",
)
_SUMMARY_COLUMNS: Final = (
    "actor_sub",
    "issued",
    "accepted",
    "revoked",
    "pending",
    "users",
    "first_activity",
    "last_activity",
)
_EVENT_COLUMNS: Final = (
    "id",
    "token_id",
    "from_status",
    "to_status",
    "issued_at",
    "occurred_at",
    "recorded_at",
    "source",
    "actor_sub",
    "actor",
    "user_id",
    "context",
)
_STALE_COLUMNS: Final = ("token_id", "user_id", "actor_sub", "created_at", "age_seconds")


def _actors(args: argparse.Namespace) -> int:
    with _repository(args) as repo:
        page = repo.audit.actor_summary(
            since=args.since, until=args.until, limit=args.limit, after=args.after
        )
    return _emit(args, _SUMMARY_COLUMNS, page, _fields)


def _impersonations(args: argparse.Namespace) -> int:
    with _repository(args) as repo:
        page = repo.audit.impersonations(
            actor_sub=getattr(args, "sub", None),
            user_id=getattr(args, "user_id", None),
            since=args.since,
            until=args.until,
            status=args.status,
            limit=args.limit,
            after=args.after,
        )
    return _emit(args, _IMPERSONATION_COLUMNS, page, _fields)


def _timeline(args: argparse.Namespace) -> int:
    with _repository(args) as repo:
        page = repo.audit.timeline(args.token_id, limit=args.limit, after=args.after)
    return _emit(args, _EVENT_COLUMNS, page, _fields)


def _stale(args: argparse.Namespace) -> int:
    now = args.now or datetime.now(UTC)
    with _repository(args) as repo:
        page = repo.audit.stale_pending(
            older_than=args.older_than,
            now=now,
            since=args.since,
            limit=args.limit,
            after=args.after,
        )

    def fields(row: Any) -> dict[str, Any]:
        values = _fields(row)
        values["age_seconds"] = int((now - row.created_at).total_seconds())
        return values

    return _emit(args, _STALE_COLUMNS, page, fields)


def _prune(args: argparse.Namespace) -> int:
    with _repository(args) as repo:
        removed = repo.audit.prune_events(before=args.before)
    print(f"deleted {removed} events that occurred before {_text(args.before)}")
    return EXIT_OK


def _fields(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


def _emit(
    args: argparse.Namespace,
    columns: Columns,
    page: AuditPage[Any],
    fields: Callable[[Any], dict[str, Any]],
) -> int:
    rows = [{name: fields(item).get(name) for name in columns} for item in page.items]
    if args.format == "json":
        for row in rows:
            print(
                json.dumps({name: _json_value(row[name]) for name in columns}, ensure_ascii=False)
            )
    elif args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(row[name]) for name in columns] for row in rows)
    else:
        _print_table(columns, [[_text(row[name]) for name in columns] for row in rows])
    if page.next_cursor is not None:
        print(
            f"actortoken-store: more rows follow; pass --after {page.next_cursor}",
            file=sys.stderr,
        )
    return EXIT_OK


def _print_table(columns: Columns, rows: list[list[str]]) -> None:
    widths = [
        max([len(name)] + [len(row[index]) for row in rows]) for index, name in enumerate(columns)
    ]
    for line in [list(columns), *rows]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return _text(value)
    if isinstance(value, TokenStatus) or hasattr(value, "value"):
        return value.value
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        # Token times are whole milliseconds; recorded_at keeps its microseconds.
        timespec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
        return value.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if hasattr(value, "value"):
        return str(value.value)
    return str(value)
