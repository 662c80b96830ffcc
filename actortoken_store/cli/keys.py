"""``actortoken-store keys``: generate an encryption key, and re-encrypt stored tickets."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys generate`` and ``keys rotate``."""
    from actortoken_store.maintenance import DEFAULT_ROTATION_BATCH_SIZE

    keys = subparsers.add_parser(
        "keys",
        help="manage the keys that encrypt stored tickets",
        description="Manage the AES-256 keys that encrypt stored tickets. Keys come from "
        "ACTORTOKEN_STORE_KEYS as KEY_ID:BASE64_KEY entries separated by commas; the first "
        "encrypts and every key decrypts.",
    )
    commands = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)

    generate = commands.add_parser(
        "generate",
        help="print a new KEY_ID:BASE64_KEY entry",
        description="Print a new random key as a KEY_ID:BASE64_KEY entry for "
        "ACTORTOKEN_STORE_KEYS. No database is contacted.",
    )
    generate.add_argument(
        "--id",
        dest="key_id",
        metavar="KEY_ID",
        help="the key id: letters, digits, '.', '_' or '-'; default: key-YYYYMMDD (UTC)",
    )
    generate.set_defaults(handler=_generate)

    rotate = commands.add_parser(
        "rotate",
        help="re-encrypt stored tickets under the first key",
        description="Re-encrypt every stored ticket under the first key of "
        "ACTORTOKEN_STORE_KEYS, committing after each batch, and print the count. Exits with "
        "1 when rows remain under keys that are not configured.",
    )
    rotate.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_ROTATION_BATCH_SIZE,
        metavar="N",
        help="rows re-encrypted per transaction; default: %(default)s",
    )
    rotate.set_defaults(handler=_rotate)


def _generate(args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime

    from actortoken_store.cli.database import announce
    from actortoken_store.secrets import ENV_KEYS, format_key, generate_key

    # Only a missing --id takes the default: an empty one is a mistake that format_key
    # reports.
    key_id = f"key-{datetime.now(UTC):%Y%m%d}" if args.key_id is None else args.key_id
    print(format_key(key_id, generate_key()))
    if os.environ.get(ENV_KEYS, "").strip():
        announce(
            f"put this entry first in {ENV_KEYS}, deploy it, then run 'actortoken-store keys "
            "rotate'; keep the earlier keys in the list until rotation reports no rows left"
        )
    else:
        announce(f"set {ENV_KEYS} to this entry to encrypt the tickets stored from now on")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from actortoken_store.cli.database import announce, open_database
    from actortoken_store.cli.main import EXIT_OK, EXIT_REJECTED
    from actortoken_store.errors import InvalidArgumentError
    from actortoken_store.repository import ActorTokenRepository

    if args.batch_size < 1:
        raise InvalidArgumentError(f"--batch-size must be at least 1, got {args.batch_size}")
    rotated = 0
    with open_database(args) as database, Session(database.engine) as session:
        repo = ActorTokenRepository(session, schema=database.schema)
        while True:
            rotation = repo.rotate_keys(batch_size=args.batch_size, max_batches=1)
            session.commit()
            rotated += rotation.rotated
            if rotation.finished:
                break

    print(f"re-encrypted {rotated} tickets under key {rotation.key_id!r}")
    for key_id, count in rotation.unreachable.items():
        print(
            f"{count} tickets stay under key {key_id!r}, which is not configured; add it to "
            "the keys and run 'keys rotate' again",
            file=sys.stderr,
        )
    if rotation.unreachable:
        announce("some tickets were not rotated")
        return EXIT_REJECTED
    return EXIT_OK
