"""Conversion between `ActorToken` values and rows of ``actor_tokens``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import (
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    ActorToken,
    TokenStatus,
    ms_to_datetime,
)

__all__ = ["datetime_to_ms", "from_row", "instant_to_ms", "to_row"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def datetime_to_ms(value: datetime) -> int:
    """Convert an aware datetime to Unix milliseconds exactly, truncating microseconds."""
    return (value - _EPOCH) // _ONE_MS


def instant_to_ms(name: str, value: datetime | int | None) -> int:
    """Return an instant given as an aware datetime or Unix milliseconds; None means now.

    Raises:
        InvalidArgumentError: a naive datetime, a bool, another type, or an instant outside
            2001-09-09 to 9999-12-31 (the range of a token's timestamps).
    """
    if value is None:
        return datetime_to_ms(datetime.now(UTC))
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgumentError(
                f"{name} must be an aware datetime; got the naive {value.isoformat()}, "
                "use e.g. datetime.now(UTC)"
            )
        ms = datetime_to_ms(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            f"{name} must be an aware datetime or Unix milliseconds, got {type(value).__name__}"
        )
    else:
        ms = value
    # The same range as a token's timestamps: a value in seconds, or one a datetime cannot
    # hold, is a caller's mistake.
    if not MIN_TIMESTAMP_MS <= ms <= MAX_TIMESTAMP_MS:
        raise InvalidArgumentError(
            f"{name} must lie between 2001-09-09 and 9999-12-31 in Unix milliseconds, "
            f"got {value if isinstance(value, datetime) else _describe_int(ms)}"
        )
    return ms


def _describe_int(value: int) -> str:
    # str() of an int past the interpreter's digit limit raises ValueError.
    if value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    hint = " (this looks like seconds)" if 0 <= value < MIN_TIMESTAMP_MS else ""
    return f"{value}{hint}"


def to_row(token: ActorToken) -> dict[str, Any]:
    """Return the column values of ``token`` for an INSERT."""
    return {
        "id": token.id,
        "status": token.status,
        "user_id": token.user_id,
        "actor": token.actor,
        "token": token.token,
        "url": token.url,
        "created_at": ms_to_datetime(token.created_at),
        "updated_at": ms_to_datetime(token.updated_at),
    }


def from_row(row: Mapping[str, Any]) -> ActorToken:
    """Build the `ActorToken` stored in ``row`` without validating it again.

    Rows were validated on their way in (or checked by the table's constraints), so this
    uses `ActorToken.from_trusted`.

    NOTE: JSONB keeps actor numbers as ``numeric`` and reorders object keys. A float claim
    that Python writes with a positive exponent (``1e+23``, any float from 1e16 up) reads
    back as an int, which differs from the float above 2**53. Other claims come back equal.
    """
    return ActorToken.from_trusted(
        id=row["id"],
        status=TokenStatus(row["status"]),
        user_id=row["user_id"],
        actor=row["actor"],
        token=row["token"],
        url=row["url"],
        created_at=datetime_to_ms(row["created_at"]),
        updated_at=datetime_to_ms(row["updated_at"]),
    )
