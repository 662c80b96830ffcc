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
    from actortoken_store.errors import TicketDecryptionError
    from actortoken_store.repository import ActorTokenRepository

    unreadable: TicketDecryptionError | None = None
    with open_database(args) as database, Session(database.engine) as session:
        repository = ActorTokenRepository(session, schema=database.schema)
        try:
            token = repository.get_one(args.token_id)
        except TicketDecryptionError as error:
            # --reveal requests the ticket, so its failure is the command's failure.
            # Without it, the rest of the token is still worth showing.
            if args.reveal:
                raise
            unreadable = error
            token = repository.get_one(args.token_id, reveal=False)

    if unreadable is not None:
        announce(f"the ticket of {token.id} is unavailable: {unreadable}")
    if args.reveal:
        announce(f"printing the ticket of {token.id} in full, as --reveal requested")
    if args.json:
        data = token.to_clerk() if args.reveal else masked_clerk(token)
        if unreadable is not None:
            data["token"] = data["url"] = UNAVAILABLE
        print(to_json(data))
    else:
        text = format_token(token, reveal=args.reveal)
        if unreadable is not None:
            text = _mark_unavailable(text)
        print(text)
    return 0


UNAVAILABLE = "(unavailable: its key is not configured or does not decrypt it)"


def _mark_unavailable(text: str) -> str:
    lines = []
    for line in text.splitlines():
        name, _, _ = line.partition(" ")
        if name in ("token", "url"):
            line = line.removesuffix("null") + UNAVAILABLE
        lines.append(line)
    return "\n".join(lines)
