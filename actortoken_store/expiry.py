"""When a ticket expires: the ``exp`` claim of its JWT, or an expiry given at save.

The JWT payload is decoded WITHOUT verifying the signature, because only Clerk has the
signing key. The expiry is a hint for `find_reusable` and `purge`, not a security check: a
ticket with a forged ``exp`` is still rejected by Clerk when someone signs in with it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from datetime import datetime

import orjson

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, ActorToken

__all__ = ["ticket_expiry_ms", "with_expiry"]

logger = logging.getLogger(__name__)


def ticket_expiry_ms(ticket: str | None, *, token_id: str) -> int | None:
    """Return the ``exp`` claim of a ticket JWT in Unix milliseconds, or None.

    A ticket that is not a JWT, or whose payload has no usable numeric ``exp`` (in Unix
    seconds), yields None and a debug log that names the token id. It never raises.
    """
    if ticket is None:
        return None
    problem = _expiry_problem(ticket)
    if isinstance(problem, int):
        return problem
    logger.debug("actor token %s: no expiry read from its ticket (%s)", token_id, problem)
    return None


def with_expiry(
    token: ActorToken,
    *,
    expires_at: datetime | int | None = None,
    expires_in_seconds: int | None = None,
) -> ActorToken:
    """Return ``token`` with an explicit expiry, which wins over the ticket's ``exp``.

    Args:
        token: the token to save.
        expires_at: the expiry as an aware datetime or Unix milliseconds.
        expires_in_seconds: the lifetime counted from the token's ``created_at``, as in
            Clerk's create-actor-token request.

    Raises:
        InvalidArgumentError: both are given, a datetime is naive, or a value is not a
            positive integer.
    """
    # Imported here because rows imports this module.
    from actortoken_store.rows import instant_to_ms

    if expires_at is not None and expires_in_seconds is not None:
        raise InvalidArgumentError("give expires_at or expires_in_seconds, not both")
    if expires_at is not None:
        return token.with_expiry(instant_to_ms("expires_at", expires_at))
    if expires_in_seconds is not None:
        if (
            isinstance(expires_in_seconds, bool)
            or not isinstance(expires_in_seconds, int)
            or expires_in_seconds <= 0
        ):
            raise InvalidArgumentError(
                f"expires_in_seconds must be a positive integer, got {expires_in_seconds!r}"
            )
        return token.with_expiry(token.created_at + expires_in_seconds * 1000)
    return token


def _expiry_problem(ticket: str) -> int | str:
    """Return the expiry in milliseconds, or a short description of why there is none."""
    parts = ticket.split(".")
    if len(parts) != 3:
        return f"not a JWT: {len(parts)} dot-separated parts instead of 3"
    encoded = parts[1]
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            # orjson rejects what json reads (NaN, integers beyond 64 bits), and the checks
            # below report those precisely.
            payload = json.loads(raw)
    except (binascii.Error, ValueError):
        return "the payload is not base64url-encoded JSON"
    if not isinstance(payload, dict):
        return "the payload is not a JSON object"
    exp = payload.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return "the payload has no numeric exp claim"
    if isinstance(exp, float) and not math.isfinite(exp):
        return "the exp claim is not finite"
    milliseconds = round(exp * 1000)
    if not MIN_TIMESTAMP_MS <= milliseconds <= MAX_TIMESTAMP_MS:
        return f"the exp claim {exp} is outside the supported range of Unix seconds"
    return milliseconds
