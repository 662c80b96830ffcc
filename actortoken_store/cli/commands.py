"""The list of command groups that `actortoken_store.cli.main` registers, in help order."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from actortoken_store.cli import audit, db, importing, keys, listing, purge, show

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

REGISTRARS: list[Registrar] = [
    importing.register,
    listing.register,
    show.register,
    purge.register,
    keys.register,
    audit.register,
    db.register,
]
"""Each entry adds one command group's parsers. Add a new group's ``register`` here."""
