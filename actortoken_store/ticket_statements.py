"""Statement builders for ticket lookups, purging and key rotation. No I/O happens here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    Text,
    and_,
    cast,
    column,
    func,
    or_,
    select,
    values,
)
from sqlalchemy.sql.dml import ReturningDelete, Update

from actortoken_store.model import TokenStatus
from actortoken_store.statements import TOKENS
from actortoken_store.statements import actor_sub as actor_sub_column

__all__ = [
    "count_purgeable",
    "count_unrotatable",
    "delete_purgeable",
    "select_by_ticket_digest",
    "select_reusable",
    "select_to_rotate",
    "update_secrets",
]


def select_by_ticket_digest(digest: bytes) -> Select[Any]:
    """Select the newest token whose ticket has ``digest``."""
    return (
        select(TOKENS)
        .where(TOKENS.c.ticket_digest == digest)
        .order_by(TOKENS.c.created_at.desc(), TOKENS.c.id.desc())
        .limit(1)
    )


def select_reusable(
    user_id: str,
    actor_sub: str,
    *,
    created_by: datetime,
    valid_until: datetime,
    key_ids: Sequence[str],
) -> Select[Any]:
    """Select the newest pending token of a (user, actor) pair that was created at or before
    ``created_by``, is usable until ``valid_until``, and whose ticket is stored in plaintext
    or under one of ``key_ids``.

    The partial index ``ix_actor_tokens_pending_user_id_actor_sub`` serves it.
    """
    available = [TOKENS.c.token.is_not(None)]
    if key_ids:
        available.append(TOKENS.c.ticket_key_id.in_(list(key_ids)))
    return (
        select(TOKENS)
        .where(
            TOKENS.c.status == TokenStatus.PENDING,
            TOKENS.c.user_id == user_id,
            actor_sub_column() == actor_sub,
            TOKENS.c.created_at <= created_by,
            TOKENS.c.expires_at >= valid_until,
            or_(*available),
        )
        .order_by(TOKENS.c.created_at.desc(), TOKENS.c.id.desc())
        .limit(1)
    )


def _purgeable(cutoff: datetime, now: datetime) -> ColumnElement[bool]:
    """Terminal or expired tokens whose last change is older than ``cutoff``."""
    return and_(
        TOKENS.c.updated_at < cutoff,
        or_(TOKENS.c.status != TokenStatus.PENDING, TOKENS.c.expires_at <= now),
    )


def count_purgeable(cutoff: datetime, now: datetime) -> Select[Any]:
    """Count the tokens `delete_purgeable` would delete."""
    return select(func.count()).select_from(TOKENS).where(_purgeable(cutoff, now))


def delete_purgeable(cutoff: datetime, now: datetime, limit: int) -> ReturningDelete[Any]:
    """Build the DELETE of at most ``limit`` purgeable tokens, returning their ids.

    Rows that another transaction has locked are skipped, so a purge does not wait for
    writers. A later run purges them.
    """
    batch = (
        select(TOKENS.c.id)
        .where(_purgeable(cutoff, now))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return TOKENS.delete().where(TOKENS.c.id.in_(batch)).returning(TOKENS.c.id)


def _needs_rotation(primary_key_id: str, key_ids: Sequence[str], plaintext: bool) -> Any:
    under_old_key = and_(
        TOKENS.c.ticket_key_id != primary_key_id, TOKENS.c.ticket_key_id.in_(list(key_ids))
    )
    if not plaintext:
        return under_old_key
    return or_(under_old_key, TOKENS.c.token.is_not(None), TOKENS.c.url.is_not(None))


def select_to_rotate(
    primary_key_id: str, key_ids: Sequence[str], *, plaintext: bool, limit: int
) -> Select[Any]:
    """Select and lock up to ``limit`` rows to re-encrypt under ``primary_key_id``.

    These are rows under another configured key and, with ``plaintext``, rows that keep
    their ticket in plaintext.
    """
    return (
        select(TOKENS)
        .where(_needs_rotation(primary_key_id, key_ids, plaintext))
        .order_by(TOKENS.c.id)
        .limit(limit)
        .with_for_update()
    )


def count_unrotatable(key_ids: Sequence[str]) -> Select[Any]:
    """Count rows per key id that is not configured, so rotation cannot reach them."""
    return (
        select(TOKENS.c.ticket_key_id, func.count().label("tokens"))
        .where(TOKENS.c.ticket_key_id.is_not(None), TOKENS.c.ticket_key_id.not_in(list(key_ids)))
        .group_by(TOKENS.c.ticket_key_id)
        .order_by(TOKENS.c.ticket_key_id)
    )


def update_secrets(rows: Sequence[dict[str, Any]]) -> Update:
    """Build one UPDATE that writes new secret columns for several rows.

    Each row has ``id``, ``token``, ``url``, ``ticket_ciphertext`` and ``ticket_key_id``.
    """
    new = values(
        column("id", Text),
        column("token", Text),
        column("url", Text),
        column("ticket_ciphertext", LargeBinary),
        column("ticket_key_id", Text),
        name="new_secrets",
    ).data(
        [
            (row["id"], row["token"], row["url"], row["ticket_ciphertext"], row["ticket_key_id"])
            for row in rows
        ]
    )
    # PostgreSQL types a VALUES column of only NULLs as text, hence the casts.
    return (
        TOKENS.update()
        .where(TOKENS.c.id == new.c.id)
        .values(
            token=cast(new.c.token, Text),
            url=cast(new.c.url, Text),
            ticket_ciphertext=cast(new.c.ticket_ciphertext, LargeBinary),
            ticket_key_id=cast(new.c.ticket_key_id, Text),
        )
    )
