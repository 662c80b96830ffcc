"""SQL statement builders shared by the sync and async repositories. No I/O happens here.

Each write is one statement, and the rules live in its WHERE clause, so two writers cannot
interleave between a read and a write:

- upsert (`upsert_tokens`): a snapshot replaces the stored row only if its ``updated_at``
  is newer, or equal while the stored row is pending and the snapshot is terminal. A
  terminal row never changes status, and ``user_id`` and ``created_at`` never change.
- transition (`transition_token`): the UPDATE matches only a pending row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.dml import ReturningDelete, ReturningInsert, ReturningUpdate

from actortoken_store.model import TokenStatus
from actortoken_store.schema import ActorTokenRecord

__all__ = [
    "TOKENS",
    "delete_token",
    "select_by_id",
    "select_for_user",
    "select_states",
    "snapshot_applies",
    "transition_token",
    "upsert_tokens",
]

TOKENS: Final[Table] = cast(Table, ActorTokenRecord.__table__)
"""The ``actor_tokens`` table."""

_UPDATABLE: Final = ("status", "actor", "token", "url", "updated_at")


def snapshot_applies(stored: Any, incoming: Any) -> ColumnElement[bool]:
    """Build the monotonic rule: whether ``incoming`` may replace ``stored``.

    ``stored`` and ``incoming`` are column collections with the table's column names, such
    as the table itself and an upsert's ``excluded``.
    """
    pending = TokenStatus.PENDING
    return and_(
        or_(stored.status == pending, stored.status == incoming.status),
        stored.user_id == incoming.user_id,
        stored.created_at == incoming.created_at,
        or_(
            incoming.updated_at > stored.updated_at,
            and_(
                incoming.updated_at == stored.updated_at,
                stored.status == pending,
                incoming.status != pending,
            ),
        ),
    )


def upsert_tokens(rows: Sequence[dict[str, Any]]) -> ReturningInsert[Any]:
    """Build the INSERT ... ON CONFLICT that stores ``rows``, which must have distinct ids.

    It returns ``id`` and ``inserted`` for each row it inserted or updated; a row it left
    alone returns nothing.
    """
    statement = insert(TOKENS).values(list(rows))
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[TOKENS.c.id],
        set_={name: excluded[name] for name in _UPDATABLE},
        where=snapshot_applies(TOKENS.c, excluded),
    ).returning(TOKENS.c.id, text("(xmax = 0) AS inserted"))


def select_states(token_ids: Sequence[str]) -> Select[Any]:
    """Select what classifies a snapshot that was not applied: status, owner and times."""
    return select(
        TOKENS.c.id,
        TOKENS.c.status,
        TOKENS.c.user_id,
        TOKENS.c.created_at,
        TOKENS.c.updated_at,
    ).where(TOKENS.c.id.in_(token_ids))


def select_by_id(token_id: str) -> Select[Any]:
    """Select one token by id."""
    return select(TOKENS).where(TOKENS.c.id == token_id)


def select_for_user(
    user_id: str,
    *,
    status: TokenStatus | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> Select[Any]:
    """Select a user's tokens newest first, after a keyset position (creation time, id)."""
    statement = select(TOKENS).where(TOKENS.c.user_id == user_id)
    if status is not None:
        statement = statement.where(TOKENS.c.status == status)
    if after is not None:
        statement = statement.where(tuple_(TOKENS.c.created_at, TOKENS.c.id) < tuple_(*after))
    return statement.order_by(TOKENS.c.created_at.desc(), TOKENS.c.id.desc()).limit(limit)


def transition_token(token_id: str, target: TokenStatus, at: datetime) -> ReturningUpdate[Any]:
    """Build the UPDATE that moves a pending token to ``target`` and returns the new row.

    ``updated_at`` never moves backwards: a transition time older than the stored one
    keeps the stored one.
    """
    return (
        TOKENS.update()
        .where(TOKENS.c.id == token_id, TOKENS.c.status == TokenStatus.PENDING)
        .values(status=target, updated_at=_greatest(TOKENS.c.updated_at, at))
        .returning(*TOKENS.c)
    )


def delete_token(token_id: str) -> ReturningDelete[Any]:
    """Build the DELETE of one token by id, returning its id."""
    return TOKENS.delete().where(TOKENS.c.id == token_id).returning(TOKENS.c.id)


def _greatest(column: Any, value: datetime) -> ColumnElement[datetime]:
    return func.greatest(column, literal(value, type_=TOKENS.c.updated_at.type))
