"""Typed rows that the audit queries return, their page type and keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

from actortoken_store.audit.context import AuditSource
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import TokenStatus

__all__ = [
    "ActorSummary",
    "AuditPage",
    "Impersonation",
    "StaleToken",
    "TokenEvent",
    "decode_position",
    "encode_position",
]

T = TypeVar("T")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class AuditPage(Generic[T]):
    """One page of audit rows and the cursor of the next page."""

    items: Sequence[T]
    next_cursor: str | None
    """Pass as ``after`` to the same query for the next page; None on the last page."""


@dataclass(frozen=True, slots=True)
class Impersonation:
    """One actor token as recorded by its events: who, whom, when, and its outcome."""

    token_id: str
    user_id: str
    """The impersonated user."""
    actor_sub: str
    """The impersonator."""
    issued_at: datetime
    """The token's ``created_at``."""
    status: TokenStatus
    """The status of the token's latest event."""
    accepted_at: datetime | None
    revoked_at: datetime | None
    event_id: int
    """The id of the event that recorded the token's creation."""


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One row of ``actor_token_events``."""

    id: int
    token_id: str
    user_id: str
    actor_sub: str
    actor: dict[str, Any]
    from_status: TokenStatus | None
    """None on the event that recorded the token's creation."""
    to_status: TokenStatus
    issued_at: datetime
    occurred_at: datetime
    """The token's ``updated_at`` after the change."""
    recorded_at: datetime
    """When the database wrote the event."""
    source: AuditSource
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """Counts of one actor's tokens issued in a time window, and what became of them.

    The counts come from the events of those tokens: ``accepted`` and ``revoked`` count
    tokens that reached that status, at any time, and ``pending`` those that have not left
    it. They assume the repository's rule that a terminal token never changes status again.
    """

    actor_sub: str
    issued: int
    accepted: int
    revoked: int
    pending: int
    users: int
    """Distinct impersonated users."""
    first_activity: datetime
    """The earliest issue time."""
    last_activity: datetime
    """The latest event of those tokens, which may fall after the window."""


@dataclass(frozen=True, slots=True)
class StaleToken:
    """A token still pending long after it was issued."""

    token_id: str
    user_id: str
    actor_sub: str
    created_at: datetime
    updated_at: datetime


def encode_position(kind: str, *values: datetime | int | str) -> str:
    """Encode a keyset position as an opaque cursor; datetimes keep every microsecond."""
    parts: list[Any] = [kind]
    for value in values:
        parts.append({"us": (value - _EPOCH) // _ONE_US} if isinstance(value, datetime) else value)
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_position(kind: str, cursor: str, types: Sequence[type]) -> tuple[Any, ...]:
    """Decode a cursor made by `encode_position` for the query ``kind``.

    Raises:
        InvalidArgumentError: the cursor is malformed or belongs to another query.
    """
    problem = (
        f"invalid cursor {cursor[:40]!r}: pass the next_cursor of a previous page of the same query"
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidArgumentError(problem) from None
    if not isinstance(parts, list) or len(parts) != len(types) + 1 or parts[0] != kind:
        raise InvalidArgumentError(problem)

    values: list[Any] = []
    for part, expected in zip(parts[1:], types, strict=True):
        if expected is datetime:
            micros = part.get("us") if isinstance(part, dict) else None
            if isinstance(micros, bool) or not isinstance(micros, int):
                raise InvalidArgumentError(problem)
            try:
                values.append(_EPOCH + micros * _ONE_US)
            except OverflowError:
                raise InvalidArgumentError(problem) from None
        elif _is_plain(part, expected):
            values.append(part)
        else:
            raise InvalidArgumentError(problem)
    return tuple(values)


def _is_plain(value: Any, expected: type) -> bool:
    """Return whether ``value`` is an ``expected`` (int or str) and not a bool or a NUL string."""
    if isinstance(value, bool) or not isinstance(value, expected):
        return False
    return not (isinstance(value, str) and "\x00" in value)
