"""Bridge to Clerk's Python SDK: issue and revoke actor tokens and record them in one call.

Install it with the ``clerk`` extra (``pip install 'actortoken-store[clerk]'``), which adds
``clerk-backend-api``. The SDK is imported only when a function here runs, so the rest of
the library works without it.

`issue` and `revoke` take a ``clerk_backend_api.Clerk`` and an `ActorTokenRepository`;
`issue_async` and `revoke_async` take the same client and an `AsyncActorTokenRepository`.
The steps of each call are written once, in `actortoken_store.clerk_flows`, and both forms
run them.

The caller owns the transaction: nothing here commits. Commit right after `issue` returns,
because a ticket that Clerk created stays usable at Clerk if the transaction that stored it
rolls back later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from actortoken_store.clerk_flows import (
    DEFAULT_EXPIRES_IN_SECONDS,
    DEFAULT_SESSION_MAX_DURATION_IN_SECONDS,
    HANDLED_FAILURES,
    ClerkCreate,
    ClerkRevoke,
    Flow,
    MarkRevoked,
    StoreGet,
    StoreSave,
    issue_flow,
    revoke_flow,
)
from actortoken_store.clerk_models import from_sdk_model
from actortoken_store.model import ActorToken

if TYPE_CHECKING:
    from clerk_backend_api import Clerk

    from actortoken_store.aio import AsyncActorTokenRepository
    from actortoken_store.repository import ActorTokenRepository

__all__ = [
    "DEFAULT_EXPIRES_IN_SECONDS",
    "DEFAULT_SESSION_MAX_DURATION_IN_SECONDS",
    "from_sdk_model",
    "issue",
    "issue_async",
    "revoke",
    "revoke_async",
]

T = TypeVar("T")


def issue(
    clerk: Clerk,
    repo: ActorTokenRepository,
    user_id: str,
    actor: Mapping[str, Any],
    *,
    expires_in_seconds: int = DEFAULT_EXPIRES_IN_SECONDS,
    session_max_duration_in_seconds: int = DEFAULT_SESSION_MAX_DURATION_IN_SECONDS,
) -> ActorToken:
    """Create an actor token at Clerk, store it, and return it with its ticket.

    The token is stored with the ``actor`` claims sent to Clerk, because the SDK's response
    model drops them, and with its expiry, ``created_at`` plus ``expires_in_seconds``. The
    returned value is the token as Clerk created it, so it carries the ticket (``token``)
    and sign-in ``url`` to hand to the impersonator, whatever the repository's secrets
    policy keeps of them.

    Args:
        clerk: the SDK client, with the instance's secret key.
        repo: the repository to store the token in; its session's transaction stays open.
        user_id: the user to impersonate.
        actor: the actor claims; ``sub`` is the impersonating user's id.
        expires_in_seconds: how long the ticket can be used (Clerk's default is one hour).
        session_max_duration_in_seconds: the maximum length of the session the ticket
            starts (Clerk's default is 30 minutes).

    Raises:
        InvalidArgumentError: ``user_id`` or a duration is invalid; Clerk was not called.
        InvalidActorTokenError: ``actor`` is invalid; Clerk was not called.
        ClerkRequestError: Clerk rejected or failed the request; nothing was stored.
        ActorTokenStoreError: storing failed after Clerk created the ticket. The ticket was
            revoked at Clerk, and a note on the error states whether that worked.
    """
    flow = issue_flow(
        user_id,
        actor,
        expires_in_seconds=expires_in_seconds,
        session_max_duration_in_seconds=session_max_duration_in_seconds,
    )
    return _drive(flow, clerk, repo)


async def issue_async(
    clerk: Clerk,
    repo: AsyncActorTokenRepository,
    user_id: str,
    actor: Mapping[str, Any],
    *,
    expires_in_seconds: int = DEFAULT_EXPIRES_IN_SECONDS,
    session_max_duration_in_seconds: int = DEFAULT_SESSION_MAX_DURATION_IN_SECONDS,
) -> ActorToken:
    """Create an actor token at Clerk and store it; the async form of `issue`."""
    flow = issue_flow(
        user_id,
        actor,
        expires_in_seconds=expires_in_seconds,
        session_max_duration_in_seconds=session_max_duration_in_seconds,
    )
    return await _drive_async(flow, clerk, repo)


def revoke(clerk: Clerk, repo: ActorTokenRepository, token_id: str) -> ActorToken:
    """Revoke a pending actor token at Clerk, record it, and return the stored token.

    Clerk is asked first, so the ticket stops working even when recording fails. The
    stored token is then refreshed from Clerk's response, keeping its stored actor claims.

    Raises:
        InvalidTransitionError: Clerk responded that only pending tokens can be revoked. The
            error names the status in Clerk's message, or else the stored status.
        ClerkRequestError: Clerk rejected or failed the request for another reason, such
            as an unknown token id.
        TokenNotFoundError: Clerk revoked the token, but the store has no token with that
            id, so nothing was recorded.
        TokenConflictError: the stored token is accepted, which contradicts Clerk.
    """
    return _drive(revoke_flow(token_id), clerk, repo)


async def revoke_async(clerk: Clerk, repo: AsyncActorTokenRepository, token_id: str) -> ActorToken:
    """Revoke a pending actor token at Clerk and record it; the async form of `revoke`."""
    return await _drive_async(revoke_flow(token_id), clerk, repo)


def _drive(flow: Flow[T], clerk: Clerk, repo: ActorTokenRepository) -> T:
    """Run ``flow``, performing each step with the sync SDK methods and repository."""
    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.send(outcome) if error is None else flow.throw(error)
        except StopIteration as stop:
            value: T = stop.value
            return value
        try:
            match step:
                case ClerkCreate(body=body):
                    outcome = clerk.actor_tokens.create(request=cast(Any, body))
                case ClerkRevoke(token_id=token_id):
                    outcome = clerk.actor_tokens.revoke(actor_token_id=token_id)
                case StoreSave(token=token):
                    outcome = repo.save(token)
                case StoreGet(token_id=token_id):
                    outcome = repo.get(token_id)
                case MarkRevoked(token_id=token_id, at=at):
                    outcome = repo.revoke(token_id, at)
                case _:
                    raise TypeError(f"unknown step {type(step).__name__}")
            error = None
        except HANDLED_FAILURES as exc:
            # The flow decides: it may withdraw a created ticket before re-raising.
            outcome, error = None, exc


async def _drive_async(flow: Flow[T], clerk: Clerk, repo: AsyncActorTokenRepository) -> T:
    """Run ``flow``, awaiting each step with the async SDK methods and repository."""
    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.send(outcome) if error is None else flow.throw(error)
        except StopIteration as stop:
            value: T = stop.value
            return value
        try:
            match step:
                case ClerkCreate(body=body):
                    outcome = await clerk.actor_tokens.create_async(request=cast(Any, body))
                case ClerkRevoke(token_id=token_id):
                    outcome = await clerk.actor_tokens.revoke_async(actor_token_id=token_id)
                case StoreSave(token=token):
                    outcome = await repo.save(token)
                case StoreGet(token_id=token_id):
                    outcome = await repo.get(token_id)
                case MarkRevoked(token_id=token_id, at=at):
                    outcome = await repo.revoke(token_id, at)
                case _:
                    raise TypeError(f"unknown step {type(step).__name__}")
            error = None
        except HANDLED_FAILURES as exc:
            outcome, error = None, exc
