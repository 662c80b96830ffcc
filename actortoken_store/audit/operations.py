"""Audit operations written once for both repositories, in the style of
`actortoken_store.operations`: each yields statements, receives results and returns a value.

Argument checks happen before the first statement, so bad input sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from actortoken_store.audit import queries
from actortoken_store.audit.context import AuditSource
from actortoken_store.audit.records import (
    ActorSummary,
    AuditPage,
    Impersonation,
    StaleToken,
    TokenEvent,
    decode_position,
    encode_position,
)
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import TokenStatus
from actortoken_store.operations import Operation, check_text_argument
from actortoken_store.rows import cutoff_before

__all__ = [
    "DEFAULT_STALE_AGE",
    "MAX_PAGE_SIZE",
    "actor_summary",
    "impersonations",
    "prune_events",
    "stale_pending",
    "timeline",
]

MAX_PAGE_SIZE: Final = 1000

DEFAULT_STALE_AGE: Final = timedelta(hours=1)
"""Clerk's default lifetime of an actor token (``expires_in_seconds`` = 3600)."""


def impersonations(
    *,
    actor_sub: str | None = None,
    user_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: TokenStatus | str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Operation[AuditPage[Impersonation]]:
    """Return a page of impersonations, newest issue first, filtered as given.

    ``since`` and ``until`` bound the issue time (``since`` included, ``until`` excluded);
    ``status`` filters on the latest status.
    """
    checked_limit = _check_limit(limit)
    window = _check_window(since, until)
    wanted = _check_status(status)
    position = None
    if after is not None:
        issued_at, event_id = decode_position("impersonations", after, (datetime, int))
        position = (issued_at, event_id)

    result = yield queries.select_impersonations(
        actor_sub=actor_sub,
        user_id=user_id,
        since=window[0],
        until=window[1],
        status=wanted,
        after=position,
        limit=checked_limit + 1,
    )
    rows = [
        Impersonation(
            token_id=row.token_id,
            user_id=row.user_id,
            actor_sub=row.actor_sub,
            issued_at=row.issued_at,
            status=TokenStatus(row.status),
            accepted_at=row.accepted_at,
            revoked_at=row.revoked_at,
            event_id=row.event_id,
        )
        for row in result
    ]
    return _page(
        rows, checked_limit, lambda last: ("impersonations", last.issued_at, last.event_id)
    )


def timeline(
    token_id: str, *, limit: int = 50, after: str | None = None
) -> Operation[AuditPage[TokenEvent]]:
    """Return a page of one token's events, oldest first (in the order they were recorded).

    Events outlive their token, so a deleted token still has a timeline.
    """
    check_text_argument("token_id", token_id)
    checked_limit = _check_limit(limit)
    position = None if after is None else decode_position("timeline", after, (int,))[0]
    result = yield queries.select_timeline(token_id, after=position, limit=checked_limit + 1)
    rows = [_event(row) for row in result.mappings()]
    return _page(rows, checked_limit, lambda last: ("timeline", last.id))


def actor_summary(
    *,
    actor_sub: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Operation[AuditPage[ActorSummary]]:
    """Return a page of per-actor summaries of the tokens issued in the window, by actor."""
    checked_limit = _check_limit(limit)
    window = _check_window(since, until)
    position = None if after is None else decode_position("actors", after, (str,))[0]
    result = yield queries.select_actor_summaries(
        actor_sub=actor_sub,
        since=window[0],
        until=window[1],
        after=position,
        limit=checked_limit + 1,
    )
    rows = [
        ActorSummary(
            actor_sub=row.actor_sub,
            issued=row.issued,
            accepted=row.accepted,
            revoked=row.revoked,
            pending=row.pending,
            users=row.users,
            first_activity=row.first_activity,
            last_activity=row.last_activity,
        )
        for row in result
    ]
    return _page(rows, checked_limit, lambda last: ("actors", last.actor_sub))


def stale_pending(
    *,
    older_than: timedelta = DEFAULT_STALE_AGE,
    now: datetime | None = None,
    since: datetime | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Operation[AuditPage[StaleToken]]:
    """Return a page of tokens still pending ``older_than`` after creation, oldest first.

    ``now`` (default: the current time) is the instant the age is measured at; ``since``
    skips tokens created before it.
    """
    checked_limit = _check_limit(limit)
    reference = datetime.now(UTC) if now is None else _check_aware("now", now)
    cutoff = cutoff_before("older_than", reference, older_than, allow_zero=True)
    lower = None if since is None else _check_aware("since", since)
    position = None
    if after is not None:
        created_at, token_id = decode_position("stale", after, (datetime, str))
        position = (created_at, token_id)

    result = yield queries.select_stale_pending(
        cutoff=cutoff, since=lower, after=position, limit=checked_limit + 1
    )
    rows = [
        StaleToken(
            token_id=row.id,
            user_id=row.user_id,
            actor_sub=row.actor_sub,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in result
    ]
    return _page(rows, checked_limit, lambda last: ("stale", last.created_at, last.token_id))


def prune_events(schema: str, before: datetime) -> Operation[int]:
    """Delete the events that occurred before ``before`` and return how many were deleted.

    This is the one deletion the append-only triggers allow. It needs the DELETE privilege
    on ``actor_token_events``, which an application role should not have.
    """
    cutoff = _check_aware("before", before)
    result = yield queries.prune_events(schema, cutoff)
    removed: int = result.scalar_one()
    return removed


def _event(row: Any) -> TokenEvent:
    return TokenEvent(
        id=row["id"],
        token_id=row["token_id"],
        user_id=row["user_id"],
        actor_sub=row["actor_sub"],
        actor=row["actor"],
        from_status=None if row["from_status"] is None else TokenStatus(row["from_status"]),
        to_status=TokenStatus(row["to_status"]),
        issued_at=row["issued_at"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        source=AuditSource(row["source"]),
        context=row["context"],
    )


def _page(rows: list[Any], limit: int, position: Any) -> AuditPage[Any]:
    # The queries fetch one extra row to tell whether another page follows.
    if len(rows) <= limit:
        return AuditPage(rows, None)
    items = rows[:limit]
    return AuditPage(items, encode_position(*position(items[-1])))


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}"
        )
    return limit


def _check_aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{name} must be an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(
            f"{name} must be an aware datetime; got the naive {value.isoformat()}, "
            "use e.g. datetime(2025, 12, 1, tzinfo=UTC)"
        )
    return value.astimezone(UTC)


def _check_window(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    lower = None if since is None else _check_aware("since", since)
    upper = None if until is None else _check_aware("until", until)
    if lower is not None and upper is not None and upper < lower:
        raise InvalidArgumentError(
            f"until ({upper.isoformat()}) is before since ({lower.isoformat()})"
        )
    return lower, upper


def _check_status(status: TokenStatus | str | None) -> TokenStatus | None:
    if status is None:
        return None
    try:
        return TokenStatus(status)
    except ValueError:
        allowed = ", ".join(member.value for member in TokenStatus)
        raise InvalidArgumentError(f"status must be one of {allowed}, got {status!r}") from None
