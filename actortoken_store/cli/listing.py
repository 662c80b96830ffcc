"""``actortoken-store list``: print a user's actor tokens, newest first, page by page."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``list`` command."""
    from actortoken_store.model import TokenStatus
    from actortoken_store.operations import MAX_PAGE_SIZE

    parser = subparsers.add_parser(
        "list",
        help="list a user's actor tokens, newest first",
        description="List the actor tokens that impersonate one user, newest first. When "
        "more tokens follow, the next cursor is printed; pass it to --after for the next "
        "page. Tickets are never printed.",
    )
    parser.add_argument(
        "--user", required=True, metavar="USER_ID", help="the impersonated user's id"
    )
    parser.add_argument(
        "--status",
        choices=[status.value for status in TokenStatus],
        help="only tokens with this status",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help=f"tokens per page, 1 to {MAX_PAGE_SIZE}; default: %(default)s",
    )
    parser.add_argument(
        "--after", metavar="CURSOR", help="the next cursor printed with the previous page"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"items": [...], "next_cursor": ...} with Clerk\'s objects; token and url '
        'are null and "ticket" is stored, none or unavailable',
    )
    parser.set_defaults(handler=_list)


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from actortoken_store.cli.database import open_database
    from actortoken_store.cli.output import format_table, masked_clerk, to_json
    from actortoken_store.repository import ActorTokenRepository

    with open_database(args) as database, Session(database.engine) as session:
        # The list never prints tickets, so it never decrypts them: a row under a key that
        # is not configured is listed with its ticket marked unavailable.
        page = ActorTokenRepository(session, schema=database.schema).list_for_user(
            args.user, status=args.status, limit=args.limit, after=args.after, reveal=False
        )

    if args.json:
        items = [
            {**masked_clerk(token), "ticket": page.ticket_states[token.id].value}
            for token in page.items
        ]
        print(to_json({"items": items, "next_cursor": page.next_cursor}))
        return 0

    if page.items:
        print(format_table(page.items, page.ticket_states))
    else:
        print(f"no actor tokens for user {args.user!r}")
    if page.next_cursor is not None:
        print(f"next cursor: {page.next_cursor}")
    return 0
