"""The ``audit`` attribute of both repositories: audit queries and event retention.

`AuditQueries` and `AsyncAuditQueries` are thin wrappers: each method runs one operation
of `actortoken_store.audit.operations` through its repository, in the caller's
transaction, with the repository's schema and error translation.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from actortoken_store.audit import operations
from actortoken_store.audit.records import (
    ActorSummary,
    AuditPage,
    Impersonation,
    StaleToken,
    TokenEvent,
)
from actortoken_store.model import TokenStatus
from actortoken_store.operations import Operation

__all__ = ["AsyncAuditQueries", "AuditQueries"]

T = TypeVar("T")


class _Runner(Protocol):
    def __call__(self, operation: Operation[T]) -> T: ...


class _AsyncRunner(Protocol):
    def __call__(self, operation: Operation[T]) -> Awaitable[T]: ...


class AuditQueries:
    """Audit queries over the event history, for `ActorTokenRepository.audit`.

    Datetime arguments must be timezone-aware; a naive one raises `InvalidArgumentError`.
    Rows come back in pages: pass a page's ``next_cursor`` as ``after`` to get the next.
    """

    def __init__(self, run: _Runner, schema: str) -> None:
        self._run = run
        self._schema = schema

    def impersonations(
        self,
        *,
        actor_sub: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: TokenStatus | str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> AuditPage[Impersonation]:
        """Return impersonations, newest issue first, filtered by actor, user, window, status.

        The window bounds the issue time: ``since`` included, ``until`` excluded. ``status``
        matches the token's latest status.
        """
        return self._run(
            operations.impersonations(
                actor_sub=actor_sub,
                user_id=user_id,
                since=since,
                until=until,
                status=status,
                limit=limit,
                after=after,
            )
        )

    def timeline(
        self, token_id: str, *, limit: int = 50, after: str | None = None
    ) -> AuditPage[TokenEvent]:
        """Return one token's events in the order they were recorded (kept after deletion)."""
        return self._run(operations.timeline(token_id, limit=limit, after=after))

    def actor_summary(
        self,
        *,
        actor_sub: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> AuditPage[ActorSummary]:
        """Return, per actor, what became of the tokens issued in the window, by actor sub."""
        return self._run(
            operations.actor_summary(
                actor_sub=actor_sub, since=since, until=until, limit=limit, after=after
            )
        )

    def stale_pending(
        self,
        *,
        older_than: timedelta = operations.DEFAULT_STALE_AGE,
        now: datetime | None = None,
        since: datetime | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> AuditPage[StaleToken]:
        """Return tokens still pending ``older_than`` after their creation, oldest first."""
        return self._run(
            operations.stale_pending(
                older_than=older_than, now=now, since=since, limit=limit, after=after
            )
        )

    def prune_events(self, *, before: datetime) -> int:
        """Delete events that occurred before ``before``; return how many were deleted.

        The only deletion the append-only triggers allow. The caller's role needs DELETE on
        ``actor_token_events``, and the caller commits.
        """
        return self._run(operations.prune_events(self._schema, before))


class AsyncAuditQueries:
    """The awaitable twin of `AuditQueries`, for `AsyncActorTokenRepository.audit`."""

    def __init__(self, run: _AsyncRunner, schema: str) -> None:
        self._run = run
        self._schema = schema

    async def impersonations(
        self,
        *,
        actor_sub: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: TokenStatus | str | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> AuditPage[Impersonation]:
        """Return impersonations, newest issue first; see `AuditQueries.impersonations`."""
        return await self._run(
            operations.impersonations(
                actor_sub=actor_sub,
                user_id=user_id,
                since=since,
                until=until,
                status=status,
                limit=limit,
                after=after,
            )
        )

    async def timeline(
        self, token_id: str, *, limit: int = 50, after: str | None = None
    ) -> AuditPage[TokenEvent]:
        """Return one token's events in the order they were recorded."""
        return await self._run(operations.timeline(token_id, limit=limit, after=after))

    async def actor_summary(
        self,
        *,
        actor_sub: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> AuditPage[ActorSummary]:
        """Return per-actor summaries; see `AuditQueries.actor_summary`."""
        return await self._run(
            operations.actor_summary(
                actor_sub=actor_sub, since=since, until=until, limit=limit, after=after
            )
        )

    async def stale_pending(
        self,
        *,
        older_than: timedelta = operations.DEFAULT_STALE_AGE,
        now: datetime | None = None,
        since: datetime | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> AuditPage[StaleToken]:
        """Return tokens still pending ``older_than`` after their creation, oldest first."""
        return await self._run(
            operations.stale_pending(
                older_than=older_than, now=now, since=since, limit=limit, after=after
            )
        )

    async def prune_events(self, *, before: datetime) -> int:
        """Delete events that occurred before ``before``; see `AuditQueries.prune_events`."""
        return await self._run(operations.prune_events(self._schema, before))
