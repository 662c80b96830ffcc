"""The steps of issuing and revoking through Clerk, written once for sync and async.

A flow is a generator. It yields a step (a call to Clerk or to the repository), receives
the step's result, or has the step's exception thrown into it, and finally returns its
value. `actortoken_store.clerk` performs the steps with the sync or the async SDK methods
and repository, so every rule here, including withdrawing a ticket that could not be
stored, exists once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

from actortoken_store.clerk_models import from_sdk_model
from actortoken_store.errors import (
    ClerkRequestError,
    InvalidArgumentError,
    InvalidTransitionError,
    TokenConflictError,
    TokenNotFoundError,
)
from actortoken_store.expiry import with_expiry
from actortoken_store.model import ActorToken, TokenStatus, validate_actor
from actortoken_store.results import SaveOutcome

__all__ = [
    "CANNOT_REVOKE_CODES",
    "DEFAULT_EXPIRES_IN_SECONDS",
    "DEFAULT_SESSION_MAX_DURATION_IN_SECONDS",
    "HANDLED_FAILURES",
    "ClerkCreate",
    "ClerkRevoke",
    "Flow",
    "MarkRevoked",
    "Step",
    "StoreGet",
    "StoreSave",
    "issue_flow",
    "revoke_flow",
]

logger = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN_SECONDS: Final = 3600
"""Ticket lifetime that Clerk applies when none is sent (clerk-backend-api 7.0.0)."""

DEFAULT_SESSION_MAX_DURATION_IN_SECONDS: Final = 1800
"""Maximum length of the session a ticket starts, Clerk's default (clerk-backend-api 7.0.0)."""

CANNOT_REVOKE_CODES: Final = frozenset(
    {"actor_token_cannot_be_revoked_code", "actor_token_cannot_be_revoked"}
)
"""Error codes of Clerk's HTTP 400 response to revoking a token that is not pending. Clerk's
error reference lists the first. The second, without the suffix, is accepted too, because
some Clerk client code names the code that way."""

HANDLED_FAILURES: Final = (Exception, asyncio.CancelledError, KeyboardInterrupt)
"""Exceptions that a driver throws into its flow rather than ending it. Because they
include cancellation and Ctrl-C, a ticket created at Clerk is still withdrawn then."""

# Clerk's long message in that response: "Actor token cannot be revoked because its status
# is accepted. Only pending tokens can be revoked."
_STATUS_IN_MESSAGE: Final = re.compile(r"\bstatus is (\w+)")


@dataclass(frozen=True, slots=True)
class ClerkCreate:
    """Create an actor token at Clerk; the result is the SDK's ``ActorToken`` model."""

    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClerkRevoke:
    """Revoke an actor token at Clerk; the result is the SDK's ``ActorToken`` model."""

    token_id: str


@dataclass(frozen=True, slots=True)
class StoreSave:
    """Save a token through the repository; the result is its `SaveOutcome`."""

    token: ActorToken


@dataclass(frozen=True, slots=True)
class StoreGet:
    """Read a token through the repository; the result is the token or None."""

    token_id: str


@dataclass(frozen=True, slots=True)
class MarkRevoked:
    """Record the revocation through the repository; the result is the stored token."""

    token_id: str
    at: int
    """Unix milliseconds."""


Step: TypeAlias = ClerkCreate | ClerkRevoke | StoreSave | StoreGet | MarkRevoked
T = TypeVar("T")
Flow: TypeAlias = Generator[Step, Any, T]
"""A generator that yields steps, receives their results and returns a ``T``."""


def issue_flow(
    user_id: str,
    actor: Mapping[str, Any],
    *,
    expires_in_seconds: int,
    session_max_duration_in_seconds: int,
) -> Flow[ActorToken]:
    """Create a token at Clerk and store it with the claims sent and its expiry.

    A ticket that was created but could not be stored is withdrawn: revoked at Clerk.
    """
    body = _create_body(user_id, actor, expires_in_seconds, session_max_duration_in_seconds)
    try:
        created = yield ClerkCreate(body)
    except Exception as exc:
        error = _request_error("create", exc)
        if error is None:
            raise
        created_id = _id_of_unparsed_ticket(exc)
        if created_id is not None:
            yield from _withdraw(created_id, error)
        raise error from _safe_cause(exc)

    token_id: str = created.id
    try:
        # Clerk counts the lifetime from creation, so this is the ticket's expiry to the
        # millisecond, unlike the JWT's exp claim, which is in whole seconds.
        token = with_expiry(
            from_sdk_model(created, actor=body["actor"]),
            expires_in_seconds=body["expires_in_seconds"],
        )
        outcome = yield StoreSave(token)
        if outcome is SaveOutcome.CONFLICT:
            stored = yield StoreGet(token_id)
            stored_status = stored.status.value if stored is not None else "missing"
            raise TokenConflictError(token_id, stored_status, token.status.value)
    except HANDLED_FAILURES as exc:
        yield from _withdraw(token_id, exc)
        raise
    logger.info("issued actor token %s for user %s", token_id, token.user_id)
    return token


def revoke_flow(token_id: str) -> Flow[ActorToken]:
    """Revoke a token at Clerk, then record the revocation with Clerk's snapshot."""
    if not isinstance(token_id, str) or not token_id.strip():
        raise InvalidArgumentError(f"token_id must be a non-empty string, got {token_id!r}")
    try:
        revoked = yield ClerkRevoke(token_id)
    except Exception as exc:
        if _is_cannot_revoke(exc):
            reported = _status_in_error(exc)
            if reported is None:
                stored = yield StoreGet(token_id)
                reported = stored.status.value if stored is not None else "unknown"
            raise InvalidTransitionError(token_id, reported, TokenStatus.REVOKED.value) from exc
        error = _request_error("revoke", exc, token_id=token_id)
        if error is None:
            raise
        raise error from _safe_cause(exc)

    stored = yield StoreGet(token_id)
    if stored is None:
        logger.warning("revoked actor token %s at Clerk, but the store has no such token", token_id)
        not_found = TokenNotFoundError(token_id)
        not_found.add_note(f"Clerk revoked actor token {token_id!r}; nothing was recorded")
        raise not_found

    snapshot = from_sdk_model(revoked, actor=stored.actor)
    outcome = yield StoreSave(snapshot)
    if outcome is SaveOutcome.CONFLICT:
        raise TokenConflictError(token_id, stored.status.value, snapshot.status.value)
    current: ActorToken | None = yield StoreGet(token_id)
    if current is None:
        raise TokenNotFoundError(token_id)
    if current.status is TokenStatus.PENDING and snapshot.status is TokenStatus.REVOKED:
        # The stored updated_at is later than Clerk's, so the upsert kept the row as it was.
        current = yield MarkRevoked(token_id, snapshot.updated_at)
    logger.info("revoked actor token %s", token_id)
    return current


def _create_body(
    user_id: str,
    actor: Mapping[str, Any],
    expires_in_seconds: int,
    session_max_duration_in_seconds: int,
) -> dict[str, Any]:
    """Validate the arguments of `issue` and build the body of Clerk's create request."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise InvalidArgumentError(f"user_id must be a non-empty string, got {user_id!r}")
    _check_seconds("expires_in_seconds", expires_in_seconds)
    _check_seconds("session_max_duration_in_seconds", session_max_duration_in_seconds)
    return {
        "user_id": user_id,
        "actor": validate_actor(actor),
        "expires_in_seconds": expires_in_seconds,
        "session_max_duration_in_seconds": session_max_duration_in_seconds,
    }


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer of seconds, got {value!r}")


def _withdraw(token_id: str, cause: BaseException) -> Flow[None]:
    """Revoke at Clerk a ticket that was created but not stored, so none stays usable.

    Logs the outcome with the token id only, and adds it as a note to ``cause``, which the
    caller re-raises.
    """
    try:
        yield ClerkRevoke(token_id)
    except Exception as exc:
        reason = _describe_failure(exc)
        logger.error(
            "storing actor token %s failed (%s) and revoking it at Clerk failed too (%s); "
            "its ticket stays usable until it expires",
            token_id,
            type(cause).__name__,
            reason,
        )
        cause.add_note(
            f"actor token {token_id!r} was created at Clerk but not stored, and revoking it "
            f"failed ({reason}); its ticket stays usable until it expires"
        )
        return
    logger.warning(
        "revoked actor token %s at Clerk because it could not be stored (%s)",
        token_id,
        type(cause).__name__,
    )
    cause.add_note(f"actor token {token_id!r} was created at Clerk, not stored, and revoked")


def _sdk_models() -> Any:
    from clerk_backend_api import models

    return models


def _request_error(
    operation: str, exc: Exception, *, token_id: str | None = None
) -> ClerkRequestError | None:
    """Translate an SDK or transport error into `ClerkRequestError`; None for other errors.

    The message is built from Clerk's error codes and messages only, never from a response
    body, because a successful response that failed validation contains the ticket.
    """
    import httpx

    models = _sdk_models()
    if isinstance(exc, models.ClerkErrors):
        errors = exc.data.errors
        codes = tuple(error.code for error in errors)
        detail = "; ".join(
            f"{error.code}: {error.long_message or error.message}" for error in errors
        )
        return ClerkRequestError(
            operation,
            detail or "Clerk sent an empty list of errors",
            status_code=exc.status_code,
            codes=codes,
            token_id=token_id,
        )
    if isinstance(exc, models.ResponseValidationError):
        return ClerkRequestError(
            operation,
            f"the response does not match clerk-backend-api's model ({_invalid_fields(exc)})",
            status_code=exc.status_code,
            token_id=token_id,
        )
    if isinstance(exc, models.ClerkBaseError):
        return ClerkRequestError(
            operation,
            "unexpected response from Clerk's Backend API",
            status_code=exc.status_code,
            token_id=token_id,
        )
    if isinstance(exc, models.NoResponseError | httpx.TransportError):
        return ClerkRequestError(operation, _describe_failure(exc), token_id=token_id)
    return None


def _describe_failure(exc: Exception) -> str:
    """Describe an SDK or transport error in a few words, without any response body."""
    import httpx

    models = _sdk_models()
    if isinstance(exc, models.ClerkErrors):
        codes = ", ".join(error.code for error in exc.data.errors)
        return f"HTTP {exc.status_code}: {codes}"
    if isinstance(exc, models.ClerkBaseError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.TransportError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def _safe_cause(exc: Exception) -> Exception | None:
    """Return ``exc`` to chain from, or None when its text may contain a ticket.

    A `ResponseValidationError` quotes the invalid response, which for a created token
    contains the ticket, so it is left out of the traceback.
    """
    if isinstance(exc, _sdk_models().ResponseValidationError):
        return None
    return exc


def _invalid_fields(exc: Any) -> str:
    """Name the fields that failed validation, without their values."""
    cause = exc.cause
    errors = getattr(cause, "errors", None)
    if not callable(errors):
        return "no details"
    locations = sorted({".".join(str(part) for part in error["loc"]) for error in errors()})
    return "invalid fields: " + ", ".join(locations) if locations else "no details"


def _id_of_unparsed_ticket(exc: Exception) -> str | None:
    """Return the id in a successful create response that the SDK could not validate.

    Clerk created that ticket, so it must be withdrawn even though no model exists.
    """
    models = _sdk_models()
    if not isinstance(exc, models.ResponseValidationError) or exc.status_code != 200:
        return None
    try:
        payload = json.loads(exc.body)
    except ValueError:
        return None
    token_id = payload.get("id") if isinstance(payload, dict) else None
    return token_id if isinstance(token_id, str) and token_id else None


def _is_cannot_revoke(exc: Exception) -> bool:
    models = _sdk_models()
    if not isinstance(exc, models.ClerkErrors):
        return False
    return any(error.code in CANNOT_REVOKE_CODES for error in exc.data.errors)


def _status_in_error(exc: Exception) -> str | None:
    """Return the token status named in Clerk's "cannot be revoked" message, if any."""
    if not isinstance(exc, _sdk_models().ClerkErrors):
        return None
    for error in exc.data.errors:
        match = _STATUS_IN_MESSAGE.search(error.long_message or "")
        if match and match.group(1) in {status.value for status in TokenStatus}:
            return match.group(1)
    return None
