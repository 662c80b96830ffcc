"""``actortoken-store purge``: delete old accepted, revoked and expired tokens."""

from __future__ import annotations

import argparse

from actortoken_store.cli.timeargs import parse_age

__all__ = ["parse_age", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``purge`` command."""
    from actortoken_store.maintenance import DEFAULT_PURGE_BATCH_SIZE

    parser = subparsers.add_parser(
        "purge",
        help="delete old accepted, revoked and expired tokens",
        description="Delete the tokens whose last change is older than --older-than and "
        "that are accepted, revoked, or pending with an expired ticket. Pending tokens with "
        "an unknown expiry are kept. Deletes in batches, committing after each, and prints "
        "the count. Audit events of deleted tokens are kept.",
    )
    parser.add_argument(
        "--older-than",
        required=True,
        type=parse_age,
        metavar="AGE",
        help="minimum age of the last change, such as 90d (units: s, m, h, d, w)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count the tokens to delete, delete nothing"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_PURGE_BATCH_SIZE,
        metavar="N",
        help="tokens deleted per transaction; default: %(default)s",
    )
    parser.set_defaults(handler=_purge)


def _purge(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from actortoken_store.cli.database import open_database
    from actortoken_store.errors import InvalidArgumentError
    from actortoken_store.repository import ActorTokenRepository

    if args.batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be at least 1, got {args.batch_size}")
    now = datetime.now(UTC)
    cutoff = (now - args.older_than).isoformat(timespec="seconds").replace("+00:00", "Z")
    with open_database(args) as database, Session(database.engine) as session:
        repo = ActorTokenRepository(session, schema=database.schema)
        if args.dry_run:
            count = repo.purge(args.older_than, now=now, dry_run=True)
            print(f"would purge {count} actor tokens last changed before {cutoff} (dry run)")
            return 0
        purged = 0
        while True:
            deleted = repo.purge(
                args.older_than, now=now, batch_size=args.batch_size, max_batches=1
            )
            session.commit()
            purged += deleted
            if deleted < args.batch_size:
                break
    print(f"purged {purged} actor tokens last changed before {cutoff}")
    return 0
