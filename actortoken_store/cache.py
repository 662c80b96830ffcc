"""Ticket lookups: find a token by its ticket, and find a ticket that can be reused.

Both are repository operations (see `actortoken_store.operations`), shared by the sync and
async repositories.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from actortoken_store import ticket_statements
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import ActorToken, ms_to_datetime
from actortoken_store.operations import Operation, check_text_argument
from actortoken_store.rows import from_row, instant_to_ms
from actortoken_store.secrets import SecretsPolicy, ticket_digest

__all__ = ["DEFAULT_MIN_REMAINING", "find_reusable", "get_by_ticket"]

DEFAULT_MIN_REMAINING: Final = timedelta(minutes=5)
"""How long a reused ticket must stay valid, so the user has time to follow it."""


def get_by_ticket(ticket: str, *, secrets: SecretsPolicy) -> Operation[ActorToken | None]:
    """Return the newest token whose ticket is ``ticket``, or None.

    The lookup goes through the ticket's SHA-256 digest, which every secrets mode stores and
    which stays after the ticket itself is dropped.

    Raises:
        InvalidArgumentError: ``ticket`` is not a non-empty string.
        TicketDecryptionError: the token's stored ticket cannot be decrypted.
    """
    if not isinstance(ticket, str):
        raise InvalidArgumentError(f"ticket must be a string, got {type(ticket).__name__}")
    if not ticket:
        raise InvalidArgumentError("ticket must not be empty")
    result = yield ticket_statements.select_by_ticket_digest(ticket_digest(ticket))
    row = result.mappings().first()
    return None if row is None else from_row(row, secrets)


def find_reusable(
    user_id: str,
    actor_sub: str,
    *,
    secrets: SecretsPolicy,
    min_remaining: timedelta = DEFAULT_MIN_REMAINING,
    now: datetime | int | None = None,
) -> Operation[ActorToken | None]:
    """Return the newest pending token of the pair whose ticket can be handed out again.

    A token qualifies when it is pending, was created at or before ``now`` (default: the
    current time), its ticket is stored in plaintext or under a configured key, and it stays
    valid for at least ``min_remaining`` after ``now``. A token whose expiry is unknown never
    qualifies.

    Raises:
        InvalidArgumentError: ``user_id`` or ``actor_sub`` is not a non-empty string,
            ``min_remaining`` is not a non-negative timedelta, or ``now``
            is naive or of another type.
        TicketDecryptionError: the newest qualifying token's ticket is stored under a
            configured key id but does not decrypt (a wrong key or an altered row).
    """
    check_text_argument("user_id", user_id)
    check_text_argument("actor_sub", actor_sub)
    if not isinstance(min_remaining, timedelta) or min_remaining < timedelta(0):
        raise InvalidArgumentError(
            f"min_remaining must be a timedelta of zero or more, got {min_remaining!r}"
        )
    now_at = ms_to_datetime(instant_to_ms("now", now))
    try:
        valid_until = now_at + min_remaining
    except OverflowError as exc:
        raise InvalidArgumentError(
            f"min_remaining of {min_remaining.days} days reaches past the year 9999"
        ) from exc
    result = yield ticket_statements.select_reusable(
        user_id,
        actor_sub,
        created_by=now_at,
        valid_until=valid_until,
        key_ids=secrets.keyring.key_ids,
    )
    row = result.mappings().first()
    return None if row is None else from_row(row, secrets)
