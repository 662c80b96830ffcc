"""Bulk loads of new tokens: raw psycopg COPY, the store's save_many, and ORM add_all.

Each loader gets the same tokens, an empty table and its own connection, and is timed
from its first statement to the end of its COMMIT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import sqlalchemy
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from actortoken_store.bench.database import BENCH_SECRETS
from actortoken_store.bench.timing import stopwatch_ns
from actortoken_store.config import create_engine
from actortoken_store.model import ActorToken
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.rows import to_row
from actortoken_store.schema import ActorTokenRecord

__all__ = ["LOADERS", "Loader", "copy_values"]

Loader = Callable[[sqlalchemy.URL, Sequence[ActorToken], Sequence[tuple[Any, ...]]], int]
"""Load tokens into an empty table; return the elapsed nanoseconds."""

_COPY = (
    "COPY actor_tokens (id, status, user_id, actor, token, url, created_at, updated_at) FROM STDIN"
)


def copy_values(tokens: Sequence[ActorToken]) -> list[tuple[Any, ...]]:
    """Return the column values that the raw COPY writes, prepared before timing starts."""
    values = []
    for row in (to_row(token, BENCH_SECRETS) for token in tokens):
        values.append(
            (
                row["id"],
                row["status"].value,
                row["user_id"],
                Jsonb(row["actor"]),
                row["token"],
                row["url"],
                row["created_at"],
                row["updated_at"],
            )
        )
    return values


def load_raw_copy(
    url: sqlalchemy.URL, tokens: Sequence[ActorToken], values: Sequence[tuple[Any, ...]]
) -> int:
    """COPY prepared column values through a bare psycopg connection."""
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(False)) as connection:
        started = stopwatch_ns()
        with connection.cursor() as cursor, cursor.copy(_COPY) as copy:
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
