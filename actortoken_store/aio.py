"""The asyncio repository over a SQLAlchemy `AsyncSession` (psycopg 3's async driver).

It runs the same operations as `actortoken_store.repository.ActorTokenRepository`, so both
have the same methods, rules and errors; only the way statements are executed differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_scoped_session

from actortoken_store import cache, driver, maintenance, operations
from actortoken_store.audit.api import AsyncAuditQueries
from actortoken_store.audit.context import (
    AuditContext,
    AuditSource,
    SettingsTracker,
    clear_settings,
)
from actortoken_store.calls import Call, Pipeline
from actortoken_store.clerk_models import TokenInput
from actortoken_store.config import validate_schema_name
from actortoken_store.dberrors import translate_database_errors
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.maintenance import KeyRotation
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.operations import Operation, Step
from actortoken_store.results import Page, SaveOutcome, SaveReport
from actortoken_store.rows import instant_to_ms
from actortoken_store.schema import DEFAULT_SCHEMA, schema_options
from actortoken_store.secrets import SecretsPolicy

__all__ = ["AsyncActorTokenRepository"]

T = TypeVar("T")


class AsyncActorTokenRepository:
    """Stores and reads actor tokens through an `AsyncSession` that the caller owns.

    See `ActorTokenRepository` for the contract of each method: this class differs only in
    being awaited, and in `audit_context` being an ``async with`` block.

    Attributes:
        audit: the audit queries and event retention (`AsyncAuditQueries`).
    """

    _calls_on_driver = True
    """Run `Call` steps on the psycopg connection directly, unless listeners or ``echo``
    watch the engine's statements; False always sends them through
    ``AsyncSession.execute``, which gives the same results more slowly."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        schema: str = DEFAULT_SCHEMA,
        secrets: SecretsPolicy | None = None,
    ) -> None:
        if not isinstance(session, AsyncSession | async_scoped_session):
            raise InvalidArgumentError(
                f"session must be a SQLAlchemy AsyncSession, got {type(session).__name__}"
            )
        self.session = session
        self.schema = validate_schema_name(schema)
        self.secrets = SecretsPolicy.from_environment() if secrets is None else secrets
        self._options = schema_options(self.schema)
        self._audit = SettingsTracker()
        self.audit = AsyncAuditQueries(self._run, self.schema)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schema={self.schema!r}, secrets={self.secrets!r})"

    async def save(
        self,
        token: TokenInput,
        *,
        actor: Mapping[str, Any] | None = None,
        expires_at: datetime | int | None = None,
        expires_in_seconds: int | None = None,
    ) -> SaveOutcome:
        """Insert or update one token by id under the monotonic rule, with its expiry."""
        outcome = await self._run(
            operations.save(
                token,
                secrets=self.secrets,
                actor=actor,
                expires_at=expires_at,
                expires_in_seconds=expires_in_seconds,
                audit=self._audit.current.parameters,
            )
        )
        self._audit.mark_written(self.session.sync_session)
        return outcome

    async def save_many(
        self, tokens: Iterable[ActorToken], *, batch_size: int = operations.DEFAULT_BATCH_SIZE
    ) -> SaveReport:
        """Save many tokens with `save`'s rules, in input order, in few statements."""
        operation = operations.save_many(
            tokens,
            secrets=self.secrets,
            batch_size=batch_size,
            audit=self._audit.current.parameters,
        )
        report = await self._run(operation)
        self._audit.mark_written(self.session.sync_session)
        return report

    async def get(self, token_id: str, *, reveal: bool = True) -> ActorToken | None:
        """Return the token with ``token_id``, or None; ``reveal=False`` skips the ticket."""
        return await self._run(operations.get(token_id, secrets=self.secrets, reveal=reveal))

    async def get_one(self, token_id: str, *, reveal: bool = True) -> ActorToken:
        """Return the token with ``token_id``; raise `TokenNotFoundError` if none."""
        return await self._run(operations.get_one(token_id, secrets=self.secrets, reveal=reveal))

    async def get_by_ticket(self, ticket: str) -> ActorToken | None:
        """Return the token whose ticket is ``ticket`` (newest first if several), or None."""
        return await self._run(cache.get_by_ticket(ticket, secrets=self.secrets))

    async def find_reusable(
        self,
        user_id: str,
        actor_sub: str,
        min_remaining: timedelta = cache.DEFAULT_MIN_REMAINING,
        now: datetime | int | None = None,
    ) -> ActorToken | None:
        """Return the newest pending token of the pair that can be handed out again, or None."""
        return await self._run(
            cache.find_reusable(
                user_id, actor_sub, secrets=self.secrets, min_remaining=min_remaining, now=now
            )
        )

    async def list_for_user(
        self,
        user_id: str,
        *,
        status: TokenStatus | str | None = None,
        limit: int = 50,
        after: str | None = None,
        reveal: bool = True,
    ) -> Page:
        """Return a page of the user's tokens, newest first."""
        return await self._run(
            operations.list_for_user(
                user_id,
                secrets=self.secrets,
                status=status,
                limit=limit,
                after=after,
                reveal=reveal,
            )
        )

    async def accept(self, token_id: str, at: datetime | int | None = None) -> ActorToken:
        """Mark a pending token accepted at ``at`` (aware datetime or Unix ms; default now)."""
        return await self._transition(token_id, TokenStatus.ACCEPTED, at)

    async def revoke(self, token_id: str, at: datetime | int | None = None) -> ActorToken:
        """Mark a pending token revoked at ``at`` (aware datetime or Unix ms; default now)."""
        return await self._transition(token_id, TokenStatus.REVOKED, at)

    async def purge(
        self,
        older_than: timedelta | datetime,
        *,
        now: datetime | int | None = None,
        batch_size: int = maintenance.DEFAULT_PURGE_BATCH_SIZE,
        max_batches: int | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete accepted, revoked and expired tokens last changed before the cut-off."""
        return await self._run(
            maintenance.purge(
                older_than,
                now=now,
                batch_size=batch_size,
                max_batches=max_batches,
                dry_run=dry_run,
            )
        )

    async def rotate_keys(
        self,
        *,
        batch_size: int = maintenance.DEFAULT_ROTATION_BATCH_SIZE,
        max_batches: int | None = None,
    ) -> KeyRotation:
        """Re-encrypt every stored ticket under the first configured key, in batches."""
        return await self._run(
            maintenance.rotate_keys(
                secrets=self.secrets, batch_size=batch_size, max_batches=max_batches
            )
        )

    @asynccontextmanager
    async def audit_context(
        self,
        operator: str | None = None,
        request_id: str | None = None,
        reason: str | None = None,
        *,
        source: AuditSource | str | None = None,
        **extra: Any,
    ) -> AsyncIterator[AuditContext]:
        """Attribute the events of the writes inside the block to this context.

        See `ActorTokenRepository.audit_context`. Leaving the block may send one statement,
        which is why this is an ``async with`` block.
        """
        outer = self._audit.current
        audit = AuditContext.build(
            source=source or outer.source,
            base=outer,
            operator=operator,
            request_id=request_id,
            reason=reason,
            **extra,
        )
        self._audit.stack.append(audit)
        try:
            yield audit
        except BaseException:
            # The transaction may have failed; it is the caller's to roll back or go on.
            self._audit.stack.pop()
            self._audit.forget()
            raise
        written_here = self._audit.written_here(self.session.sync_session, audit)
        self._audit.stack.pop()
        if written_here:
            await self._run(_cleared())
            self._audit.forget()

    async def _transition(
        self, token_id: str, target: TokenStatus, at: datetime | int | None
    ) -> ActorToken:
        operation = operations.transition(
            token_id,
            target,
            instant_to_ms("at", at),
            secrets=self.secrets,
            audit=self._audit.current.parameters,
        )
        token = await self._run(operation)
        self._audit.mark_written(self.session.sync_session)
        return token

    async def _run(self, operation: Operation[T]) -> T:
        """Drive ``operation``, awaiting each statement it yields on the session."""
        with translate_database_errors():
            try:
                step = next(operation)
                while True:
                    step = operation.send(await self._execute(step))
            except StopIteration as stop:
                value: T = stop.value
                return value

    async def _execute(self, step: Step) -> Any:
        if not isinstance(step, Call | Pipeline):
            return await self.session.execute(step, execution_options=self._options)
        connection = await self.session.connection()
        observed = connection.sync_connection is None or driver.is_observed(
            connection.sync_connection
        )
        on_driver = self._calls_on_driver and not observed
        if isinstance(step, Pipeline):
            if not on_driver:
                return [await self._execute_with_sqlalchemy(call) for call in step.calls]
            raw = await connection.get_raw_connection()
            compiled = (
                (driver.compile_call(call.statement, self.schema, connection.dialect), call)
                for call in step.calls
            )
            try:
                return await driver.run_pipeline_async(raw.driver_connection, compiled)
            except psycopg.Error as error:
                if driver.is_lost(raw.driver_connection):
                    await connection.invalidate(error)
                raise
        if not on_driver:
            return await self._execute_with_sqlalchemy(step)
        compiled_call = driver.compile_call(step.statement, self.schema, connection.dialect)
        raw = await connection.get_raw_connection()
        try:
            return await driver.run_async(raw.driver_connection, compiled_call, step)
        except psycopg.Error as error:
            if driver.is_lost(raw.driver_connection):
                await connection.invalidate(error)
            raise

    async def _execute_with_sqlalchemy(self, call: Call) -> Any:
        result = await self.session.execute(
            call.statement, dict(call.parameters), execution_options=self._options
        )
        return driver.rows_from_result(result)


def _cleared() -> Operation[None]:
    yield clear_settings()
