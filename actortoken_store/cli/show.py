"""``actortoken-store show``: print one stored actor token, with its ticket masked."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``show`` command."""
    parser = subparsers.add_parser(
        "show",
        help="print one actor token by id",
        description="Print one stored actor token. The ticket and the ticket URL are masked.",
    )
    parser.add_argument("token_id", metavar="ID", help="the token's id, such as act_...")
    parser.add_argument(
        "--json", action="store_true", help="print Clerk's JSON object (secrets masked)"
    )
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from actortoken_store.cli.database import open_database
    from actortoken_store.cli.output import format_token, masked_clerk, to_json
    from actortoken_store.repository import ActorTokenRepository

    with open_database(args) as database, Session(database.engine) as session:
        token = ActorTokenRepository(session, schema=database.schema).get_one(args.token_id)

    print(to_json(masked_clerk(token)) if args.json else format_token(token))
    return 0
