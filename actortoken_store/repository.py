"""The synchronous repository over a SQLAlchemy `Session`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Connection
from sqlalchemy.orm import Session, scoped_session

from actortoken_store import cache, driver, maintenance, operations
from actortoken_store.audit.api import AuditQueries
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

__all__ = ["ActorTokenRepository"]

T = TypeVar("T")


class ActorTokenRepository:
    """Stores and reads actor tokens through a `Session` that the caller owns.

    The repository never commits or rolls back: it runs its statements in the session's
    current transaction, and the caller decides when that ends. Each write is a single
    statement whose WHERE clause carries the rule, so concurrent callers cannot break it.

    Tickets are written and read through a `SecretsPolicy` (see `actortoken_store.secrets`):
    encrypted, kept as a digest only, or in plaintext. Every read that returns a token
    raises `TicketDecryptionError` for a row whose ticket the configured keys cannot
    decrypt.

    A trigger records an event for each insert and status change. Writes made through the
    repository record source ``repository`` and the context of `audit_context`.

    Args:
        session: the session to run statements on.
        schema: the PostgreSQL schema holding the store's tables.
        secrets: the secrets policy; None builds it from the environment
            (`SecretsPolicy.from_environment`).

    Attributes:
        audit: the audit queries and event retention (`AuditQueries`).
    """

    _calls_on_driver = True
    """Run `Call` steps on the psycopg connection directly, unless listeners or ``echo``
    watch the engine's statements; False always sends them through ``Session.execute``,
    which gives the same results more slowly (tests compare both)."""

    def __init__(
        self,
        session: Session,
        *,
        schema: str = DEFAULT_SCHEMA,
        secrets: SecretsPolicy | None = None,
    ) -> None:
        if not isinstance(session, Session | scoped_session):
            raise InvalidArgumentError(
                f"session must be a SQLAlchemy Session, got {type(session).__name__}"
            )
        self.session = session
        self.schema = validate_schema_name(schema)
        self.secrets = SecretsPolicy.from_environment() if secrets is None else secrets
        self._options = schema_options(self.schema)
        self._audit = SettingsTracker()
        self.audit = AuditQueries(self._run, self.schema)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schema={self.schema!r}, secrets={self.secrets!r})"

    def save(
        self,
        token: TokenInput,
        *,
        actor: Mapping[str, Any] | None = None,
        expires_at: datetime | int | None = None,
        expires_in_seconds: int | None = None,
    ) -> SaveOutcome:
        """Insert or update one token by id; see `SaveOutcome` for what can happen.

        A stored accepted or revoked token never changes status, an older snapshot never
        replaces a newer one, and at an equal ``updated_at`` a terminal status wins.

        Args:
            token: the snapshot, as an `ActorToken` or a ``clerk_backend_api.models.ActorToken``.
            actor: with an SDK model only, the actor claims that were sent to Clerk, because
                clerk-backend-api 7 drops them from its model.
            expires_at: the ticket's expiry (aware datetime or Unix ms); it wins over
                ``expires_in_seconds``, ``token.expires_at`` and the ``exp`` claim of the
                ticket JWT, which is read without verifying its signature.
            expires_in_seconds: the ticket's lifetime counted from ``created_at``.

        Raises:
            ActorClaimsMissingError: an SDK model without claims and no ``actor``.
            InvalidArgumentError: ``actor`` given with an `ActorToken`, both expiry
                arguments given, or one of them invalid.
        """
        outcome = self._run(
            operations.save(
                token,
                secrets=self.secrets,
                actor=actor,
                expires_at=expires_at,
                expires_in_seconds=expires_in_seconds,
                audit=self._audit.current.parameters,
            )
        )
        self._audit.mark_written(self.session)
        return outcome

    def save_many(
        self, tokens: Iterable[ActorToken], *, batch_size: int = operations.DEFAULT_BATCH_SIZE
    ) -> SaveReport:
        """Save many tokens with `save`'s rules, in input order, in few statements."""
        operation = operations.save_many(
            tokens,
            secrets=self.secrets,
            batch_size=batch_size,
            audit=self._audit.current.parameters,
        )
        report = self._run(operation)
        self._audit.mark_written(self.session)
        return report

    def get(self, token_id: str, *, reveal: bool = True) -> ActorToken | None:
        """Return the token with ``token_id``, or None.

        With ``reveal`` False, the ticket is not read: ``token`` and ``url`` are None.

        Raises:
            TicketDecryptionError: ``reveal`` is True and the stored ticket does not
                decrypt with the configured keys.
        """
        return self._run(operations.get(token_id, secrets=self.secrets, reveal=reveal))

    def get_one(self, token_id: str, *, reveal: bool = True) -> ActorToken:
        """Return the token with ``token_id``; ``reveal`` as for `get`.

        Raises:
            TokenNotFoundError: no token has that id.
            TicketDecryptionError: ``reveal`` is True and the ticket does not decrypt.
        """
        return self._run(operations.get_one(token_id, secrets=self.secrets, reveal=reveal))

    def get_by_ticket(self, ticket: str) -> ActorToken | None:
        """Return the token whose ticket is ``ticket`` (newest first if several), or None.

        Works in every secrets mode, and after the ticket itself was dropped, because the
        lookup uses the ticket's SHA-256 digest.
        """
        return self._run(cache.get_by_ticket(ticket, secrets=self.secrets))

    def find_reusable(
        self,
        user_id: str,
        actor_sub: str,
        min_remaining: timedelta = cache.DEFAULT_MIN_REMAINING,
        now: datetime | int | None = None,
    ) -> ActorToken | None:
        """Return the newest pending token of the pair that can be handed out again, or None.

        It must have a readable ticket and stay valid for at least ``min_remaining`` after
        ``now`` (aware datetime or Unix ms; default: the current time). Tokens with an
        unknown expiry never qualify.
        """
        return self._run(
            cache.find_reusable(
                user_id, actor_sub, secrets=self.secrets, min_remaining=min_remaining, now=now
            )
        )

    def list_for_user(
        self,
        user_id: str,
        *,
        status: TokenStatus | str | None = None,
        limit: int = 50,
        after: str | None = None,
        reveal: bool = True,
    ) -> Page:
        """Return a page of the user's tokens, newest first.

        Pass the page's ``next_cursor`` as ``after`` for the next page. Tokens created
        while paging are newer than the cursor, so they never shift later pages.

        With ``reveal`` False, no ticket is decrypted: items carry ``token`` and ``url``
        None, and ``ticket_states`` records which rows contain a ticket and which are under a
        key that is not configured. With ``reveal`` True (the default), such a row raises
        `TicketDecryptionError`.
        """
        return self._run(
            operations.list_for_user(
                user_id,
                secrets=self.secrets,
                status=status,
                limit=limit,
                after=after,
                reveal=reveal,
            )
        )

    def accept(self, token_id: str, at: datetime | int | None = None) -> ActorToken:
        """Mark a pending token accepted at ``at`` (aware datetime or Unix ms; default now).

        Raises:
            TokenNotFoundError: no token has that id.
            InvalidTransitionError: the token is not pending.
        """
        return self._transition(token_id, TokenStatus.ACCEPTED, at)

    def revoke(self, token_id: str, at: datetime | int | None = None) -> ActorToken:
        """Mark a pending token revoked at ``at`` (aware datetime or Unix ms; default now).

        Raises:
            TokenNotFoundError: no token has that id.
            InvalidTransitionError: the token is not pending.
        """
        return self._transition(token_id, TokenStatus.REVOKED, at)

    def purge(
        self,
        older_than: timedelta | datetime,
        *,
        now: datetime | int | None = None,
        batch_size: int = maintenance.DEFAULT_PURGE_BATCH_SIZE,
        max_batches: int | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete accepted, revoked and expired tokens last changed before the cut-off.

        ``older_than`` is an age before ``now`` or an aware datetime. Deletes in batches of
        ``batch_size`` and returns the count (with ``dry_run``, only counts). Audit events of
        the deleted tokens stay. Call with ``max_batches=1`` in a loop, committing after
        each call, to keep each transaction short.
        """
        return self._run(
            maintenance.purge(
                older_than,
                now=now,
                batch_size=batch_size,
                max_batches=max_batches,
                dry_run=dry_run,
            )
        )

    def rotate_keys(
        self,
        *,
        batch_size: int = maintenance.DEFAULT_ROTATION_BATCH_SIZE,
        max_batches: int | None = None,
    ) -> KeyRotation:
        """Re-encrypt every stored ticket under the first configured key, in batches.

        See `actortoken_store.maintenance.rotate_keys`.
        """
        return self._run(
            maintenance.rotate_keys(
                secrets=self.secrets, batch_size=batch_size, max_batches=max_batches
            )
        )

    @contextmanager
    def audit_context(
        self,
        operator: str | None = None,
        request_id: str | None = None,
        reason: str | None = None,
        *,
        source: AuditSource | str | None = None,
        **extra: Any,
    ) -> Iterator[AuditContext]:
        """Attribute the events of the writes inside the block to this context.

        The keyword arguments (and any ``extra`` JSON values) become the events' ``context``;
        None values are left out. ``source`` is ``repository`` unless given (the importer
        passes ``import``). Nested blocks inherit and override the outer block's keys.
        Leaving the block clears the settings its writes set, so later raw SQL in the same
        transaction records source ``sql`` again.

        Raises:
            InvalidArgumentError: an unknown source, a value JSON cannot hold, or a context
                over 8 KiB.
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
        written_here = self._audit.written_here(self.session, audit)
        self._audit.stack.pop()
        if written_here:
            self._run(_cleared())
            self._audit.forget()

    def _transition(
        self, token_id: str, target: TokenStatus, at: datetime | int | None
    ) -> ActorToken:
        operation = operations.transition(
            token_id,
            target,
            instant_to_ms("at", at),
            secrets=self.secrets,
            audit=self._audit.current.parameters,
        )
        token = self._run(operation)
        self._audit.mark_written(self.session)
        return token

    def _run(self, operation: Operation[T]) -> T:
        """Drive ``operation``, executing each statement it yields on the session."""
        with translate_database_errors():
            try:
                step = next(operation)
                while True:
                    step = operation.send(self._execute(step))
            except StopIteration as stop:
                value: T = stop.value
                return value

    def _execute(self, step: Step) -> Any:
        if not isinstance(step, Call | Pipeline):
            return self.session.execute(step, execution_options=self._options)
        # The session's connection carries the caller's transaction; the driver
        # connection under it is where that transaction lives.
        connection = self.session.connection()
        on_driver = self._calls_on_driver and not driver.is_observed(connection)
        if isinstance(step, Pipeline):
            if not on_driver:
                return [self._execute_with_sqlalchemy(call) for call in step.calls]
            compiled = (
                (driver.compile_call(call.statement, self.schema, connection.dialect), call)
                for call in step.calls
            )
            return self._on_driver(connection, lambda raw: driver.run_pipeline(raw, compiled))
        if not on_driver:
            return self._execute_with_sqlalchemy(step)
        compiled_call = driver.compile_call(step.statement, self.schema, connection.dialect)
        return self._on_driver(connection, lambda raw: driver.run(raw, compiled_call, step))

    def _on_driver(self, connection: Connection, run: Callable[[Any], T]) -> T:
        driver_connection = connection.connection.driver_connection
        try:
            return run(driver_connection)
        except psycopg.Error as error:
            if driver.is_lost(driver_connection):
                connection.invalidate(error)
            raise

    def _execute_with_sqlalchemy(self, call: Call) -> Any:
        result = self.session.execute(
            call.statement, dict(call.parameters), execution_options=self._options
        )
        return driver.rows_from_result(result)


def _cleared() -> Operation[None]:
    yield clear_settings()
