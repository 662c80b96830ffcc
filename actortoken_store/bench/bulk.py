"""Bulk loads of new tokens: raw psycopg COPY, the store's save_many, and ORM add_all.

Each loader gets the same tokens, an empty table and its own connection, and is timed
from its first statement to the end of its COMMIT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import psycopg
import sqlalchemy
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from actortoken_store.bench.database import BENCH_SECRETS
from actortoken_store.bench.timing import stopwatch_ns
from actortoken_store.config import create_engine
from actortoken_store.model import ActorToken
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.rows import to_row
from actortoken_store.schema import ActorTokenRecord

__all__ = ["LOADERS", "Loader", "copy_columns", "copy_values"]

Loader = Callable[[sqlalchemy.URL, Sequence[ActorToken], Sequence[tuple[Any, ...]]], int]
"""Load tokens into an empty table; return the elapsed nanoseconds."""


def copy_columns(tokens: Sequence[ActorToken]) -> list[str]:
    """Return the columns the store writes, which the raw COPY writes too."""
    return list(to_row(tokens[0], BENCH_SECRETS)) if tokens else []


def copy_values(tokens: Sequence[ActorToken]) -> list[tuple[Any, ...]]:
    """Return the rows the store would write, as COPY values, prepared before timing starts.

    The values are the store's own `to_row` output (ticket digest and expiry included), so
    both loaders write the same bytes.
    """
    values = []
    for row in (to_row(token, BENCH_SECRETS) for token in tokens):
        values.append(tuple(_copy_value(value) for value in row.values()))
    return values


def _copy_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return Jsonb(value)
    return value


def load_raw_copy(
    url: sqlalchemy.URL, tokens: Sequence[ActorToken], values: Sequence[tuple[Any, ...]]
) -> int:
    """COPY prepared column values through a bare psycopg connection."""
    statement = sql.SQL("COPY actor_tokens ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, copy_columns(tokens)))
    )
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as connection:
        started = stopwatch_ns()
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in values:
                copy.write_row(row)
        connection.commit()
        return stopwatch_ns() - started


def load_save_many(
    url: sqlalchemy.URL, tokens: Sequence[ActorToken], values: Sequence[tuple[Any, ...]]
) -> int:
    """Store `ActorToken` values with `ActorTokenRepository.save_many` and commit."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            session.connection()  # connect before the clock starts, as the raw loader does
            started = stopwatch_ns()
            ActorTokenRepository(session, secrets=BENCH_SECRETS).save_many(tokens)
            session.commit()
            return stopwatch_ns() - started
    finally:
        engine.dispose()


def load_orm_add_all(
    url: sqlalchemy.URL, tokens: Sequence[ActorToken], values: Sequence[tuple[Any, ...]]
) -> int:
    """Add one mapped `ActorTokenRecord` per token to an ORM session and commit."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            session.connection()
            started = stopwatch_ns()
            session.add_all(ActorTokenRecord(**to_row(token, BENCH_SECRETS)) for token in tokens)
            session.commit()
            return stopwatch_ns() - started
    finally:
        engine.dispose()


LOADERS: dict[str, Loader] = {
    "copy": load_raw_copy,
    "save_many": load_save_many,
    "orm_add_all": load_orm_add_all,
}
"""Bulk loaders by result name: ``<name>_rows_per_s`` in the JSON output."""
