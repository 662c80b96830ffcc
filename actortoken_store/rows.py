"""Conversion between `ActorToken` values and rows of ``actor_tokens``.

Both directions go through a `SecretsPolicy`, which decides how the ticket is written and
decrypts it on read, so the sync and async repositories treat secrets the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.expiry import ticket_expiry_ms
from actortoken_store.model import (
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    ActorToken,
    TokenStatus,
    ms_to_datetime,
)
from actortoken_store.results import TicketState
from actortoken_store.secrets import SecretsPolicy

__all__ = [
    "cutoff_before",
    "datetime_to_ms",
    "from_row",
    "instant_to_ms",
    "ticket_state",
    "to_row",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def datetime_to_ms(value: datetime) -> int:
    """Convert an aware datetime to Unix milliseconds exactly, truncating microseconds."""
    return (value - _EPOCH) // _ONE_MS


def cutoff_before(name: str, at: datetime, age: timedelta, *, allow_zero: bool = False) -> datetime:
    """Return ``at - age`` after checking that ``age`` is a positive timedelta.

    Raises:
        InvalidArgumentError: ``age`` is None, not a timedelta, zero (unless ``allow_zero``)
            or negative, or reaches before the year 1.
    """
    if isinstance(age, bool) or not isinstance(age, timedelta):
        raise InvalidArgumentError(
            f"{name} must be a timedelta, got {type(age).__name__}; pass e.g. timedelta(days=90)"
        )
    lowest = "zero or more" if allow_zero else "more than zero"
    if age < timedelta(0) or (age == timedelta(0) and not allow_zero):
        raise InvalidArgumentError(f"{name} must be {lowest}, got {age}")
    try:
        return at - age
    except OverflowError as exc:
        raise InvalidArgumentError(
            f"{name} of {age.days} days reaches before the year 1; use a shorter age"
        ) from exc


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


def to_row(token: ActorToken, secrets: SecretsPolicy) -> dict[str, Any]:
    """Return the column values of ``token`` for an INSERT, its ticket sealed by ``secrets``.

    The expiry is ``token.expires_at`` when set, else the ``exp`` claim of the ticket.
    """
    sealed = secrets.seal(token.id, token.status, token.token, token.url)
    expires_at = token.expires_at
    if expires_at is None:
        expires_at = ticket_expiry_ms(token.token, token_id=token.id)
    return {
        "id": token.id,
        "status": token.status,
        "user_id": token.user_id,
        "actor": token.actor,
        "token": sealed.token,
        "url": sealed.url,
        "ticket_digest": sealed.digest,
        "ticket_ciphertext": sealed.ciphertext,
        "ticket_key_id": sealed.key_id,
        "expires_at": None if expires_at is None else ms_to_datetime(expires_at),
        "created_at": ms_to_datetime(token.created_at),
        "updated_at": ms_to_datetime(token.updated_at),
    }


def ticket_state(row: Mapping[str, Any], secrets: SecretsPolicy) -> TicketState:
    """Tell from the row's columns alone whether its ticket can be read; nothing is decrypted.

    A row under a configured key counts as stored even if its ciphertext would fail to
    decrypt (a wrong key under a known id, or an altered row), because only decryption can
    detect that.
    """
    if row["ticket_ciphertext"] is not None:
        if row["ticket_key_id"] in secrets.keyring.key_ids:
            return TicketState.STORED
        return TicketState.UNAVAILABLE
    return TicketState.NONE if row["token"] is None else TicketState.STORED


def from_row(row: Mapping[str, Any], secrets: SecretsPolicy, *, reveal: bool = True) -> ActorToken:
    """Build the `ActorToken` stored in ``row`` without validating it again, decrypting
    its ticket with ``secrets``.

    Rows were validated on their way in (or checked by the table's constraints), so this
    uses `ActorToken.from_trusted`. A row whose ticket was dropped, or kept only as a
    digest, reads with ``token`` and ``url`` None.

    NOTE: JSONB keeps actor numbers as ``numeric`` and reorders object keys. A float claim
    that Python writes with a positive exponent (``1e+23``, any float from 1e16 up) reads
    back as an int, which differs from the float above 2**53. Other claims come back equal.

    With ``reveal`` False, ``token`` and ``url`` are None and nothing is decrypted.

    Raises:
        TicketDecryptionError: the row contains a ciphertext that the configured keys cannot
            decrypt; the error names the token id and the key id.
    """
    token, url = (row["token"], row["url"]) if reveal else (None, None)
    ciphertext = row["ticket_ciphertext"]
    if reveal and ciphertext is not None:
        token, url = secrets.open(row["id"], row["ticket_key_id"], ciphertext)
    expires_at = row["expires_at"]
    return ActorToken.from_trusted(
        id=row["id"],
        status=TokenStatus(row["status"]),
        user_id=row["user_id"],
        actor=row["actor"],
        token=token,
        url=url,
        created_at=datetime_to_ms(row["created_at"]),
        updated_at=datetime_to_ms(row["updated_at"]),
        expires_at=None if expires_at is None else datetime_to_ms(expires_at),
    )
