"""Statement builders of the audit queries, shared by both repositories. No I/O happens here.

Every query reads a range of one index (see the indexes on
`actortoken_store.schema.ActorTokenEventRecord`) and pages by keyset, so the first page
costs the same however many events are stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    and_,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.sql import quoted_name

from actortoken_store.model import TokenStatus
from actortoken_store.schema import ActorTokenEventRecord, status_type
from actortoken_store.statements import TOKENS

__all__ = [
    "EVENTS",
    "prune_events",
    "select_actor_summaries",
    "select_impersonations",
    "select_stale_pending",
    "select_timeline",
]

EVENTS: Final[Table] = cast(Table, ActorTokenEventRecord.__table__)
"""The ``actor_token_events`` table."""


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def select_impersonations(
    *,
    actor_sub: str | None,
    user_id: str | None,
    since: datetime | None,
    until: datetime | None,
    status: TokenStatus | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> Select[Any]:
    """Select tokens from their creation events, newest issue first, with their outcome.

    The outcome comes from a LATERAL subquery over the token's later events (index on
    ``token_id, id``): the last status, and the first time it became accepted or revoked.
    """
    creation = EVENTS.alias("creation")
    later = EVENTS.alias("later")
    outcome = (
        select(
            func.array_agg(
                aggregate_order_by(later.c.to_status, later.c.id.desc()),
                type_=ARRAY(status_type),
            )[1].label("status"),
            func.min(later.c.occurred_at)
            .filter(later.c.to_status == TokenStatus.ACCEPTED)
            .label("accepted_at"),
            func.min(later.c.occurred_at)
            .filter(later.c.to_status == TokenStatus.REVOKED)
            .label("revoked_at"),
        )
        .where(later.c.token_id == creation.c.token_id, later.c.id >= creation.c.id)
        .lateral("outcome")
    )

    statement = (
        select(
            creation.c.token_id,
            creation.c.user_id,
            creation.c.actor_sub,
            creation.c.issued_at,
            outcome.c.status,
            outcome.c.accepted_at,
            outcome.c.revoked_at,
            creation.c.id.label("event_id"),
        )
        .select_from(creation.join(outcome, true()))
        .where(creation.c.from_status.is_(None), *_window(creation.c.issued_at, since, until))
    )
    if actor_sub is not None:
        statement = statement.where(creation.c.actor_sub == actor_sub)
    if user_id is not None:
        statement = statement.where(creation.c.user_id == user_id)
    if status is not None:
        statement = statement.where(outcome.c.status == status)
    if after is not None:
        statement = statement.where(tuple_(creation.c.issued_at, creation.c.id) < tuple_(*after))
    return statement.order_by(creation.c.issued_at.desc(), creation.c.id.desc()).limit(limit)


def select_timeline(token_id: str, *, after: int | None, limit: int) -> Select[Any]:
    """Select one token's events in the order they were recorded."""
    statement = select(EVENTS).where(EVENTS.c.token_id == token_id)
    if after is not None:
        statement = statement.where(EVENTS.c.id > after)
    return statement.order_by(EVENTS.c.id).limit(limit)


def select_actor_summaries(
    *,
    actor_sub: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
    limit: int,
) -> Select[Any]:
    """Select per-actor counts over the events of tokens issued in the window, by actor.

    Every column it reads is in the index on ``issued_at`` (and in the one on
    ``actor_sub, issued_at``), so PostgreSQL reads the index alone.
    """
    creation = EVENTS.c.from_status.is_(None)
    pending = TokenStatus.PENDING
    left_pending = and_(EVENTS.c.from_status == pending, EVENTS.c.to_status != pending)
    statement = select(
        EVENTS.c.actor_sub,
        _count(creation).label("issued"),
        _count(EVENTS.c.to_status == TokenStatus.ACCEPTED).label("accepted"),
        _count(EVENTS.c.to_status == TokenStatus.REVOKED).label("revoked"),
        (_count(and_(creation, EVENTS.c.to_status == pending)) - _count(left_pending)).label(
            "pending"
        ),
        func.count(EVENTS.c.user_id.distinct()).label("users"),
        func.min(EVENTS.c.issued_at).label("first_activity"),
        func.max(EVENTS.c.occurred_at).label("last_activity"),
    ).where(*_window(EVENTS.c.issued_at, since, until))
    if actor_sub is not None:
        statement = statement.where(EVENTS.c.actor_sub == actor_sub)
    if after is not None:
        statement = statement.where(EVENTS.c.actor_sub > after)
    return (
        statement.group_by(EVENTS.c.actor_sub)
        # An actor whose creation events were pruned has nothing left to summarize.
        .having(_count(creation) > 0)
        .order_by(EVENTS.c.actor_sub)
        .limit(limit)
    )


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(condition)


def select_stale_pending(
    *,
    cutoff: datetime,
    since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """Select pending tokens created before ``cutoff``, oldest first (partial index)."""
    statement = select(
        TOKENS.c.id,
        TOKENS.c.user_id,
        TOKENS.c.actor["sub"].astext.label("actor_sub"),
        TOKENS.c.created_at,
        TOKENS.c.updated_at,
    ).where(TOKENS.c.status == TokenStatus.PENDING, TOKENS.c.created_at < cutoff)
    if since is not None:
        statement = statement.where(TOKENS.c.created_at >= since)
    if after is not None:
        statement = statement.where(tuple_(TOKENS.c.created_at, TOKENS.c.id) > tuple_(*after))
    return statement.order_by(TOKENS.c.created_at, TOKENS.c.id).limit(limit)


def prune_events(schema: str, before: datetime) -> Select[Any]:
    """Build the call of the database function that deletes events older than ``before``.

    Functions are not covered by ``schema_translate_map``, so the schema is named here.
    """
    function = getattr(func, quoted_name(schema, quote=True)).prune_actor_token_events
    return select(function(literal(before, type_=EVENTS.c.occurred_at.type), type_=Integer))
