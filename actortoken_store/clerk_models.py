"""Conversion of clerk-backend-api's ``ActorToken`` model to the store's `ActorToken`.

The SDK is an optional extra (``actortoken-store[clerk]``). This module never imports it at
load time, so the repositories can accept SDK models without making the SDK a dependency.

clerk-backend-api 7.0.0 declares the model's ``actor`` as a model without fields, so
validating Clerk's response drops every actor claim, ``sub`` included. A converted token
therefore takes its claims from the caller: the claims that were sent to Clerk when the
token was created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from actortoken_store.errors import (
    ActorClaimsMissingError,
    InvalidActorTokenError,
    InvalidArgumentError,
)
from actortoken_store.model import ActorToken

if TYPE_CHECKING:
    from clerk_backend_api.models import ActorToken as ClerkActorToken

__all__ = ["TokenInput", "from_sdk_model", "is_sdk_model", "to_actor_token"]

TokenInput: TypeAlias = "ActorToken | ClerkActorToken"
"""Token argument of the repositories' ``save``: the store's value or the SDK's model."""


def is_sdk_model(value: object) -> bool:
    """Return whether ``value`` is a ``clerk_backend_api.models.ActorToken``.

    Returns False when the SDK is not installed, because no such object can exist then.
    """
    try:
        from clerk_backend_api.models import ActorToken as SDKActorToken
    except ImportError:
        return False
    return isinstance(value, SDKActorToken)


def from_sdk_model(model: ClerkActorToken, *, actor: Mapping[str, Any] | None = None) -> ActorToken:
    """Convert a ``clerk_backend_api.models.ActorToken`` to a validated `ActorToken`.

    Args:
        model: the SDK's model of a Clerk response.
        actor: the actor claims that were sent to Clerk. Required with clerk-backend-api 7,
            whose model keeps none of them. When the model does carry claims (a later SDK
            version), their ``sub`` must equal this one's, and these claims are stored.

    Raises:
        ActorClaimsMissingError: the model carries no claims and ``actor`` is None.
        InvalidActorTokenError: ``model`` is not an SDK model, a field is invalid, or
            ``actor["sub"]`` differs from the model's ``sub``.
    """
    if not is_sdk_model(model):
        raise InvalidActorTokenError(
            "<record>",
            f"expected a clerk_backend_api.models.ActorToken, got {type(model).__name__}",
        )
    # JSON mode turns the SDK's enums into their string values. The SDK's serializer leaves
    # out a token or url that is None, and ActorToken.from_clerk reads them as None again.
    data: dict[str, Any] = model.model_dump(mode="json")
    token_id = str(data.get("id", "<unknown>"))
    sdk_claims = data.get("actor")
    sdk_claims = sdk_claims if isinstance(sdk_claims, dict) else {}

    if actor is None:
        if "sub" not in sdk_claims:
            raise ActorClaimsMissingError(token_id)
        claims: Mapping[str, Any] = sdk_claims
    else:
        if not isinstance(actor, Mapping):
            raise InvalidActorTokenError(
                "actor", f"must be a mapping of claims, got {type(actor).__name__}"
            )
        if "sub" in sdk_claims and sdk_claims["sub"] != actor.get("sub"):
            raise InvalidActorTokenError(
                "actor.sub",
                f"{actor.get('sub')!r} differs from {sdk_claims['sub']!r} in Clerk's response "
                f"for token {token_id!r}",
            )
        claims = actor

    data["actor"] = claims
    return ActorToken.from_clerk(data)


def to_actor_token(token: TokenInput, actor: Mapping[str, Any] | None) -> ActorToken:
    """Return ``token`` as an `ActorToken`, converting an SDK model with ``actor``.

    Raises:
        InvalidArgumentError: ``token`` is neither kind of token, or ``actor`` was given
            with an `ActorToken`, which has its own.
        ActorClaimsMissingError: an SDK model without claims and no ``actor``.
        InvalidActorTokenError: a field of the SDK model is invalid.
    """
    if isinstance(token, ActorToken):
        if actor is not None:
            raise InvalidArgumentError(
                f"actor= applies only to Clerk SDK models; ActorToken {token.id!r} "
                "already has its actor claims"
            )
        return token
    if not is_sdk_model(token):
        raise InvalidArgumentError(
            "token must be an ActorToken or a clerk_backend_api.models.ActorToken, got "
            f"{type(token).__name__}; parse Clerk JSON with ActorToken.from_clerk first"
        )
    return from_sdk_model(token, actor=actor)
