"""``actortoken-store db``: create, upgrade, downgrade and inspect the store's schema."""

from __future__ import annotations

import argparse
import sys
from typing import Final

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``db upgrade``, ``db downgrade``, ``db current`` and ``db check``."""
    db = subparsers.add_parser(
        "db",
        help="manage the store's schema (Alembic migrations)",
        description="Manage the store's tables with its own Alembic migrations. Its version "
        "table is actortoken_store_version, separate from any application's alembic_version.",
    )
    commands = db.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)

    upgrade = commands.add_parser("upgrade", help="upgrade the schema (default: to head)")
    upgrade.add_argument(
        "revision", nargs="?", default="head", help="target revision; default: head"
    )
    upgrade.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL instead of running it (offline mode, no connection)",
    )
    upgrade.add_argument(
        "-x",
        action="append",
        default=[],
        type=_x_option,
        metavar="KEY=VALUE",
        help="an option for the revisions, as with alembic's -x; 'drop_tickets=true' accepts "
        "that stored tickets are dropped (only their SHA-256 digests kept) when no "
        "encryption key is configured",
    )
    upgrade.set_defaults(handler=_upgrade)

    downgrade = commands.add_parser(
        "downgrade", help="downgrade the schema; 'base' removes every table of the store"
    )
    downgrade.add_argument(
        "revision", help="target revision: an id, a relative step such as -1, or base"
    )
    downgrade.add_argument(
        "--sql",
        action="store_true",
        help="print the SQL instead of running it; give the range as FROM:TO, e.g. head:base",
    )
    downgrade.set_defaults(handler=_downgrade)

    current = commands.add_parser("current", help="print the schema's current revision")
    current.set_defaults(handler=_current)

    check = commands.add_parser(
        "check", help="fail unless the schema matches this version's models exactly"
    )
    check.set_defaults(handler=_check)


_X_BOOLEANS: Final = frozenset({"1", "true", "yes", "on", "0", "false", "no", "off"})
"""Values the revisions read as a boolean ``-x`` option, in any case."""
_X_KEYS: Final = ("drop_tickets",)


def _x_option(text: str) -> str:
    """Check one ``-x KEY=VALUE`` option against the keys the revisions read.

    Raises:
        argparse.ArgumentTypeError: the option has no ``=``, an unknown key, or a value that
            is not a boolean word.
    """
    key, separator, value = text.partition("=")
    key = key.strip()
    if not separator:
        raise argparse.ArgumentTypeError(f"invalid option {text!r}: expected KEY=VALUE")
    if key not in _X_KEYS:
        raise argparse.ArgumentTypeError(
            f"unknown option {key!r}: the revisions read only {', '.join(_X_KEYS)}"
        )
    if value.strip().lower() not in _X_BOOLEANS:
        raise argparse.ArgumentTypeError(
            f"invalid value {value!r} for {key}: use true or false (also yes/no, on/off, 1/0)"
        )
    return f"{key}={value.strip()}"


def _upgrade(args: argparse.Namespace) -> int:
    return _migrate(args, "upgrade")


def _downgrade(args: argparse.Namespace) -> int:
    return _migrate(args, "downgrade")


def _migrate(args: argparse.Namespace, direction: str) -> int:
    from actortoken_store import migrate
    from actortoken_store.cli.database import announce, migration_config, open_database
    from actortoken_store.config import resolve_schema

    run = migrate.upgrade if direction == "upgrade" else migrate.downgrade
    if args.sql:
        schema = resolve_schema(args.schema)
        announce(f"writing the {direction} SQL for schema {schema!r}; no database is contacted")
        config = migrate.make_config(args.database_url, schema=schema)
        config.output_buffer = sys.stdout
        run(config, args.revision, sql=True)
        return 0

    with open_database(args, check_schema=False) as database:
        config = migration_config(database.choice, database.schema)
        config.cmd_opts = argparse.Namespace(x=list(getattr(args, "x", None) or []))
        before = _revision_text(migrate.current(config))
        run(config, args.revision)
        after = _revision_text(migrate.current(config))
    if before == after:
        print(f"schema {database.schema!r} stays at revision {after}")
    else:
        print(f"schema {database.schema!r} moved from revision {before} to {after}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from actortoken_store import migrate
    from actortoken_store.cli.database import migration_config, open_database

    with open_database(args, check_schema=False) as database:
        revisions = migrate.current(migration_config(database.choice, database.schema))
    head = migrate.head()
    if not revisions:
        print("none (the store's tables have not been created; run 'actortoken-store db upgrade')")
    for revision in revisions:
        print(f"{revision} (head)" if revision == head else f"{revision} (head is {head})")
    return 0


def _check(args: argparse.Namespace) -> int:
    from actortoken_store import migrate
    from actortoken_store.cli.database import migration_config, open_database
    from actortoken_store.errors import SchemaNotReadyError

    with open_database(args, check_schema=False) as database:
        config = migration_config(database.choice, database.schema)
        current = migrate.current(config)
        head = migrate.head()
        if current != [head]:
            found = ", ".join(current) if current else "none (the store's tables are missing)"
            raise SchemaNotReadyError(
                f"schema {database.schema!r} is at revision {found}, but this version needs "
                f"revision {head}; run 'actortoken-store db upgrade'"
            )
        migrate.check(config)
    print(f"schema {database.schema!r} matches the models of this version")
    return 0


def _revision_text(revisions: list[str]) -> str:
    return ", ".join(revisions) if revisions else "none"
