"""Entry point of the ``actortoken-store`` command.

Each command group lives in its own module, which exposes ``register(subparsers)``. The
function adds its parsers and sets ``handler`` on each, a callable taking the parsed
arguments and returning the exit code.

Exit codes: 0 success, 1 rejected records, 2 usage, configuration or connection errors.
Expected errors, including invalid arguments and database errors, print one line to
stderr with no traceback; ``--traceback`` shows it. When the reader of stdout goes away
(``| head -1``), the command still finishes and its exit code still reports the outcome.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Final, NoReturn, cast

from sqlalchemy.exc import DBAPIError

from actortoken_store.cli.pipes import tolerate_closed_stdout
from actortoken_store.cli.timeargs import NEGATIVE_AGE
from actortoken_store.dberrors import translate_error
from actortoken_store.errors import ActorTokenStoreError

__all__ = ["EXIT_OK", "EXIT_REJECTED", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK: Final = 0
EXIT_REJECTED: Final = 1
EXIT_USAGE: Final = 2

Handler = Callable[[argparse.Namespace], int]


def _command_modules() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
]:
    # Imported here so that `--help` of one command does not import every other one.
    from actortoken_store.cli import commands

    return commands.REGISTRARS


class _ArgumentParser(argparse.ArgumentParser):
    """An argument parser that reports a usage error in one line, pointing to --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every command group registered.

    The global options are accepted before the command and after it, because both orders
    are natural to type. A value after the command overrides one before it.
    """
    parser = _ArgumentParser(
        prog="actortoken-store",
        description="Store Clerk actor tokens (impersonation tickets) in PostgreSQL.",
    )
    _add_global_options(parser, default=None)
    # Sub-parsers are created with the parser's own class, so they report errors the same way.
    subparsers = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND", required=True),
    )
    for register in _command_modules():
        register(subparsers)
    for command_parser in _command_parsers(parser):
        # SUPPRESS leaves the attribute unset unless the option is given after the command,
        # so the value given before the command survives.
        _add_global_options(command_parser, default=argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--database-url",
        metavar="URL",
        default=default,
        help="PostgreSQL URL; default: $ACTORTOKEN_STORE_DATABASE_URL, else the embedded server",
    )
    group.add_argument(
        "--schema",
        metavar="NAME",
        default=default,
        help="PostgreSQL schema of the store's tables; default: $ACTORTOKEN_STORE_SCHEMA or public",
    )
    flag_default = False if default is None else default
    group.add_argument(
        "-v", "--verbose", action="store_true", default=flag_default, help="log at INFO level"
    )
    group.add_argument(
        "--traceback",
        action="store_true",
        default=flag_default,
        help="show the full traceback of an error",
    )


def _command_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Return every command's parser below ``parser``, nested groups such as ``db`` included."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command_parser in action.choices.values():
                found.append(command_parser)
                found += _command_parsers(command_parser)
    return found


def _join_negative_ages(argv: list[str]) -> list[str]:
    """Join ``--option -5d`` into ``--option=-5d``.

    argparse reads a separate value that starts with ``-`` and is not a plain number as
    another option, and reports "expected one argument". Joined, the value reaches the
    option's parser, which rejects it with a message saying why.
    """
    joined: list[str] = []
    index = 0
    while index < len(argv):
        current = argv[index]
        if current == "--":
            return joined + argv[index:]
        following = argv[index + 1] if index + 1 < len(argv) else None
        if (
            current.startswith("--")
            and "=" not in current
            and following is not None
            and NEGATIVE_AGE.fullmatch(following)
        ):
            joined.append(f"{current}={following}")
            index += 2
        else:
            joined.append(current)
            index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(_join_negative_ages(arguments))
    except SystemExit as exit_request:
        # --help and usage errors; returned so that callers of main() get a status.
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        with tolerate_closed_stdout():
            return handler(args)
    except ActorTokenStoreError as error:
        if args.traceback:
            raise
        print(f"actortoken-store: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except DBAPIError as error:
        # Raised by Alembic, which runs outside the repositories' translation seam.
        if args.traceback:
            raise
        print(f"actortoken-store: error: {translate_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("actortoken-store: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
