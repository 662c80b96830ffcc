"""``actortoken-store show``: print one stored actor token, with its ticket masked unless
``--reveal`` is given."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``show`` command."""
    parser = subparsers.add_parser(
        "show",
        help="print one actor token by id",
        description="Print one stored actor token. The ticket and the ticket URL are masked "
        "unless --reveal is given. A ticket that was dropped (digest secrets mode, or an "
        "accepted or revoked token) prints as null.",
    )
    parser.add_argument("token_id", metavar="ID", help="the token's id, such as act_...")
    parser.add_argument(
        "--json", action="store_true", help="print Clerk's JSON object (secrets masked)"
    )
    parser.add_argument(
        "--reveal",
        action="store_true",
        help="print the ticket and the sign-in URL in full; anyone who sees them can sign in "
        "as the impersonated user",
    )
    parser.set_defaults(handler=_show)


def _show(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from actortoken_store.cli.database import announce, open_database
    from actortoken_store.cli.output import format_token, masked_clerk, to_json
    from actortoken_store.repository import ActorTokenRepository

    with open_database(args) as database, Session(database.engine) as session:
        token = ActorTokenRepository(session, schema=database.schema).get_one(args.token_id)

    if args.reveal:
        announce(f"printing the ticket of {token.id} in full, as --reveal requested")
    if args.json:
        print(to_json(token.to_clerk() if args.reveal else masked_clerk(token)))
    else:
        print(format_token(token, reveal=args.reveal))
    return 0
